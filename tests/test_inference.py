"""The one inference module: codes, mean images, reconstructions and samples, batched as they
would be unbatched, a VAE's codes its posterior means, samples seeded, and a model without a
prior refused by name."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax import configs
from aejax.data import sources
from aejax.data.dataset import as_float
from aejax.evaluation import inference
from aejax.models import factory

IMAGE_SHAPE = (28, 28, 1)


def _build(name: str, **model_fields):
    """A shipped config's model, fitted to 28x28 digits of 10 classes."""
    config = configs.load(name)
    config.model.update(model_fields)
    return factory.build(factory.fit_to_data(config.model, IMAGE_SHAPE, 10, 1000))


@functools.cache
def _model(name: str, **model_fields):
    """`_build`'s model, untrained, with its parameters at initialisation."""
    model = _build(name, **model_fields)
    rngs = {"params": jax.random.key(0), "noise": jax.random.key(1)}
    variables = jax.jit(model.init)(rngs, jnp.zeros((1, *IMAGE_SHAPE)))
    return model, variables["params"]


@pytest.fixture(scope="module")
def digits():
    """25 mnist5k test digits, stored as uint8 as a dataset holds them."""
    return sources.dataset("mnist5k", "test").images[:25]


def _close(got, want):
    """Equal up to the last bits a matrix product's batch size moves on XLA:CPU."""
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["vae2d", pytest.param("conv", marks=pytest.mark.slow)])
def test_batches_give_what_one_call_gives(name, digits):
    model, params = _model(name, encoder_widths=(16,)) if name == "vae2d" else _model(name)
    x = as_float(digits)
    whole = inference.codes(model, params, digits, batch_size=len(digits))
    _close(inference.codes(model, params, digits, batch_size=7), whole)
    _close(whole, model.apply({"params": params}, x, method="encode").code)
    decoded = inference.decode(model, params, whole, "bernoulli", batch_size=len(digits))
    _close(inference.decode(model, params, whole, "bernoulli", batch_size=6), decoded)
    logits = model.apply({"params": params}, whole, method="decode")
    _close(decoded, jax.nn.sigmoid(logits))
    recon = inference.reconstruct(model, params, digits, "bernoulli", batch_size=4)
    assert recon.shape == (25, *IMAGE_SHAPE)
    _close(recon, decoded)


def test_stored_uint8_images_are_scaled_as_training_scales_them(digits):
    model, params = _model("vae2d", encoder_widths=(16,))
    np.testing.assert_array_equal(
        inference.codes(model, params, digits), inference.codes(model, params, as_float(digits))
    )


def test_the_codes_of_a_vae_are_its_posterior_means(digits):
    model, params = _model("vae2d", encoder_widths=(16,))
    x = as_float(digits)
    _, aux = model.apply({"params": params}, x, rngs={"noise": jax.random.key(5)})
    codes = inference.codes(model, params, digits)
    _close(codes, aux["mu"])
    assert np.abs(np.asarray(codes - aux["z"])).min() > 0  # not a draw of the posterior
    np.testing.assert_array_equal(codes, inference.codes(model, params, digits))
    assert inference.code_shape(model, params, IMAGE_SHAPE) == (2,)


def test_samples_are_seeded_decoded_draws_of_the_prior():
    model, params = _model("vae2d", encoder_widths=(16,))
    key = jax.random.key(3)
    samples = inference.sample(model, params, key, 9, "bernoulli", IMAGE_SHAPE, batch_size=4)
    assert samples.shape == (9, *IMAGE_SHAPE)
    np.testing.assert_array_equal(
        samples, inference.sample(model, params, key, 9, "bernoulli", IMAGE_SHAPE, batch_size=4)
    )
    other = inference.sample(model, params, jax.random.key(4), 9, "bernoulli", IMAGE_SHAPE)
    assert not np.allclose(samples, other)
    draws = jax.random.normal(key, (9, 2))  # the key draws every code at once
    _close(samples, inference.decode(model, params, draws, "bernoulli"))


@pytest.mark.slow
def test_a_learned_prior_samples_its_own_codes_decoded():
    model, params = _model("vqvae_prior", embed_dim=16, num_layers=1, num_heads=2)
    images = inference.sample(model, params, jax.random.key(0), 3, "bernoulli", IMAGE_SHAPE)
    assert images.shape == (3, *IMAGE_SHAPE)
    assert 0 <= float(images.min()) and float(images.max()) <= 1


@pytest.mark.parametrize(
    "name, message",
    [
        ("mlp", "this model is a deterministic autoencoder whose codes were not matched to one"),
        ("vqvae", r"a VQ-VAE's codes have no N\(0, I\) prior.*aejax.fit\('vqvae_prior'"),
        ("fidelity_features", "this model has no decoder"),
    ],
)
def test_a_model_without_a_prior_is_refused_by_name(name, message):
    with pytest.raises(TypeError, match=message):  # before any parameter is read
        inference.sample(_build(name), None, jax.random.key(0), 2, "bernoulli", IMAGE_SHAPE)
