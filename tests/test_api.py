"""The Python API: `aejax.fit` on a notebook's arrays, `aejax.load_run`, and what a Run does;
importing aejax changes nothing in the process."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import tiny_config

import aejax
from aejax.data import sources


@pytest.fixture(scope="module")
def digits():
    """mnist5k as a notebook holds it: numpy images and labels, 800 of the training images."""
    train_x, train_y = sources.load("mnist5k", "train")
    test_x, test_y = sources.load("mnist5k", "test")
    return (train_x[:800], train_y[:800]), (test_x[:300], test_y[:300])


@pytest.fixture(scope="module")
def vae_run(digits, tmp_path_factory):
    train, test = digits
    workdir = tmp_path_factory.mktemp("vae")
    return aejax.fit(tiny_config("vae"), train=train, test=test[0], workdir=workdir, train__epochs=2)


@pytest.mark.slow
def test_fit_trains_on_the_arrays_given(vae_run):
    rows = vae_run.metrics()
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[-1]["step"] == 2 * (800 // 150)  # 800 images, not mnist5k's 4,000
    assert rows[-1]["test/loss"] < rows[0]["test/loss"]
    assert vae_run.config.data.name == "arrays" and vae_run.config.train.epochs == 2


def test_fit_then_load_run_round_trips(vae_run, digits):
    loaded = aejax.load_run(vae_run.workdir)
    jax.tree.map(np.testing.assert_array_equal, loaded.params, vae_run.params)
    x = digits[1][0][:20]
    np.testing.assert_array_equal(loaded.encode(x), vae_run.encode(x))
    assert loaded.config.to_dict() == vae_run.config.to_dict()
    assert loaded.metrics() == vae_run.metrics()


def test_fit_again_in_the_same_workdir_resumes_the_run(vae_run, digits):
    train, test = digits
    again = aejax.fit(tiny_config("vae"), train=train, test=test[0], workdir=vae_run.workdir, train__epochs=2)
    jax.tree.map(np.testing.assert_array_equal, again.params, vae_run.params)
    with pytest.raises(ValueError, match="different config.*opt.lr"):
        aejax.fit(tiny_config("vae"), train=train, test=test[0], workdir=vae_run.workdir, train__epochs=2, opt__lr=0.1)


def test_a_vae_run_encodes_decodes_samples_and_interpolates(vae_run, digits):
    x = digits[1][0][:5]
    z = vae_run.encode(x)
    assert z.shape == (5, 4)  # tiny_config's latent
    recon = vae_run.reconstruct(x)
    np.testing.assert_allclose(recon, vae_run.decode(z), rtol=1e-6)
    assert recon.shape == x.shape and 0 <= recon.min() and recon.max() <= 1
    samples = vae_run.sample(7, seed=1)
    assert samples.shape == (7, 28, 28, 1)
    np.testing.assert_array_equal(samples, vae_run.sample(7, seed=1))
    assert not np.array_equal(samples, vae_run.sample(7, seed=2))
    path = vae_run.interpolate(x[:2], x[2:4], steps=3)
    assert path.shape == (2, 5, 28, 28, 1)
    np.testing.assert_array_equal(path[:, 0], x[:2])
    np.testing.assert_allclose(path[:, 1], vae_run.decode(z[:2]), rtol=1e-5)  # t = 0: the code of a


def test_a_deterministic_autoencoder_samples_from_a_mixture_fitted_to_its_codes(digits, tmp_path):
    train, test = digits
    run = aejax.fit("mlp", train=train[0], test=test[0], workdir=tmp_path, train__epochs=1, model__encoder_widths=(8,))
    assert run.encode(test[0][:3]).shape == (3, 8)
    assert run.interpolate(test[0][:1], test[0][1:2], steps=2).shape == (1, 4, 28, 28, 1)
    with pytest.raises(TypeError, match=r"'mlp' is a deterministic autoencoder.*run.fit_sampler\(\)"):
        run.sample(4)
    with pytest.raises(ValueError, match=r"trained on arrays it did not keep.*run.fit_sampler\(x_train\)"):
        run.fit_sampler()
    fitted = run.fit_sampler(train[0], components=3)
    assert (fitted["codes"], fitted["code_units"], fitted["step"]) == (800, 8, run.step)
    assert (tmp_path / "mixture_samples.png").exists()
    samples = run.sample(5, seed=1)
    assert samples.shape == (5, 28, 28, 1) and 0 <= samples.min() and samples.max() <= 1
    np.testing.assert_array_equal(aejax.load_run(tmp_path).sample(5, seed=1), samples)
    with pytest.raises(TypeError, match="deterministic autoencoder"):
        run.sample(4, sampler="prior")
    longer = aejax.fit("mlp", train=train[0], test=test[0], workdir=tmp_path, train__epochs=2,
                       model__encoder_widths=(8,), resume_changes=("train.epochs",))  # fmt: skip
    assert longer.step == 2 * run.step
    with pytest.raises(ValueError, match=rf"mixture sampler .* fitted to the codes at step {run.step}, and the run is now at step {longer.step}: fit it again"):
        longer.sample(4)
    longer.fit_sampler(train[0], components=3)
    assert not np.array_equal(longer.sample(5, seed=1), samples)


def test_a_vae_samples_its_prior_or_a_mixture_fitted_to_its_codes(vae_run, digits, tmp_path):
    run = aejax.load_run(vae_run.workdir)
    prior = run.sample(6, seed=3)
    with pytest.raises(ValueError, match=r"holds no mixture sampler: fit one, run.fit_sampler\(kind='mixture'\)"):
        run.sample(6, sampler="mixture")
    with pytest.raises(ValueError, match=r"unknown sampler 'gmm'; choose one of \(None, 'mixture', 'two_stage', 'transformer', 'prior'\)"):
        run.sample(6, sampler="gmm")
    run.fit_sampler(digits[0][0], components=2)
    try:
        assert not np.array_equal(run.sample(6, seed=3), prior)  # the mixture's, when there is one
        np.testing.assert_array_equal(run.sample(6, seed=3, sampler="prior"), prior)
    finally:  # the module's other tests read this run as trained
        (run.workdir / "code_mixture.npz").unlink()
        (run.workdir / "mixture_samples.png").unlink()


def test_fit_refuses_arrays_that_are_not_images_of_the_config(digits, tmp_path):
    train, test = digits
    with pytest.raises(ValueError, match=r"train: images must have rank 4, .*got shape \(800, 28, 28\)"):
        aejax.fit("mlp", train=train[0][..., 0], test=test[0], workdir=tmp_path)
    with pytest.raises(ValueError, match=r"train: float images must lie in \[0, 1\]"):
        aejax.fit("mlp", train=train[0] * 255, test=test[0], workdir=tmp_path)
    with pytest.raises(ValueError, match=r"train: labels must be one per image"):
        aejax.fit("mlp", train=(train[0], train[1][:10]), test=test[0], workdir=tmp_path)
    with pytest.raises(ValueError, match="no field opt.lrr"):
        aejax.fit("mlp", train=train[0], test=test[0], workdir=tmp_path, opt__lrr=0.1)
    assert not (tmp_path / "config.json").exists()


def test_importing_aejax_changes_nothing_in_the_process():
    """XLA_FLAGS and matplotlib's backend as they were, after importing every module."""
    script = (
        "import os, sys, matplotlib\n"
        "before = (os.environ.get('XLA_FLAGS'), dict.__getitem__(matplotlib.rcParams, 'backend'))\n"
        "import aejax, aejax.cli, aejax.training.loop, aejax.evaluation.figures, aejax.evaluation.representation, aejax.evaluation.generation\n"
        "after = (os.environ.get('XLA_FLAGS'), dict.__getitem__(matplotlib.rcParams, 'backend'))\n"
        "assert before == after, (before, after)\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "MPLBACKEND")}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]


def test_a_run_on_a_data_path_records_no_dataset_name_and_resumes(digits, tmp_path):
    train, test = digits
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=train[0][:300], x_test=test[0][:100])
    run = aejax.fit("mlp", workdir=tmp_path / "run", data__path=str(path), train__epochs=1)
    assert (run.config.data.name, run.config.data.path) == ("", str(path))
    recorded = tmp_path / "run" / "config.json"
    saved = json.loads(recorded.read_text())
    saved["data"]["name"] = "mnist5k"  # as recorded before: the default name the run never read
    recorded.write_text(json.dumps(saved))
    aejax.fit("mlp", workdir=tmp_path / "run", data__path=str(path), train__epochs=1)
    assert json.loads(recorded.read_text())["data"]["name"] == ""
