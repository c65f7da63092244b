"""The corruption ops: their statistics match their settings, and images stay images."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from aejax.data import sources
from aejax.objectives import corruptions

N = 100 * 784  # pixels per sample below: binomial tolerances of a few 1e-3


def _corrupt(x, **cfg):
    return corruptions.build(ml_collections.ConfigDict(cfg))(x, jax.random.key(0))


def _binomial_tolerance(p: float) -> float:
    return 5 * np.sqrt(p * (1 - p) / N)  # five standard deviations of a fraction of N draws


def test_masking_zeroes_one_minus_keep_prob_of_the_pixels():
    x_tilde = _corrupt(jnp.ones((100, 28, 28, 1)), name="masking", keep_prob=0.7)
    assert set(np.unique(x_tilde)) == {0.0, 1.0}  # kept pixels are not rescaled
    assert abs(np.mean(x_tilde == 0) - 0.3) < _binomial_tolerance(0.3)


def test_gaussian_noise_has_std_factor_before_clipping():
    # At 0.5 with factor 0.1, clipping to [0, 1] would need a 5-sigma draw: the noise shows bare.
    noise = _corrupt(jnp.full((100, 28, 28, 1), 0.5), name="gaussian", factor=0.1, clip=True) - 0.5
    np.testing.assert_allclose(np.std(noise), 0.1, rtol=0.02)
    assert abs(np.mean(noise)) < 0.1 * 5 / np.sqrt(N)


@pytest.mark.parametrize("factor", [1.0, 0.4])
def test_unclipped_gaussian_noise_is_exactly_factor_times_a_standard_normal(factor):
    """On real digits, mostly 0 or 1, clipping would cut about half of every draw: unclipped,
    x_noisy - x keeps mean 0 and variance factor^2, and the pixels leave [0, 1]."""
    x = sources.load("mnist5k", "test")[0][:100]
    noisy = _corrupt(x, name="gaussian", factor=factor, clip=False)
    noise = noisy - x
    assert abs(np.mean(noise)) < factor * 5 / np.sqrt(N)
    # The sample variance of N normals has standard deviation sqrt(2 / N) of the variance.
    assert abs(np.var(noise) / factor**2 - 1) < 5 * np.sqrt(2 / N)
    assert np.mean((noisy < 0) | (noisy > 1)) > 0.3
    clipped = _corrupt(x, name="gaussian", factor=factor, clip=True)
    np.testing.assert_array_equal(clipped, np.clip(noisy, 0, 1))  # the same draws, then clipped


def test_salt_and_pepper_sets_its_fraction_to_0_or_1_evenly():
    x_tilde = _corrupt(jnp.full((100, 28, 28, 1), 0.5), name="salt_and_pepper", fraction=0.2)
    assert abs(np.mean(x_tilde != 0.5) - 0.2) < _binomial_tolerance(0.2)
    assert abs(np.mean(x_tilde == 1.0) - 0.1) < _binomial_tolerance(0.1)


@pytest.mark.parametrize(
    "cfg",
    [
        {"name": "gaussian", "factor": 0.5, "clip": True},
        {"name": "masking", "keep_prob": 0.7},
        {"name": "salt_and_pepper", "fraction": 0.2},
    ],
)
def test_corrupted_digits_stay_in_the_unit_interval_and_change(cfg):
    x = sources.load("mnist5k", "test")[0][:100]
    x_tilde = _corrupt(x, **cfg)
    assert x_tilde.shape == x.shape and x_tilde.dtype == x.dtype
    assert 0.0 <= float(x_tilde.min()) and float(x_tilde.max()) <= 1.0
    assert np.mean(x_tilde != x) > 0.05


@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"name": "blur"}, "unknown corruption 'blur'.*gaussian"),
        ({"name": "masking", "keep_prob": 1.5}, r"keep_prob must be in \[0.0, 1.0\]"),
        ({"name": "masking", "factor": 0.5}, r"'masking' takes \['keep_prob'\], got \['factor'\]"),
        ({"name": "gaussian", "factor": 0.5}, r"'gaussian' takes \['factor', 'clip'\], got"),
        ({"name": "gaussian", "factor": 0.5, "clip": 1}, "clip must be True or False, got 1"),
    ],
)
def test_bad_corruptions_are_refused(cfg, message):
    with pytest.raises(ValueError, match=message):
        corruptions.build(ml_collections.ConfigDict(cfg))
