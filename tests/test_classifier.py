"""Classifiers on a code: the head reads the code (or the reconstruction), and fine-tuning the
encoder with the labels beats a softmax probe on the same frozen encoder."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import load_config

from aejax.configs import fields
from aejax.data import sources
from aejax.models import classifier, factory
from aejax.training import loop


def test_fine_tuning_beats_the_frozen_probe_on_the_same_encoder(linear_2d_run, tmp_path):
    config, workdir, pretrained = linear_2d_run
    runs = {}
    for name, trainable in (("finetune", ()), ("probe", ("head",))):
        classifier = fields.classifier_config(
            config, init_from=workdir, trainable=trainable, epochs=5
        )
        classifier.train.chunk, classifier.train.save_every_steps = 20, 10_000
        runs[name] = loop.train_and_evaluate(classifier, tmp_path / name)
    (finetuned, finetuned_row), (probe, probe_row) = runs["finetune"], runs["probe"]
    # The probe's encoder is the pretrained one, bit for bit; the fine-tuned one has moved.
    chex.assert_trees_all_equal(probe.params["autoencoder"]["encoder"], pretrained["encoder"])
    assert not np.array_equal(
        finetuned.params["autoencoder"]["encoder"]["mlp"]["dense0"]["kernel"],
        pretrained["encoder"]["mlp"]["dense0"]["kernel"],
    )
    # A 2-D code chosen for the labels separates digits far better than PCA's plane does.
    assert finetuned_row["test/accuracy"] > probe_row["test/accuracy"] + 0.1, (
        finetuned_row,
        probe_row,
    )




@pytest.fixture(scope="module")
def digits():
    """Eight real mnist5k test digits in [0, 1]."""
    return jnp.asarray(sources.load("mnist5k", "test")[0][:8])


@pytest.mark.parametrize("head_input", classifier.HEAD_INPUTS)
def test_the_head_reads_the_flattened_code_or_reconstruction(digits, head_input):
    """logits = flatten(features) @ W + b, the features the autoencoder's code or, with
    `head_input="decoded"`, sigmoid of its decoder's logits; the code is returned beside them."""
    autoencoder = factory.build(load_config("mlp").model)  # a 32-unit ReLU code
    model = classifier.Classifier(autoencoder, num_classes=10, head_input=head_input)
    params = model.init(jax.random.key(0), digits)["params"]
    assert set(params) == {"autoencoder", "head"}
    logits, aux = model.apply({"params": params}, digits)
    code = autoencoder.apply({"params": params["autoencoder"]}, digits, method="encode").code
    np.testing.assert_allclose(aux["code"], code, rtol=1e-6)
    features = code
    if head_input == "decoded":
        features = jax.nn.sigmoid(
            autoencoder.apply({"params": params["autoencoder"]}, code, method="decode")
        ).reshape(8, -1)
    head = params["head"]
    assert head["kernel"].shape == (features.shape[1], 10) and logits.shape == (8, 10)
    np.testing.assert_allclose(logits, features @ head["kernel"] + head["bias"], rtol=1e-4, atol=1e-5)
