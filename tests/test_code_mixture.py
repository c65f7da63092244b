"""The Gaussian mixture fitted to codes: its density against hand-worked numbers, EM's recovery
of a known mixture and its never-falling likelihood, draws with the mixture's moments, and a
saved mixture read back whole.

The recovery test draws its codes from a mixture of known parameters: only there can the fitted
parameters be checked against the truth (real codes' mixture is unknown)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax.evaluation import code_mixture
from aejax.evaluation.code_mixture import GaussianMixture


def known_mixture() -> GaussianMixture:
    """Weights 0.75 / 0.25; means (-3, 0) and (3, 1); the second correlated."""
    scale_tril = jnp.asarray([[[0.5, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.6, 0.8]]])
    return GaussianMixture(jnp.log(jnp.asarray([0.75, 0.25])), jnp.asarray([[-3.0, 0.0], [3.0, 1.0]]), scale_tril)


def test_the_density_of_one_gaussian_and_of_a_mixture_by_hand():
    one = GaussianMixture(jnp.zeros(1), jnp.zeros((1, 1)), jnp.full((1, 1, 1), 2.0))
    # N(1; 0, 2^2) = exp(-1/8) / sqrt(2 pi 4)
    assert float(one.log_prob(jnp.ones((1, 1)))[0]) == pytest.approx(-0.125 - 0.5 * math.log(8 * math.pi), rel=1e-6)
    halves = GaussianMixture(jnp.log(jnp.asarray([0.5, 0.5])), jnp.asarray([[0.0], [2.0]]), jnp.ones((2, 1, 1)))
    # at x = 1 both components are 1 away: 0.5 N(1; 0, 1) + 0.5 N(1; 2, 1) = N(1; 0, 1)
    expected = -0.5 - 0.5 * math.log(2 * math.pi)
    assert float(halves.log_prob(jnp.ones((1, 1)))[0]) == pytest.approx(expected, rel=1e-6)
    mixture, x = known_mixture(), jnp.asarray([[0.5, -1.0], [2.0, 2.0]])
    covariance = mixture.scale_tril_KxDxD @ mixture.scale_tril_KxDxD.transpose(0, 2, 1)
    by_component = [
        jax.scipy.stats.multivariate_normal.logpdf(x, mixture.means_KxD[k], covariance[k]) for k in range(2)
    ]
    direct = jax.nn.logsumexp(jnp.stack(by_component, 1) + mixture.log_weights_K, axis=1)
    np.testing.assert_allclose(mixture.log_prob(x), direct, rtol=1e-5)


def test_draws_have_the_mixtures_mean_and_covariance():
    mixture = known_mixture()
    draws = np.asarray(mixture.sample(jax.random.key(0), 200_000))
    weights = np.exp(np.asarray(mixture.log_weights_K))
    means, tril = np.asarray(mixture.means_KxD), np.asarray(mixture.scale_tril_KxDxD)
    mean = weights @ means
    second = sum(w * (t @ t.T + np.outer(m, m)) for w, m, t in zip(weights, means, tril))
    np.testing.assert_allclose(draws.mean(0), mean, atol=0.02)
    np.testing.assert_allclose(np.cov(draws.T), second - np.outer(mean, mean), atol=0.05)


def test_em_recovers_a_known_mixture_and_its_likelihood_never_falls():
    truth = known_mixture()
    x = truth.sample(jax.random.key(1), 8_000)
    fitted = code_mixture.fit(x, jax.random.key(2), components=2)
    order = np.argsort(np.asarray(fitted.means_KxD[:, 0]))  # components come in any order
    np.testing.assert_allclose(np.exp(fitted.log_weights_K[order]), [0.75, 0.25], atol=0.02)
    np.testing.assert_allclose(fitted.means_KxD[order], truth.means_KxD, atol=0.06)
    np.testing.assert_allclose(fitted.scale_tril_KxDxD[order], truth.scale_tril_KxDxD, atol=0.05)
    likelihoods = [
        float(jnp.mean(code_mixture.fit(x, jax.random.key(2), 2, steps).log_prob(x))) for steps in range(6)
    ]
    assert all(b >= a - 1e-5 for a, b in zip(likelihoods, likelihoods[1:])), likelihoods
    assert float(jnp.mean(truth.log_prob(x))) == pytest.approx(likelihoods[-1], abs=0.01)


def test_a_saved_mixture_reads_back_whole_and_no_partial_file_stays(tmp_path):
    mixture, meta = known_mixture(), {"step": 40, "components": 2}
    code_mixture.save(mixture, tmp_path, meta)
    loaded, loaded_meta = code_mixture.load(tmp_path)
    assert loaded_meta == meta
    jax.tree.map(np.testing.assert_array_equal, loaded, mixture)
    assert [p.name for p in tmp_path.iterdir()] == [code_mixture.FILE]
    assert code_mixture.load(tmp_path / "elsewhere") is None
