"""The two-stage VAE sampler: the second stage is a VAE of the codes' size trained on them
standardised, kept in the run's workdir, and its decoded draws follow the codes' distribution."""

import jax
import numpy as np
import pytest
from conftest import eight_unit_run

import aejax
from aejax.evaluation import code_vae
from aejax.models import factory


def test_the_second_stage_is_a_vae_of_the_codes_size_learning_its_variance():
    config = code_vae.config(code_units=12, epochs=3, seed=4)
    model = factory.build(config.model)
    x = np.zeros((2, 12), np.float32)
    variables = model.init({"params": jax.random.key(0), "noise": jax.random.key(1)}, x)
    logits, aux = model.apply(variables, x, rngs={"noise": jax.random.key(2)})
    assert logits.shape == (2, 12) and aux["z"].shape == (2, 12)
    assert model.capabilities.learned_variance and "obs_logvar" in variables["params"]
    assert (config.seed, config.train.epochs, config.loss.likelihood) == (4, 3, "gaussian")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """`eight_unit_run` and a second stage trained 15 epochs on its codes."""
    run, x = eight_unit_run(tmp_path_factory.mktemp("run"))
    return run, x, run.fit_sampler(x, kind="two_stage", epochs=15)


@pytest.mark.slow
def test_the_second_stage_keeps_the_codes_standardisation_and_what_it_was_fitted_to(fitted):
    run, x, meta = fitted
    assert (meta["step"], meta["codes"], meta["code_units"], meta["epochs"]) == (run.step, 4000, 8, 15)
    stage, mean_D, std_D, saved = code_vae.load(run.workdir)
    codes = run.encode(x)
    np.testing.assert_allclose(mean_D, codes.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(std_D, codes.std(0) + 1e-6, rtol=1e-4, atol=1e-5)
    assert saved == meta and stage == run.workdir / code_vae.FOLDER
    second = aejax.load_run(stage)
    assert second.config.model.latent_dim == 8 and second.metrics()[-1]["epoch"] == 15
    steps = 15 * 40  # an upper bound: 4,000 codes in batches of 100, a tenth held out
    assert second.config.loss.kl_warmup_steps == steps // 2  # against collapse (code_vae.py)
    assert (run.workdir / "two_stage_samples.png").exists()


@pytest.mark.slow
def test_two_stage_draws_follow_the_codes_and_decode_to_images(fitted):
    """Its draws' per-unit means and deviations are the codes' (within a quarter of each unit's
    deviation, and a factor of 1.5), which N(0, I) draws are not; decoded, they are images,
    the same for the same seed, from `sample` and a reloaded run alike."""
    run, x, _ = fitted
    codes = run.encode(x)
    stage, mean_D, std_D, _ = code_vae.load(run.workdir)
    draws = aejax.load_run(stage).sample(4000, seed=0, sampler="prior") * std_D + mean_D
    assert np.all(np.abs(draws.mean(0) - codes.mean(0)) < 0.25 * codes.std(0))
    assert np.all((draws.std(0) > codes.std(0) / 1.5) & (draws.std(0) < 1.5 * codes.std(0)))
    normal = np.random.default_rng(0).normal(size=codes.shape)
    assert not np.all(np.abs(normal.mean(0) - codes.mean(0)) < 0.25 * codes.std(0))
    images = run.sample(6, seed=2, sampler="two_stage")
    assert images.shape == (6, 28, 28, 1) and 0 <= images.min() and images.max() <= 1
    np.testing.assert_array_equal(aejax.load_run(run.workdir).sample(6, seed=2), images)
    assert not np.array_equal(run.sample(6, seed=3, sampler="two_stage"), images)


@pytest.mark.slow
def test_an_interrupted_refit_leaves_the_fitted_second_stage(fitted, monkeypatch):
    run, x, meta = fitted

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(code_vae, "train_and_evaluate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run.fit_sampler(x, kind="two_stage", epochs=3)
    assert code_vae.load(run.workdir)[-1] == meta
    assert run.sample(2, seed=2, sampler="two_stage").shape == (2, 28, 28, 1)
