"""Training samples/s streamed from disk against in memory, on the same config and seed.

    python -m benchmarks.stream --config mlp --dataset fashion_mnist --epochs 3 \
        --out benchmarks/results/stream.json

Each mode trains `--epochs` epochs in a fresh workdir through `loop.train_and_evaluate`, and its
rate is the mean over the epochs after the first (the first compiles). The streamed run must end
with bitwise the in-memory run's parameters, or there is no row. The Grain pipeline alone (read,
parse and prefetch, no training) is timed over one epoch too: the rate it could feed at.
"""

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import chex
import jax

from aejax import configs
from aejax.data import device, stream
from aejax.training import checkpoint, loop, parallel


def train_rate(config, workdir: Path) -> tuple[float, object]:
    """Mean samples/s of the epochs after the first, and the final train state."""
    state, _ = loop.train_and_evaluate(config, workdir)
    rows = checkpoint.read_metrics(workdir)[1:]
    seconds = sum(r["epoch_seconds"] for r in rows)
    return sum(r["samples_per_s"] * r["epoch_seconds"] for r in rows) / seconds, state


def pipeline_rate(config) -> float:
    """Samples/s of the Grain pipeline alone over one epoch, its threads as configured."""
    file = stream.RecordFile(config.data.name, "train")
    steps = len(file) // config.train.batch_size
    order = device.epoch_batches(jax.random.key(0), len(file), config.train.batch_size)
    batches = stream.StreamedBatches(
        config, parallel.make_mesh(), file, lambda epoch: order, lambda x, y: x
    )
    start = time.perf_counter()
    for _ in range(steps):
        next(batches.iterator)
    seconds = time.perf_counter() - start
    batches.close()
    return steps * config.train.batch_size / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="mlp")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    config = configs.load(args.config)
    config.data.name, config.train.epochs = args.dataset, args.epochs
    config.train.save_every_steps = 10**9  # one checkpoint, at the end, in both modes
    rates, states = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("never", "always"):
            config.data.stream = mode
            rates[mode], states[mode] = train_rate(config, Path(tmp) / mode)
    streamed, in_memory = (jax.device_get(states[m].params) for m in ("always", "never"))
    chex.assert_trees_all_equal(streamed, in_memory)
    row = {
        "config": args.config,
        "dataset": args.dataset,
        "epochs": args.epochs,
        "in_memory_samples_per_s": rates["never"],
        "streamed_samples_per_s": rates["always"],
        "pipeline_alone_samples_per_s": pipeline_rate(config),
        "read_threads": config.data.read_threads,
        "params_bitwise_equal": True,
        "backend": jax.default_backend(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(row, indent=2) + "\n")
    print(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
