"""Measures one model config on the current backend, in this process.

    python -m benchmarks.measure vae --dataset fashion_mnist --out row.json

One row: compile time and time to the first result; steady-state training samples/s of aejax's
compiled chunks (gathering from the dataset stored on the device, uint8 when 8-bit) and of
the naive loop (one jitted step per float32 batch gathered in host numpy);
evaluation samples/s; time per epoch through `aejax.training.loop.train_and_evaluate` itself; FLOP per
sample from XLA's cost analysis of the compiled step; peak memory. `benchmarks.run` starts one
process per row, so peak memory and compile times belong to that row alone.

Every timed run ends with `block_until_ready`, then checks that the state's step counter moved
by exactly the steps timed and that the loss is finite: a figure for steps that did not run, or
ran into NaN, is an error, not a row.
"""

import argparse
import ast
import functools
import json
import math
import resource
import statistics
import tempfile
import time
from pathlib import Path

import jax
import ml_collections
import numpy as np

from aejax import compiled, configs
from aejax.data import sources
from aejax.data.device import as_dataset
from aejax.training import checkpoint, loop, parallel, setup
from aejax.training.step import make_train_chunk


def model_names() -> list[str]:
    """Every shipped config: one per registered model variant."""
    return configs.names()


def load_config(name: str, overrides: dict | None = None) -> ml_collections.ConfigDict:
    """The shipped config `name`, with `{"train.batch_size": 64, ...}` overrides."""
    if name not in model_names():
        raise ValueError(f"unknown model config {name!r}; choose from {model_names()}")
    config = configs.load(name)
    for key, value in (overrides or {}).items():
        *groups, field = key.split(".")
        node = config
        for group in groups:
            node = node[group]
        if field not in node:
            raise KeyError(f"config {name!r} has no field {key!r} to override")
        node[field] = value
    return config


def check_ran(state, metrics: dict, expected_step: int) -> None:
    """Fails unless `state` is at `expected_step` and the last timed loss is finite."""
    step = int(state.step)
    if step != expected_step:
        raise RuntimeError(
            f"the state is at step {step}, expected {expected_step}: the timed steps did not all "
            "run, so their time is not a training speed"
        )
    loss = np.asarray(jax.device_get(metrics["loss"]))
    if loss.size == 0 or not np.all(np.isfinite(loss)):
        raise FloatingPointError(f"a timed step gave a non-finite loss {loss}: the run diverged")


def timed_run(advance, state, *, calls: int, steps_per_call: int, first_call: int = 0):
    """Seconds of `calls` calls of `advance`, blocked on, then checked with `check_ran`.

    `advance(state, i) -> (state, metrics)` runs `steps_per_call` steps as call `i`. The check
    comes after the clock stops and reads the last call's loss only, which is enough: a NaN
    anywhere reaches the parameters.
    """
    if calls < 1 or steps_per_call < 1:
        raise ValueError(f"nothing to time: {calls} calls of {steps_per_call} steps")
    expected_step = int(state.step) + calls * steps_per_call
    start = time.perf_counter()
    for i in range(first_call, first_call + calls):
        state, metrics = advance(state, i)
    state, metrics = jax.block_until_ready((state, metrics))
    seconds = time.perf_counter() - start
    check_ran(state, metrics, expected_step)
    return state, seconds


