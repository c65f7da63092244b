"""The objective of a prior over a VQ-VAE's codes: the codes' negative log-likelihood in nats
per code, deterministic, and refused for a model that is not a code prior."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config

from aejax.data import sources
from aejax.models import factory
from aejax.objectives import prior_nll


@pytest.fixture(scope="module")
def prior():
    """A code prior (16 wide, 1 layer) over a tiny VQ-VAE's 7x7 map of 64 codes, at its initial
    parameters, and eight real mnist5k test digits."""
    config = tiny_config("vqvae_prior")
    config.model.autoencoder = tiny_config("vqvae").model
    config.model.embed_dim, config.model.num_layers, config.model.num_heads = 16, 1, 2
    model = factory.build(config.model)
    x = jnp.asarray(sources.load("mnist5k", "test")[0][:8])
    params = jax.jit(model.init)(jax.random.key(0), x)["params"]
    loss_fn = jax.jit(prior_nll.make_loss_fn(model, config.loss), static_argnums=3)
    return model, params, loss_fn, x


def test_the_loss_is_the_codes_cross_entropy_in_nats_per_code(prior):
    model, params, loss_fn, x = prior
    loss, metrics = loss_fn(params, x, jax.random.key(1), True)
    logits, aux = jax.jit(model.apply)({"params": params}, x)
    codes = np.asarray(aux["codes"])
    assert logits.shape == (8, 49, 64) and codes.shape == (8, 49)
    log_p = np.asarray(jax.nn.log_softmax(logits))
    want = -np.mean(np.take_along_axis(log_p, codes[..., None], axis=-1))
    np.testing.assert_allclose(loss, want, rtol=1e-5)
    assert metrics == {"nll": loss, "loss": loss}
    assert abs(float(loss) - np.log(64)) < 0.5  # an untrained prior is near uniform


def test_neither_the_key_nor_the_step_changes_it(prior):
    _, params, loss_fn, x = prior
    first = loss_fn(params, x, jax.random.key(1), True)[0]
    assert loss_fn(params, x, jax.random.key(2), True)[0] == first
    assert loss_fn(params, x, jax.random.key(1), True, jnp.int32(300))[0] == first


def test_a_model_that_is_not_a_code_prior_is_refused():
    config = tiny_config("vqvae")
    with pytest.raises(ValueError, match=r"needs model.name='code_prior' .*not Autoencoder"):
        prior_nll.make_loss_fn(factory.build(config.model), config.loss)
