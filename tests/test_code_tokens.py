"""The transformer sampler: each unit's codes binned at its quantiles, a causal transformer over
the bins trained by the one loop in the run's workdir, and draws that follow the codes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import eight_unit_run

import aejax
from aejax.evaluation import code_tokens
from aejax.models import code_prior, factory
from aejax.training import checkpoint


def test_bins_hold_equal_shares_and_values_stay_in_their_codes_bins():
    """Made-up codes, to know their distribution: a gaussian unit's 64 bins hold 1/64 of its
    codes each; a ReLU-like unit, zero for 40% of its codes, keeps its zeros exactly (a bin of
    no width); every value drawn for a code's token lies in that code's bin."""
    rng = np.random.default_rng(0)
    gaussian = rng.normal(size=6400)
    relu = np.maximum(rng.normal(size=6400) - 0.25, 0.0)  # zero for 60% of N(0, 1) draws
    codes = np.stack([gaussian, relu], axis=1)
    edges = code_tokens.bin_edges(codes)
    tokens = code_tokens.tokens(codes, edges)
    assert edges.shape == (2, 65) and tokens.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(tokens[:, 0], minlength=64), np.full(64, 100))
    values = np.asarray(code_tokens.values(jnp.asarray(tokens), jnp.asarray(edges), jax.random.key(1)))
    assert np.all(values[relu == 0, 1] == 0) and np.all(values[relu > 0, 1] > 0)
    width = edges[np.arange(2), tokens + 1] - edges[np.arange(2), tokens]
    assert np.all(np.abs(values - codes) <= width + 1e-12)


def test_the_token_prior_is_the_code_priors_transformer_over_the_codes_units():
    config = code_tokens.config(code_units=12, bins=64, epochs=3, seed=4)
    model = factory.build(config.model)
    assert isinstance(model, code_prior.TokenPrior) and model.capabilities.code_sequences
    x = np.zeros((2, 12), np.float32)
    logits, aux = model.apply(model.init(jax.random.key(0), x), x)
    assert logits.shape == (2, 12, 64) and aux["codes"].dtype == jnp.int32
    assert (config.seed, config.train.epochs, config.loss.objective) == (4, 3, "code_prior")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """`eight_unit_run` and a transformer trained 6 epochs on its binned codes."""
    run, x = eight_unit_run(tmp_path_factory.mktemp("run"))
    return run, x, run.fit_sampler(x, kind="transformer", epochs=6)


@pytest.mark.slow
def test_the_transformer_learns_the_codes_and_keeps_what_it_was_fitted_to(fitted):
    """Its test NLL per token falls below the uniform bins' log 64 and keeps falling."""
    run, _, meta = fitted
    assert (meta["step"], meta["codes"], meta["code_units"], meta["bins"]) == (run.step, 4000, 8, 64)
    stage, edges, saved = code_tokens.load(run.workdir)
    assert saved == meta and stage == run.workdir / code_tokens.FOLDER and edges.shape == (8, 65)
    rows = checkpoint.read_metrics(stage)
    assert rows[-1]["test/nll"] < rows[0]["test/nll"] < np.log(64), rows
    assert (run.workdir / "transformer_samples.png").exists()


@pytest.mark.slow
def test_transformer_draws_follow_the_codes_and_decode_to_images(fitted):
    """Its draws' per-unit means, deviations and shares of exact zeros are the codes' (within a
    fifth of each unit's deviation, a factor of 1.25, and 0.05); decoded, they are images, the
    same for the same seed, from `sample` and a reloaded run alike."""
    run, x, _ = fitted
    codes = run.encode(x)
    stage, edges, _ = code_tokens.load(run.workdir)
    prior = aejax.load_run(stage)
    draws = np.asarray(code_tokens.sample(prior.model, prior.params, edges, jax.random.key(0), 4000))
    assert np.all(np.abs(draws.mean(0) - codes.mean(0)) < 0.2 * codes.std(0))
    assert np.all((draws.std(0) > codes.std(0) / 1.25) & (draws.std(0) < 1.25 * codes.std(0)))
    np.testing.assert_allclose(np.mean(draws == 0, 0), np.mean(codes == 0, 0), atol=0.05)
    images = run.sample(6, seed=2, sampler="transformer")
    assert images.shape == (6, 28, 28, 1) and 0 <= images.min() and images.max() <= 1
    np.testing.assert_array_equal(aejax.load_run(run.workdir).sample(6, seed=2, sampler="transformer"), images)
    assert not np.array_equal(run.sample(6, seed=3, sampler="transformer"), images)
