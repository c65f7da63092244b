"""The likelihoods against their textbook forms, and the mean images they imply."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax.objectives import likelihoods


def test_bernoulli_reconstruction_is_bce_of_the_sigmoid():
    logits = jnp.array([-3.0, 0.0, 2.0])
    x = jnp.array([0.0, 0.5, 1.0])
    p = jax.nn.sigmoid(logits)
    expected = -(x * jnp.log(p) + (1 - x) * jnp.log(1 - p))
    np.testing.assert_allclose(likelihoods.reconstruction(logits, x, "bernoulli"), expected, rtol=1e-6)


def test_gaussian_with_a_variance_is_the_normal_density_in_nats():
    k1, k2 = jax.random.split(jax.random.key(6))
    mean, x = jax.random.normal(k1, (5,)), jax.random.normal(k2, (5,))
    logvar = jnp.log(0.3)
    nll = likelihoods.reconstruction(mean, x, "gaussian", logvar)
    np.testing.assert_allclose(nll, -jax.scipy.stats.norm.logpdf(x, mean, jnp.sqrt(0.3)), rtol=1e-5)
    # MSE is the same objective up to scale and a constant: 0.5 (x - m)^2 / var + c.
    mse = likelihoods.reconstruction(mean, x, "gaussian")
    np.testing.assert_allclose(nll - 0.5 * mse / 0.3, 0.5 * jnp.log(2 * jnp.pi * 0.3), rtol=1e-5)


def test_the_mean_image_is_the_sigmoid_of_bernoulli_logits_and_the_gaussian_mean_itself():
    logits = jnp.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(likelihoods.mean_image(logits, "bernoulli"), jax.nn.sigmoid(logits))
    np.testing.assert_array_equal(likelihoods.mean_image(logits, "gaussian"), logits)


def test_per_image_sums_the_three_image_axes():
    per_pixel = jnp.ones((2, 3, 4, 5, 1))
    np.testing.assert_array_equal(likelihoods.per_image(per_pixel), jnp.full((2, 3), 20.0))


def test_an_unknown_likelihood_is_named():
    with pytest.raises(ValueError, match="unknown likelihood 'poisson'"):
        likelihoods.reconstruction(jnp.zeros(2), jnp.zeros(2), "poisson")
