"""Generative evaluation: the Fréchet distance against closed forms and scipy, precision and
recall by hand, and on real mnist5k test images in the features of a feature network trained
for one epoch: FID 0 against itself, rising with noise; a run's scores the same twice."""

import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg
from conftest import tiny_config

from aejax import api
from aejax.data import sources
from aejax.evaluation import fidelity
from aejax.training import loop


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """The shipped feature network as the protocol trains it, on mnist5k (5 epochs, 30 s)."""
    config = tiny_config("vae")
    return fidelity.feature_run(config.data, tmp_path_factory.mktemp("features"))


@pytest.fixture(scope="module")
def test_images():
    return sources.load("mnist5k", "test")[0]  # float32 [1000, 28, 28, 1]


@pytest.fixture(scope="module")
def test_features(net, test_images):
    return fidelity.features(net, test_images)


def _random_covariance(rng, d, rank=None):
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / d


# Invented gaussians: their distance has a closed form or a reference to check the maths on.
def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    rng = np.random.default_rng(0)
    mu_a, mu_b = rng.normal(size=5), rng.normal(size=5)
    var_a, var_b = rng.uniform(0.1, 3, size=5), rng.uniform(0.1, 3, size=5)
    want = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
    got = fidelity.frechet_distance(mu_a, np.diag(var_a), mu_b, np.diag(var_b))
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("rank", [None, 3])  # full, then singular covariances (fewer points than d)
def test_frechet_distance_matches_scipy_sqrtm(rank):
    rng = np.random.default_rng(1)
    mu_a, mu_b = rng.normal(size=8), rng.normal(size=8)
    cov_a, cov_b = _random_covariance(rng, 8, rank), _random_covariance(rng, 8, rank)
    root = scipy.linalg.sqrtm(cov_a @ cov_b)
    want = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root).real
    np.testing.assert_allclose(fidelity.frechet_distance(mu_a, cov_a, mu_b, cov_b), want, rtol=1e-7)


def test_fid_fits_mean_and_unbiased_covariance():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(50, 4)), rng.normal(1.0, 2.0, size=(40, 4))
    want = fidelity.frechet_distance(a.mean(0), np.cov(a.T), b.mean(0), np.cov(b.T))
    assert fidelity.fid(a, b) == want
    assert fidelity.fid(a, a + 3.0) == pytest.approx(4 * 9.0)  # a shift moves only the means


def test_precision_and_recall_by_hand():
    # Invented 1-D points whose k = 1 balls are worked out by hand: real radii 1, 1, 1, 1, 7 (the
    # outlier 10 reaches back to 3); fake radii 4.5, 4.5, 15, 80.
    real = np.array([[0.0], [1.0], [2.0], [3.0], [10.0]])
    fake = np.array([[0.5], [5.0], [20.0], [100.0]])
    np.testing.assert_array_equal(fidelity.knn_radii(real, k=1), [1, 1, 1, 1, 49])  # squared
    # 0.5 lies in 0's ball, 5 in the outlier's; 20 and 100 in none. Every real point lies in a
    # fake ball: 0..3 in 0.5's, 10 in 20's (radius 15), not in 5's (radius 4.5).
    assert fidelity.precision_recall(real, fake, k=1) == (0.5, 1.0)
    assert fidelity.precision_recall(real, fake, k=1, batch_size=2) == (0.5, 1.0)


def test_a_manifold_needs_more_points_than_neighbours():
    with pytest.raises(ValueError, match="k=3 neighbours needs more than 3 points"):
        fidelity.knn_radii(np.zeros((3, 2)))


@pytest.mark.slow
def test_features_are_the_penultimate_layer_the_softmax_head_reads(net, test_images, test_features):
    assert test_features.shape == (1000, 4 * 4 * 64)  # the conv map, flattened
    logits, _ = net.model.apply({"params": net.params}, test_images[:10])
    head = net.params["head"]
    np.testing.assert_allclose(
        test_features[:10] @ head["kernel"] + head["bias"], logits, rtol=1e-4, atol=1e-4
    )


def test_fid_of_the_test_set_against_itself_is_about_zero(test_features):
    trace = np.trace(np.cov(test_features.T))
    assert abs(fidelity.fid(test_features, test_features)) < 1e-6 * trace  # round-off only


def test_fid_rises_monotonically_with_added_noise(net, test_images, test_features):
    rng = np.random.default_rng(0)
    noise = rng.normal(size=test_images.shape).astype(np.float32)
    fids = [
        fidelity.fid(test_features, fidelity.features(net, np.clip(test_images + s * noise, 0, 1)))
        for s in (0.1, 0.2, 0.4)
    ]
    assert all(a < b for a, b in zip(fids, fids[1:])), fids
    assert fids[0] > 1e3 * abs(fidelity.fid(test_features, test_features))


def test_precision_and_recall_of_the_test_set(net, test_images, test_features):
    assert fidelity.precision_recall(test_features, test_features) == (1.0, 1.0)
    blank = fidelity.features(net, np.ones_like(test_images[:100]))  # far from any digit
    far = fidelity.features(net, np.clip(test_images + 0.8, 0, 1))  # digits on a bright ground
    for other in (blank + np.arange(100)[:, None] * 1e-3, far):  # distinct points
        assert fidelity.precision_recall(test_features, other) == (0.0, 0.0)


@pytest.mark.slow
def test_a_runs_scores_are_the_same_twice_and_reuse_the_feature_network(net, tmp_path):
    config = tiny_config("vae", train__epochs=1)
    loop.train_and_evaluate(config, tmp_path / "vae")
    run = api.load_run(tmp_path / "vae")
    metrics_before = (net.workdir / "metrics.jsonl").read_text()
    first = fidelity.evaluate_run(run, net.workdir, samples=500)
    second = fidelity.evaluate_run(run, net.workdir, samples=500)
    assert json.dumps(first) == json.dumps(second)  # bitwise: floats printed in full
    assert (net.workdir / "metrics.jsonl").read_text() == metrics_before  # not retrained
    assert first["samples"] == 500 and first["test_images"] == 1000
    assert 0 < first["fid"] and 0 <= first["precision"] <= 1 and 0 <= first["recall"] <= 1


def test_a_feature_network_made_for_other_settings_is_refused(net):
    config = tiny_config("vae")
    with pytest.raises(ValueError, match=r"different config \(train.epochs: 5 -> 1\)"):
        fidelity.feature_run(config.data, net.workdir, epochs=1)


@pytest.mark.slow
def test_the_command_line_trains_a_vae_and_prints_its_scores(net, tmp_path):
    args = ["fidelity", "--config=vae", "--workdir=vae", "--config.train.epochs=1",
            "--config.model.encoder_widths=(8,)", "--config.model.latent_dim=2", "--samples=300",
            f"--features_workdir={net.workdir}"]  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "aejax.cli", *args], cwd=tmp_path, capture_output=True, text=True,
        check=False, timeout=900,  # the machine may be busy with training runs
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    printed = json.loads(out.stdout.strip().splitlines()[-1])
    assert printed == fidelity.evaluate_run(api.load_run(tmp_path / "vae"), net.workdir, samples=300)
