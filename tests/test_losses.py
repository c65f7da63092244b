"""The objectives' maths: KL in closed form, likelihoods, and the ELBO's parts."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax import losses, models


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    zeros = jnp.zeros((3, 5))
    np.testing.assert_allclose(losses.gaussian_kl(zeros, zeros), 0.0, atol=1e-7)
    mu, logvar = jax.random.normal(jax.random.key(0), (2, 3, 5))
    assert np.all(losses.gaussian_kl(mu, logvar) > 0)


def test_closed_form_kl_matches_monte_carlo():
    k1, k2, k3 = jax.random.split(jax.random.key(1), 3)
    mu, logvar = jax.random.normal(k1, (4,)), 0.5 * jax.random.normal(k2, (4,))
    z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(k3, (200_000, 4))
    log_q = jax.scipy.stats.norm.logpdf(z, mu, jnp.exp(0.5 * logvar)).sum(-1)
    log_p = jax.scipy.stats.norm.logpdf(z).sum(-1)
    np.testing.assert_allclose(jnp.mean(log_q - log_p), losses.gaussian_kl(mu, logvar), rtol=0.02)


def test_bernoulli_reconstruction_is_bce_of_the_sigmoid():
    logits = jnp.array([-3.0, 0.0, 2.0])
    x = jnp.array([0.0, 0.5, 1.0])
    p = jax.nn.sigmoid(logits)
    expected = -(x * jnp.log(p) + (1 - x) * jnp.log(1 - p))
    np.testing.assert_allclose(losses.reconstruction(logits, x, "bernoulli"), expected, rtol=1e-6)


def test_vae_loss_is_reconstruction_plus_kl(tiny):
    config = tiny("vae")
    model = models.build(config.model)
    x = jax.random.uniform(jax.random.key(2), (6, 28, 28, 1))
    params = model.init({"params": jax.random.key(3), "noise": jax.random.key(4)}, x)["params"]
    loss, metrics = losses.make_loss_fn(model, config.loss)(params, x, jax.random.key(5), True)
    assert metrics["kl"] >= 0
    np.testing.assert_allclose(loss, metrics["recon"] + metrics["kl"], rtol=1e-6)
    # Summed over 784 pixels, an untrained decoder pays about log(2) nats per pixel.
    assert 784 * 0.5 < metrics["recon"] < 784 * 1.0


def test_unknown_likelihood_is_refused(tiny):
    config = tiny("mlp", loss__likelihood="poisson")
    with pytest.raises(ValueError, match="unknown likelihood 'poisson'.*bernoulli"):
        losses.make_loss_fn(models.build(config.model), config.loss)


def test_rng_streams_are_distinct_and_a_function_of_the_step_key():
    def streams(seed):
        keys = losses.rng_streams(jax.random.key(seed))
        return {name: np.asarray(jax.random.key_data(key)) for name, key in keys.items()}

    first = streams(0)
    assert set(first) == {"noise", "corruption"}
    assert not np.array_equal(first["noise"], first["corruption"])
    chex.assert_trees_all_equal(first, streams(0))
