"""The classifier's objective: the mean softmax cross-entropy of its logits on the labels, with
the accuracy beside it; neither depends on the step or the random key."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import load_config

from aejax.configs import fields
from aejax.data import sources
from aejax.models import factory
from aejax.objectives import classification


@pytest.fixture(scope="module")
def batch():
    """Thirty-two real mnist5k test digits and their labels."""
    images, labels = sources.load("mnist5k", "test")
    return {"image": jnp.asarray(images[:32]), "label": jnp.asarray(labels[:32])}


@pytest.fixture(scope="module")
def classifier(batch):
    """A classifier on the `mlp` autoencoder's code, at its initial parameters."""
    config = fields.classifier_config(load_config("mlp"))
    model = factory.build(factory.fit_to_data(config.model, (28, 28, 1), 10))
    return model, model.init(jax.random.key(0), batch["image"])["params"], config.loss


def test_the_loss_is_the_mean_cross_entropy_and_the_accuracy_is_counted(classifier, batch):
    model, params, cfg = classifier
    loss, metrics = classification.make_loss_fn(model, cfg)(params, batch, jax.random.key(1), True)
    logits, _ = model.apply({"params": params}, batch["image"])
    log_p = np.asarray(jax.nn.log_softmax(logits))
    labels = np.asarray(batch["label"])
    want = -np.mean(log_p[np.arange(32), labels])
    np.testing.assert_allclose(loss, want, rtol=1e-5)
    assert metrics["loss"] == loss
    assert float(metrics["accuracy"]) == np.mean(log_p.argmax(1) == labels)


def test_a_perfect_head_scores_full_accuracy_and_a_loss_near_zero(classifier, batch):
    """A stand-in model whose logits are 100 at the class it is given and 0 elsewhere: given
    the labels, a loss of about exp(-100) and accuracy 1; given the next class, a loss of 100
    (the logit missed) and accuracy 0."""
    _, _, cfg = classifier

    class Oracle:
        def apply(self, variables, images, train, rngs):
            return 100.0 * jax.nn.one_hot(variables["params"]["labels"], 10), {}

    loss_fn = classification.make_loss_fn(Oracle(), cfg)
    loss, metrics = loss_fn({"labels": batch["label"]}, batch, jax.random.key(0), False)
    assert float(loss) < 1e-30 and float(metrics["accuracy"]) == 1.0
    wrong, metrics = loss_fn({"labels": (batch["label"] + 1) % 10}, batch, jax.random.key(0), False)
    np.testing.assert_allclose(wrong, 100.0, rtol=1e-5)
    assert float(metrics["accuracy"]) == 0.0


def test_neither_the_step_nor_the_key_changes_the_loss(classifier, batch):
    model, params, cfg = classifier
    loss_fn = classification.make_loss_fn(model, cfg)
    first = loss_fn(params, batch, jax.random.key(1), True)[0]
    assert loss_fn(params, batch, jax.random.key(2), True, step=500)[0] == first