def time_repeats(loops: dict, state, *, repeats: int, min_seconds: float):
    """Seconds of `repeats` timed runs of each loop, the loops taking turns run by run.

    `loops` maps a name to `(advance, steps_per_call)`. Each loop gets a warm-up call, then a
    second, timed call sets how many calls make one of its runs last `min_seconds`, so that
    dispatch-bound and compute-bound loops are both timed over enough steps. Taking turns puts
    every loop's runs in the same minutes: a shared machine whose speed drifts (rows of two quiet
    runs here differed by up to half) moves them alike, and their ratio holds.
    Returns (state, {name: (steps in one run, [seconds of each run])}).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    calls = {}
    for name, (advance, steps_per_call) in loops.items():
        timed = functools.partial(timed_run, advance, steps_per_call=steps_per_call)
        state, _ = timed(state, calls=1)  # warm-up
        state, one_call = timed(state, calls=1, first_call=1)
        calls[name] = max(1, math.ceil(min_seconds / one_call))
    seconds = {name: [] for name in loops}
    for r in range(repeats):
        for name, (advance, steps_per_call) in loops.items():
            state, s = timed_run(
                advance,
                state,
                calls=calls[name],
                steps_per_call=steps_per_call,
                first_call=2 + r * calls[name],
            )
            seconds[name].append(s)
    return state, {name: (calls[name] * loops[name][1], seconds[name]) for name in loops}


def samples_per_s(batch_size: int, steps: int, seconds: list[float]) -> tuple[float, float]:
    """The median samples/s of timed runs, and half their range as a fraction of it."""
    rates = [steps * batch_size / s for s in seconds]
    median = statistics.median(rates)
    return median, (max(rates) - min(rates)) / 2 / median


def peak_memory() -> dict:
    """Peak resident memory of this process, and the device's peak where the backend says."""
    row = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # KiB on Linux
    stats = jax.local_devices()[0].memory_stats() or {}  # None on CPU
    if "peak_bytes_in_use" in stats:
        row["device_peak_mb"] = stats["peak_bytes_in_use"] / 2**20
    return row


def epoch_seconds(config: ml_collections.ConfigDict) -> dict:
    """Two epochs of `loop.train_and_evaluate`, the loop users run, in a scratch workdir.

    The first epoch includes compilation; the second is the steady time per epoch. The run
    stops at the end of epoch 2 of 3, so it writes no figures.
    """
    config = config.copy_and_resolve_references()
    n = len(sources.from_config(config.data, "train"))
    config.train.epochs = 3
    config.train.save_every_steps = 10**9  # the one checkpoint is written after the timed epochs
    with tempfile.TemporaryDirectory() as workdir:
        loop.train_and_evaluate(config, workdir, max_steps=2 * (n // config.train.batch_size))
        rows = checkpoint.read_metrics(Path(workdir))
    if [r["epoch"] for r in rows] != [1, 2]:
        raise RuntimeError(f"expected epochs 1 and 2 in the metrics, got {rows}")
    return {"first_epoch_s": rows[0]["epoch_seconds"], "epoch_s": rows[1]["epoch_seconds"]}


def eval_samples_per_s(run: setup.RunSetup, params, repeats: int) -> float:
    """Test-set samples/s of the run's evaluation: median of `repeats` after a warm-up."""
    test_set, rng = run.data.test_set, run.keys["evaluation"]
    run.evaluate(params, test_set, rng)  # warm-up: compiles the evaluation batch
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        metrics = run.evaluate(params, test_set, rng)  # host floats: the work is done
        seconds.append(time.perf_counter() - start)
        if not math.isfinite(metrics["loss"]):
            raise FloatingPointError(f"evaluation gave a non-finite loss: {metrics}")
    return len(run.data.test) / statistics.median(seconds)


def measure(
    config: ml_collections.ConfigDict,
    *,
    repeats: int = 5,
    min_seconds: float = 1.0,
    naive: bool = True,
    evaluation: bool = True,
    epoch: bool = True,
    devices: int | None = None,
    first_chunk_only: bool = False,
) -> dict:
    """One benchmark row for `config` on its dataset (see the module docstring).

    The run is built as `train_and_evaluate` builds it (`setup.setup`), its training set on the
    device. With `devices`, it is data-parallel over that many devices, as there: the batches'
    indices split over the mesh's data axis, the state and the dataset replicated; only aejax's chunks
    are timed.
    """
    if devices and (naive or epoch):
        raise ValueError("a data-parallel row times aejax's chunks only: no naive loop or epoch")
    start = time.perf_counter()
    config = config.copy_and_resolve_references()
    config.data.stream = "never"  # gathered from the dataset stored on the device
    run = setup.setup(config, mesh=parallel.make_mesh(devices or 1))
    batch_size, steps_per_epoch = run.config.train.batch_size, run.steps_per_epoch
    chunk = min(run.config.train.chunk, steps_per_epoch)  # as train_and_evaluate caps it
    train_step, rng, state, train = run.train_step, run.keys["steps"], run.state, run.data.train
    dataset = run.batches.dataset  # as stored: uint8 when 8-bit
    host_set = as_dataset(run.config, train.float_images(), train.labels)  # the naive loop's
    idx_SxB = run.batches.chunk(0, 0, steps_per_epoch)  # epoch 1's batches of indices
    row = {"batch": batch_size, "chunk": chunk, "devices": devices or 1}

    lower_start = time.perf_counter()
    lowered = make_train_chunk(train_step).lower(state, dataset, idx_SxB[:chunk], rng)
    compile_start = time.perf_counter()
    train_chunk = lowered.compile()
    row["trace_s"] = compile_start - lower_start
    row["compile_s"] = time.perf_counter() - compile_start
    chunks = [idx_SxB[s : s + chunk] for s in range(0, steps_per_epoch - chunk + 1, chunk)]

    def aejax_advance(state, i):
        return train_chunk(state, dataset, chunks[i % len(chunks)], rng)

    state, _ = timed_run(aejax_advance, state, calls=1, steps_per_call=chunk)
    row["first_chunk_s"] = time.perf_counter() - start
    if first_chunk_only:
        return {**row, **peak_memory()}

    # FLOP of one step on one device (shapes only, no sharding); it is the naive loop's step.
    shapes = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), state)
    first_batch = jax.tree.map(lambda a: a[:batch_size], host_set)
    naive_step = compiled.jit(train_step, donate_argnums=0).lower(shapes, first_batch, rng)
    naive_step = naive_step.compile()
    row["flop_per_sample"] = naive_step.cost_analysis()["flops"] / batch_size

    loops = {"samples_per_s": (aejax_advance, chunk)}  # named by the row's key
    if naive:
        host_idx_SxB = np.asarray(idx_SxB)

        def naive_advance(state, i):
            rows = host_idx_SxB[i % steps_per_epoch]  # gathered in numpy, sent each step
            batch = jax.tree.map(lambda a: a[rows], host_set)
            return naive_step(state, batch, jax.random.fold_in(rng, i))

        loops["naive_samples_per_s"] = (naive_advance, 1)  # trains on from aejax's state

    state, runs = time_repeats(loops, state, repeats=repeats, min_seconds=min_seconds)
    for key, (steps, seconds) in runs.items():
        row[key], row[f"{key}_spread"] = samples_per_s(batch_size, steps, seconds)
    row["timed_steps"] = runs["samples_per_s"][0] * repeats
    if naive and epoch:
        state, row["naive_epoch_s"] = timed_run(
            naive_advance, state, calls=steps_per_epoch, steps_per_call=1
        )

    if evaluation:
        row["eval_samples_per_s"] = eval_samples_per_s(run, state.params, repeats)
    if epoch:
        row.update(epoch_seconds(config))
    return {**row, **peak_memory()}


