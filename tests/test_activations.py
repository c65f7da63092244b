"""Vectors from a trained run: a layer's outputs on the dataset's images, with their labels; a
source that is no run refused; and a sparse autoencoder trained from the command line out of
the box, on the feature network it trains first."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from test_progress import read_events

import aejax
from aejax import configs
from aejax.data import sources


def test_unknown_activations_source_is_refused(tmp_path):
    config = configs.override(configs.load("sae_topk"), data__activations=str(tmp_path / "none"))
    with pytest.raises(ValueError, match="neither a run's workdir .* nor a shipped config"):
        sources.from_config(config.data, "train")


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    """A 784-64-32 autoencoder trained one epoch on mnist5k: a network to read layers of."""
    workdir = tmp_path_factory.mktemp("mlp")
    return aejax.fit(
        "mlp", workdir=workdir, model__encoder_widths=(64, 32), train__epochs=1
    )


@pytest.mark.parametrize("layer, width", [(None, 32), (0, 64)])
def test_activations_are_a_runs_layer_on_its_dataset_with_labels(mlp_run, layer, width):
    config = configs.override(
        configs.load("sae_topk"), data__activations=str(mlp_run.workdir), data__layer=layer
    )
    test = sources.from_config(config.data, "test")
    images = sources.dataset("mnist5k", "test")
    assert test.image_shape == (width,) and len(test) == len(images)
    np.testing.assert_array_equal(test.labels, images.labels)
    if layer is None:
        np.testing.assert_allclose(test.images, mlp_run.encode(images.images), rtol=1e-5)


def test_each_epoch_logs_the_latents_that_never_fired_and_their_densities(mlp_run, tmp_path):
    run = aejax.fit(
        "sae_topk", workdir=tmp_path, data__activations=str(mlp_run.workdir), model__latents=64,
        model__k=4, train__batch_size=100, train__epochs=2,
    )  # fmt: skip
    rows = run.metrics()
    vectors = np.asarray(mlp_run.encode(sources.dataset("mnist5k", "test").images))
    latents = run.encode(vectors)  # as the layer gives them: the run scales them
    never = np.mean(np.all(latents <= 0, axis=0))
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[-1]["test/never_fired"] == pytest.approx(never)
    assert "test/loss_recovered" not in rows[-1]  # an autoencoder's code: no head to splice into
    error = np.mean(np.sum(np.square(run.reconstruct(vectors) - vectors), axis=1))  # as given
    scale, variance = run.config.data.vector_scale, run.config.model.data_variance  # as trained
    assert error * scale**2 / variance == pytest.approx(rows[-1]["test/fvu"], rel=1e-4)
    histograms = [
        (event.step, value.histo.num)
        for path in tmp_path.glob("events.out.tfevents.*")
        for event in read_events(path)
        for value in event.summary.value
        if value.tag == "test/log10_density"
    ]
    steps = [r["step"] for r in rows]
    assert sorted(step for step, _ in histograms) == steps
    for (_, latents_fired), row in zip(sorted(histograms), rows):
        assert latents_fired == 64 * (1 - row["test/never_fired"])


@pytest.mark.slow
def test_sae_topk_trains_out_of_the_box_on_the_feature_networks_activations(tmp_path):
    command = ["train", "--config", "sae_topk", "--workdir", "runs/sae", "--config.train.epochs=2"]
    done = subprocess.run(
        [sys.executable, "-m", "aejax.cli", *command], cwd=tmp_path, capture_output=True,
        text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"}, timeout=600, check=False,
    )  # fmt: skip; run in tmp_path: the feature network is trained into ./runs
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "training the run data.activations='fidelity_features' names" in done.stdout
    recorded = json.loads((tmp_path / "runs/sae/config.json").read_text())
    assert recorded["model"]["image_shape"] == [1024] and recorded["model"]["latents"] == 16384
    assert recorded["data"]["vector_scale"] > 0
    rows = aejax.load_run(tmp_path / "runs/sae").metrics()
    assert rows[-1]["test/fvu"] < rows[0]["test/fvu"] < 1 and rows[-1]["test/l0"] == 32
    scores = json.loads((tmp_path / "runs/sae/downstream.json").read_text())
    assert rows[-1]["test/loss_recovered"] == pytest.approx(scores["loss_recovered"], rel=1e-6)
    assert rows[-1]["test/accuracy_spliced"] == pytest.approx(scores["sae"]["accuracy"])
    assert scores["zero"]["accuracy"] < 0.2 < scores["sae"]["accuracy"] <= 1
    assert 0.5 < scores["loss_recovered"] <= 1.01
    for figure in ("feature_density.png", "top_activating.png", "loss_curves.png"):
        assert (tmp_path / "runs/sae" / figure).stat().st_size > 0
    assert (tmp_path / "runs/fidelity_features_mnist5k/config.json").is_file()
