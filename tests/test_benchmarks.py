"""The benchmark harness: one tiny configuration end to end, and the checks that make it fail.

No timing is asserted (speed belongs to the harness's own output): only that every figure it
writes exists, is finite and positive, and that unrun or diverged steps are refused.
"""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import load_config

from aejax.data import sources
from aejax.data.device import epoch_batches
from aejax.models import factory
from aejax.objectives import autoencoding
from aejax.training import setup
from aejax.training.state import create_state
from aejax.training.step import make_train_chunk, make_train_step
from benchmarks import matmul_bound, measure, report, run

TINY = [
    "--dataset",
    "mnist5k",
    "--set",
    "model.encoder_widths=(8,)",
    "--set",
    "train.batch_size=500",
    "--repeats",
    "2",
    "--min-seconds",
    "0",
]


@pytest.mark.slow
def test_harness_end_to_end(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"intro\n{report.BEGIN}\nold\n{report.END}\nlayout\n")
    out = tmp_path / "results"
    run.main(
        [
            "--parts",
            "models",
            "devices",
            "--models",
            "mlp",
            "--sweep-models",
            "mlp",
            "--device-counts",
            "2",
            *TINY,
            "--out",
            str(out),
            "--doc",
            str(doc),
        ]
    )

    (row,) = [json.loads(line) for line in (out / "models.jsonl").read_text().splitlines()]
    assert (row["model"], row["batch"], row["widths"]) == ("mlp", 500, [8])
    for key in (
        "flop_per_sample",
        "compile_s",
        "first_chunk_s",
        "samples_per_s",
        "naive_samples_per_s",
        "eval_samples_per_s",
        "epoch_s",
        "first_epoch_s",
        "naive_epoch_s",
        "peak_rss_mb",
        "process_s",
    ):
        assert math.isfinite(row[key]) and row[key] > 0, (key, row[key])
    for key in ("samples_per_s_spread", "naive_samples_per_s_spread"):
        assert math.isfinite(row[key]) and row[key] >= 0, (key, row[key])
    # 2 warm-up calls, then 2 runs of at least one chunk of 8 steps (4,000 images, batch 500).
    assert row["chunk"] == 8 and row["timed_steps"] >= 16
    (parallel,) = [json.loads(line) for line in (out / "devices.jsonl").read_text().splitlines()]
    assert parallel["devices"] == 2 and parallel["samples_per_s"] > 0  # the forced devices existed

    meta = json.loads((out / "models.meta.json").read_text())
    assert math.isfinite(meta["matmul_gflops"]) and meta["matmul_gflops"] > 0
    results = (out / "results.md").read_text()
    assert "python -m benchmarks.run --parts models devices" in results
    # Fractions of peak are of the matmul measured at the start, no peak being given.
    assert meta["peak_gflops"] is None
    assert f"matmul at the start of the run, {meta['matmul_gflops']:.0f} GFLOP/s." in results
    of_peak = row["flop_per_sample"] * row["samples_per_s"] / meta["matmul_gflops"] / 1e9
    ratio = row["samples_per_s"] / row["naive_samples_per_s"]
    assert f"| {ratio:.2f} | {of_peak:.0%} |" in results
    assert meta["machine"]["cpu"] in results
    assert f"{row['samples_per_s']:,.0f} ±{row['samples_per_s_spread']:.0%}" in results
    assert "| mlp | 500 |" in results and "(./devices.png)" in results
    assert (out / "devices.png").stat().st_size > 1000
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith("layout\n") and "old" not in text
    assert "results/devices.png" in text and "| mlp | 500 |" in text


@pytest.mark.slow
def test_a_classifier_config_is_measured_with_its_labels():
    # The classification objective gathers {"image", "label"} batches, on the device and in the
    # naive loop alike; a row that fed it images alone would fail here.
    config = measure.load_config("sdae_classifier", {"train.batch_size": 500})
    row = measure.measure(config, repeats=1, min_seconds=0, epoch=False)
    for key in ("samples_per_s", "naive_samples_per_s", "eval_samples_per_s", "flop_per_sample"):
        assert math.isfinite(row[key]) and row[key] > 0, (key, row[key])