def parse_override(text: str) -> tuple[str, object]:
    """`"train.batch_size=64"` -> `("train.batch_size", 64)`; an unreadable value is a string."""
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--set takes FIELD=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=model_names())
    parser.add_argument("--dataset", default="fashion_mnist", help="overrides the config's data")
    parser.add_argument(
        "--set",
        type=parse_override,
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="config override, e.g. train.batch_size=64",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=1.0, help="shortest timed run")
    parser.add_argument("--devices", type=int, help="data-parallel over this many devices")
    parser.add_argument("--no-naive", dest="naive", action="store_false")
    parser.add_argument("--no-eval", dest="evaluation", action="store_false")
    parser.add_argument("--skip-epoch", dest="epoch", action="store_false")
    parser.add_argument("--first-chunk-only", action="store_true")
    parser.add_argument("--out", type=Path, required=True, help="the row is written here as JSON")
    args = parser.parse_args(argv)
    config = load_config(args.model, {"data.name": args.dataset, **dict(args.set)})
    row = measure(
        config,
        repeats=args.repeats,
        min_seconds=args.min_seconds,
        naive=args.naive,
        evaluation=args.evaluation,
        epoch=args.epoch,
        devices=args.devices,
        first_chunk_only=args.first_chunk_only,
    )
    row = {
        "model": args.model,
        "dataset": args.dataset,
        "overrides": dict(args.set),
        "widths": list(config.model.get("encoder_widths") or []),
        "backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind,
        **row,
    }
    args.out.write_text(json.dumps(row))


if __name__ == "__main__":
    main()
