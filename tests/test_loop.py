"""The training loop: it learns, it is deterministic, and a resumed run continues exactly."""

import chex
import numpy as np
import pytest
from conftest import initial_test_metrics

from aejax.training import checkpoint, loop
from aejax.training.step import CompileClock


@pytest.mark.parametrize("name", ["mlp", "vae"])
@pytest.mark.slow
def test_loss_falls_well_below_its_start(tiny, tmp_path, name):
    config = tiny(name, train__epochs=10 if name == "mlp" else 3)
    start = initial_test_metrics(config)["loss"]
    _, row = loop.train_and_evaluate(config, tmp_path)
    assert row["test/loss"] < 0.6 * start, (start, row)
    if name == "vae":
        assert row["test/kl"] > 0
        np.testing.assert_allclose(row["test/loss"], row["test/recon"] + row["test/kl"], rtol=1e-5)


@pytest.mark.slow
def test_run_writes_metrics_checkpoints_and_figures(tiny, tmp_path):
    loop.train_and_evaluate(tiny("vae"), tmp_path)
    rows = checkpoint.read_metrics(tmp_path)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(np.isfinite(r["test/loss"]) and r["samples_per_s"] > 0 for r in rows)
    for figure in ("loss_curves.png", "reconstructions.png", "samples.png"):
        assert (tmp_path / figure).stat().st_size > 1000
    assert checkpoint.manager(tmp_path, 3).latest_step() == rows[-1]["step"]


@pytest.mark.slow
def test_same_seed_same_parameters_and_other_seed_differs(tiny, tmp_path):
    a, _ = loop.train_and_evaluate(tiny("vae"), tmp_path / "a")
    b, _ = loop.train_and_evaluate(tiny("vae"), tmp_path / "b")
    c, _ = loop.train_and_evaluate(tiny("vae", seed=1), tmp_path / "c")
    chex.assert_trees_all_equal(a.params, b.params)
    assert not np.array_equal(a.params["mu_head"]["kernel"], c.params["mu_head"]["kernel"])


@pytest.mark.parametrize("stop", [30, 26])  # inside an epoch (26 steps at batch 150), and at its end
@pytest.mark.slow
def test_interrupted_and_resumed_run_equals_uninterrupted(tiny, tmp_path, stop):
    config = tiny("vae", train__epochs=3)
    whole, whole_row = loop.train_and_evaluate(config, tmp_path / "whole")
    loop.train_and_evaluate(config, tmp_path / "cut", max_steps=stop)
    assert checkpoint.manager(tmp_path / "cut", 3).latest_step() >= stop
    resumed, resumed_row = loop.train_and_evaluate(config, tmp_path / "cut")
    chex.assert_trees_all_equal(whole.params, resumed.params)
    chex.assert_trees_all_equal(whole.opt_state, resumed.opt_state)
    assert resumed_row["test/loss"] == whole_row["test/loss"]
    assert [r["epoch"] for r in checkpoint.read_metrics(tmp_path / "cut")] == [1, 2, 3]


def test_changed_config_under_existing_workdir_is_refused(tiny, tmp_path):
    loop.train_and_evaluate(tiny("mlp", train__epochs=1), tmp_path)
    with pytest.raises(ValueError, match=r"different config \(opt.lr: 0.001 -> 0.01\).*new --workdir"):
        loop.train_and_evaluate(tiny("mlp", train__epochs=1, opt__lr=0.01), tmp_path)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"train__batch_size": 100_000}, "batch_size=100000 must be between 1 and the 4000"),
        ({"opt__lr": float("nan")}, "opt.lr=nan must be a positive finite number"),
        ({"opt__name": "lion"}, "unknown optimizer 'lion'"),
        ({"model__name": "nope"}, "unknown model 'nope'"),
    ],
)
def test_bad_configs_get_clear_errors(tiny, tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        loop.train_and_evaluate(tiny("mlp", **overrides), tmp_path)


def test_chunks_compile_once_per_length_and_compilation_is_logged_apart(tiny, tmp_path, monkeypatch):
    """20 steps an epoch in chunks of 7 are two lengths (7 and 6): with the epoch order, three
    compilations in three epochs, all in epoch 1's row, none timed as training."""
    compiled_for = []
    compile_ahead = CompileClock.compile
    monkeypatch.setattr(
        CompileClock, "compile", lambda self, *a: compiled_for.append(a) or compile_ahead(self, *a)
    )
    monkeypatch.setattr("aejax.evaluation.figures.write_figures", lambda *args, **kwargs: None)
    loop.train_and_evaluate(tiny("mlp", train__epochs=3), tmp_path)
    rows = checkpoint.read_metrics(tmp_path)
    lengths = sorted(len(a[3]) for a in compiled_for if len(a) == 5)  # (jitted, state, dataset, idx, rng)
    assert len(compiled_for) == 3 and lengths == [6, 7]
    assert rows[0]["compile_seconds"] > 0 and [r["compile_seconds"] for r in rows[1:]] == [0.0, 0.0]
    assert all(r["epoch_seconds"] > 0 for r in rows)