@pytest.fixture
def tiny_run():
    """A tiny mlp's state, its compiled chunk of 2 steps and their batches on mnist5k."""
    config = load_config("mlp")
    config.model.encoder_widths = (8,)
    images = jax.device_put(sources.load("mnist5k", "train")[0])
    train_chunk = make_train_chunk(
        make_train_step(autoencoding.make_loss_fn(factory.build(config.model), config.loss))
    )
    idx = epoch_batches(jax.random.key(0), images.shape[0], 50)[:2]
    return create_state(config, images), lambda state, i: train_chunk(
        state, images, idx, jax.random.key(1)
    )


def test_steps_that_did_not_run_are_refused(tiny_run):
    state, two_steps = tiny_run
    state, _ = measure.timed_run(two_steps, state, calls=2, steps_per_call=2)  # counts right

    def skipped(state, i):  # returns the state it was given, as a step optimised away would
        return state, {"loss": jnp.zeros(2)}

    with pytest.raises(RuntimeError, match="did not all run"):
        measure.time_repeats({"skipped": (skipped, 2)}, state, repeats=2, min_seconds=0)
    with pytest.raises(ValueError, match="nothing to time"):
        measure.timed_run(two_steps, state, calls=0, steps_per_call=2)
    with pytest.raises(RuntimeError, match="at step 6, expected 7"):  # claims 3 steps, runs 2
        measure.timed_run(two_steps, state, calls=1, steps_per_call=3)


def test_the_loops_compared_take_turns(tiny_run):
    # aejax and the naive loop are timed run by run in turn, so a machine drifting in speed
    # between them cannot make their ratio.
    state, two_steps = tiny_run
    order = []

    def logged(name, steps_per_call):
        def advance(state, i):
            order.append((name, i))
            for _ in range(steps_per_call // 2):
                state, metrics = two_steps(state, i)
            return state, metrics

        return advance, steps_per_call

    state, runs = measure.time_repeats(
        {"a": logged("a", 4), "b": logged("b", 2)}, state, repeats=3, min_seconds=0
    )
    assert order == [("a", 0), ("a", 1), ("b", 0), ("b", 1)] + [
        (name, 2 + r) for r in range(3) for name in "ab"
    ]
    assert {name: (steps, len(seconds)) for name, (steps, seconds) in runs.items()} == {
        "a": (4, 3),
        "b": (2, 3),
    }
    assert int(state.step) == 2 * (4 + 2) + 3 * (4 + 2)


def test_a_nan_loss_is_refused(monkeypatch):
    # NaN parameters make every step's loss NaN at once (NaN images never get this far: a
    # Dataset refuses them).
    def nan_state(config, images, mesh):
        state = create_state(config, images, mesh)
        return state.replace(params=jax.tree.map(lambda p: p * np.nan, state.params))

    monkeypatch.setattr(setup, "create_state", nan_state)
    config = measure.load_config("mlp", {"model.encoder_widths": (8,), "train.batch_size": 500})
    with pytest.raises(FloatingPointError, match="non-finite loss"):
        measure.measure(
            config, repeats=1, min_seconds=0, naive=False, evaluation=False, epoch=False
        )


def test_the_matmul_bound_keeps_every_product():
    # XLA drops a product that nothing reads: the bound would then time fewer matmuls than a step
    # does, and claim a speed no step can have.
    layers = [(6, 5), (5, 3)]
    loop, operands = matmul_bound.matmul_steps(8, layers, steps=4)
    hlo = jax.jit(loop).lower(operands).compile().as_text()
    assert hlo.count(" dot(") == 3 * len(layers)


def test_bad_requests_are_refused(tmp_path, capsys):
    with pytest.raises(KeyError, match="no field 'train.batchsize'"):
        measure.load_config("mlp", {"train.batchsize": 64})
    with pytest.raises(ValueError, match="unknown model config"):
        measure.load_config("resnet")
    with pytest.raises(SystemExit):
        run.parse_args(["--peak-gflops", "0"])
    assert "a peak must be above 0 GFLOP/s, got 0" in capsys.readouterr().err
    doc = tmp_path / "benchmarks.md"
    doc.write_text("no markers\n")
    with pytest.raises(ValueError, match="no <!-- benchmarks:begin -->"):
        report.write_results(tmp_path, doc)
