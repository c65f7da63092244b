"""Training speed on every path users start a run from, against the isolated compiled step.

    python -m benchmarks.paths --models mlp vae conv --epochs 3 --rounds 3

Each path trains in a fresh process, the paths taking turns in each round (the order rotated
from round to round), on full Fashion-MNIST:
  cli              `aejax train --config MODEL ...`
  fit              `aejax.fit(MODEL, ...)` in a new Python process
  fit_after_jax    the same after one JAX computation, as in a notebook that used JAX first
  train_and_eval   `aejax.training.loop.train_and_evaluate(config, workdir)` called from a script
  step             `benchmarks.measure`'s compiled chunk alone, timed with nothing around it
A path's rate is the median samples/s of its epochs after the first, as its metrics.jsonl logs
them (compilation apart); the step's is the median of its timed runs. The table gives each
path's median over rounds and its ratio to the step's, and the fp32 matmul rate measured in the
same run, which a rate is a fraction of through the model's FLOP per sample.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import measure

REPO = Path(__file__).resolve().parents[1]
PATHS = ("cli", "fit", "fit_after_jax", "train_and_eval", "step")


def worker(path: str, model: str, dataset: str, epochs: int, workdir: Path) -> None:
    """Trains `model` as `path` does, in this process; the run's rows land in `workdir`."""
    overrides = {"data__name": dataset, "train__epochs": epochs}
    if path == "fit_after_jax":
        import jax.numpy as jnp

        jnp.ones(3).sum().block_until_ready()  # the backend starts before aejax is called
    if path in ("fit", "fit_after_jax"):
        import aejax

        aejax.fit(model, workdir=workdir, **overrides)
    elif path == "train_and_eval":
        from aejax import configs
        from aejax.training import loop

        loop.train_and_evaluate(configs.override(configs.load(model), **overrides), workdir)
    else:
        raise ValueError(f"unknown path {path!r}")


def steady_rate(workdir: Path) -> float:
    """Median samples/s of the epochs after the first in a run's metrics.jsonl."""
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    if len(rows) < 2:
        raise RuntimeError(f"{workdir} logged {len(rows)} epochs; a steady rate needs 2 or more")
    return statistics.median(r["samples_per_s"] for r in rows[1:])


def run_path(path: str, model: str, dataset: str, epochs: int) -> dict:
    """One path's samples/s, in a process of its own."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp) / "run"
        if path == "cli":
            aejax = str(Path(sys.executable).with_name("aejax"))  # the environment's own command
            command = [aejax, "train", "--config", model, "--workdir", str(workdir),
                       f"--config.data.name={dataset}", f"--config.train.epochs={epochs}"]  # fmt: skip
        elif path == "step":
            out = Path(tmp) / "row.json"
            command = [sys.executable, "-m", "benchmarks.measure", model, "--dataset", dataset,
                       "--no-naive", "--no-eval", "--skip-epoch", "--out", str(out)]  # fmt: skip
        else:
            command = [sys.executable, "-m", "benchmarks.paths", "--worker", path, "--models",
                       model, "--dataset", dataset, "--epochs", str(epochs), "--workdir", str(workdir)]  # fmt: skip
        subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True)
        if path == "step":
            row = json.loads(out.read_text())
            return {"samples_per_s": row["samples_per_s"], "flop_per_sample": row["flop_per_sample"]}
        return {"samples_per_s": steady_rate(workdir)}


def matmul_gflops() -> float:
    """The fp32 matmul rate of a fresh process, measured between the rounds."""
    code = "from benchmarks import matmul_bound; print(matmul_bound.matmul_gflops())"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, text=True)
    return float(out.stdout.split()[-1])


def table(rows: list[dict], peak: float) -> str:
    """Per model and path: median samples/s, its ratio to the step's, the fraction of peak."""
    lines = ["| model | path | samples/s (median) | rounds | / step | of matmul peak |", "|---|---|---|---|---|---|"]
    for model in dict.fromkeys(r["model"] for r in rows):
        ours = [r for r in rows if r["model"] == model]
        rate = {p: statistics.median(r["samples_per_s"] for r in ours if r["path"] == p) for p in PATHS}
        flop = next(r["flop_per_sample"] for r in ours if r["path"] == "step")
        for p in PATHS:
            count = sum(r["path"] == p for r in ours)
            lines.append(
                f"| {model} | {p} | {rate[p]:,.0f} | {count} | {rate[p] / rate['step']:.2f} | "
                f"{rate[p] * flop / peak / 1e9:.1%} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=measure.model_names(), default=["mlp", "vae", "conv"])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=3, help="per run; epochs after the first are timed")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "paths.jsonl")
    parser.add_argument("--worker", choices=PATHS[1:4], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.models[0], args.dataset, args.epochs, args.workdir)
    rows, peaks = [], []
    for round_ in range(args.rounds):
        peaks.append(matmul_gflops())
        for model in args.models:
            shift = round_ % len(PATHS)
            for path in PATHS[shift:] + PATHS[:shift]:
                row = {"model": model, "path": path, "round": round_, **run_path(path, model, args.dataset, args.epochs)}
                print(json.dumps(row), flush=True)
                rows.append(row)
    peak = statistics.median(peaks)
    args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"\nfp32 matmul: {peak:.0f} GFLOP/s (median of {len(peaks)}: {', '.join(f'{p:.0f}' for p in peaks)})\n")
    print(table(rows, peak))


if __name__ == "__main__":
    main()
