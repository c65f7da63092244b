"""Steady-state training throughput of aejax's loop against a plain loop, per model config.

    python benchmarks/train_speed.py --configs mlp vae --dataset fashion_mnist

For each config: the compile time of the first chunk, then samples/s of whole epochs (median of
--repeats after a warm-up epoch, each ended by `block_until_ready`) for aejax's on-device loop at
each --chunks length, and for the plain alternative: one jitted step per batch, fed from host
numpy. FLOP per sample come from XLA's cost analysis of the compiled step, so the fraction of
the machine's peak is measured, not assumed. Prints a Markdown table; --out appends JSON lines.
"""

import argparse
import functools
import json
import os
import statistics
import time
from pathlib import Path

import jax
import numpy as np

from aejax import config as aejax_config
from aejax import data, losses, models, train

CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"


def _finite(metrics) -> None:
    loss = np.asarray(jax.device_get(metrics)["loss"])
    if not np.all(np.isfinite(loss)):
        raise FloatingPointError(f"a timed step produced a non-finite loss: {loss}")


def time_epochs(run_epoch, repeats: int) -> float:
    """Median seconds of `run_epoch()` after one warm-up; each run blocks on its result."""
    _finite(run_epoch())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        metrics = jax.block_until_ready(run_epoch())
        times.append(time.perf_counter() - start)
        _finite(metrics)
    return statistics.median(times)


def scan_epoch(train_chunk, holder: dict, images, idx, chunk: int, rng):
    """One epoch of aejax's loop (whole chunks only); returns the last chunk's metrics."""
    metrics = []
    for s in range(0, idx.shape[0] - idx.shape[0] % chunk, chunk):
        holder["state"], m = train_chunk(holder["state"], images, idx[s : s + chunk], rng)
        metrics.append(m)
    return metrics[-1]


def bench(name: str, dataset: str, chunks: list[int], repeats: int, peak: float) -> list[dict]:
    config = aejax_config.load(CONFIGS / f"{name}.py")
    images, _ = data.load(dataset, "train")
    b = config.train.batch_size
    steps = images.shape[0] // b
    loss_fn = losses.make_loss_fn(models.build(config.model), config.loss)
    step = train.make_train_step(loss_fn)
    images_dev = jax.device_put(images)
    idx = train.epoch_batches(jax.random.key(0), images.shape[0], b)
    rng = jax.random.key(1)
    jit_step = jax.jit(step, donate_argnums=0)
    state = train.create_state(config, images_dev)
    # Per step, not per chunk: XLA counts a while loop's body once, whatever its trip count.
    flop_per_sample = jit_step.lower(state, images_dev[:b], rng).compile().cost_analysis()["flops"] / b
    rows = []

    def record(loop, seconds, steps_run, compile_s):
        rate = steps_run * b / seconds
        rows.append({
            "config": name, "dataset": dataset, "batch": b, "loop": loop,
            "samples_per_s": rate, "gflops": rate * flop_per_sample / 1e9,
            "peak_fraction": rate * flop_per_sample / peak, "compile_s": compile_s,
            "backend": jax.default_backend(), "cores": os.cpu_count(),
        })

    for chunk in chunks:
        chunk = min(chunk, steps)
        train_chunk = train.make_train_chunk(step)
        state = train.create_state(config, images_dev)
        start = time.perf_counter()
        train_chunk.lower(state, images_dev, idx[:chunk], rng).compile()
        compile_s = time.perf_counter() - start
        run_epoch = functools.partial(scan_epoch, train_chunk, {"state": state}, images_dev, idx, chunk, rng)
        seconds = time_epochs(run_epoch, repeats)
        record(f"aejax chunk={chunk}", seconds, steps - steps % chunk, compile_s)

    host_idx = np.asarray(idx)
    holder = {"state": train.create_state(config, images_dev)}

    def plain_epoch():
        for s in range(steps):
            holder["state"], m = jit_step(holder["state"], images[host_idx[s]], jax.random.fold_in(rng, s))
        return m

    plain_s = time_epochs(plain_epoch, repeats)
    record("plain: jitted step per host batch", plain_s, steps, float("nan"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["mlp", "vae"])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--chunks", nargs="+", type=int, default=[1, 10, 100])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--peak_gflops", type=float, default=200.0, help="the machine's fp32 matmul peak")
    parser.add_argument("--out", type=Path, help="append the rows as JSON lines here")
    args = parser.parse_args()
    rows = [r for name in args.configs for r in bench(name, args.dataset, args.chunks, args.repeats, args.peak_gflops * 1e9)]
    print(f"backend {jax.default_backend()}, {os.cpu_count()} cores, dataset {args.dataset}\n")
    print("| config | batch | loop | samples/s | GFLOP/s | of peak | compile s |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['batch']} | {r['loop']} | {r['samples_per_s']:,.0f} | {r['gflops']:.1f} | "
              f"{r['peak_fraction']:.0%} | {r['compile_s']:.2f} |")
    if args.out:
        with open(args.out, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)


if __name__ == "__main__":
    main()
