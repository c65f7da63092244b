"""Objectives by name: each `loss.objective` builds its own loss, an unknown one is named."""

import pytest
from conftest import load_config

from aejax.models import factory
from aejax.objectives import autoencoding, classification, layerwise, prior_nll, registry


def test_each_objective_name_builds_its_own_loss():
    assert registry.OBJECTIVES == {
        "reconstruction": autoencoding.make_loss_fn,
        "classification": classification.make_loss_fn,
        "layerwise": layerwise.make_layer_loss_fn,
        "code_prior": prior_nll.make_loss_fn,
    }


def test_an_unknown_objective_is_refused_with_the_choices():
    config = load_config("mlp")
    model = factory.build(factory.fit_to_data(config.model, (28, 28, 1), 10, 100))
    with config.unlocked():
        config.loss.objective = "contrastive"
    with pytest.raises(ValueError, match=r"unknown loss.objective 'contrastive'; choose one of \['classification'"):
        registry.make_objective(model, config.loss)
