"""Benchmarks every model config and how speed grows; writes the tables and figures.

    python -m benchmarks.run                   # every part, every model (docs/benchmarks.md gives the time)
    python -m benchmarks.run --parts models --models mlp vae --skip-epoch
    python -m benchmarks.run --parts batch width devices cache --doc

Parts:
  models   one row per shipped config (`benchmarks.measure`): compile time, training and
           evaluation samples/s, aejax against the naive loop, time per epoch, memory;
  batch    samples/s against the batch size, aejax and naive (`--sweep-models`);
  width    samples/s against the layers' width (`--width-model`);
  devices  samples/s against the number of devices, data-parallel (forced CPU devices on CPU);
  cache    time to the first result of a fresh process with no compilation cache, with an empty
           persistent cache (which the run fills) and with the filled one.

Every row is measured in a process of its own, so its compile times, caches and peak memory are
its own. Each part replaces `OUT/PART.jsonl` (and its command, machine and date in
`OUT/PART.meta.json`); then `OUT/results.md` and the figures are rebuilt from every part in OUT,
and `--doc` copies them into docs/benchmarks.md between its markers.
"""

import argparse
import json
import math
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aejax.data import sources
from benchmarks import matmul_bound, measure, report

REPO = Path(__file__).resolve().parents[1]
CACHE_ENV = {  # JAX reads its options from these variables: the same work for `aejax train`
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",  # default 1 s would skip small programs
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1",
}
_DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


def run_worker(model: str, args, *, overrides=(), flags=(), env=None) -> dict:
    """`benchmarks.measure` in a fresh process; its row, with the process's wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "row.json"
        command = [
            sys.executable,
            "-m",
            "benchmarks.measure",
            model,
            "--dataset",
            args.dataset,
            "--repeats",
            str(args.repeats),
            "--min-seconds",
            str(args.min_seconds),
            "--out",
            str(out),
            *flags,
        ]
        for key, value in [*args.set, *overrides]:
            command += ["--set", f"{key}={value!r}"]
        env = {**os.environ, **(env or {})}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        if args.compilation_cache:
            env.update(CACHE_ENV, JAX_COMPILATION_CACHE_DIR=str(args.compilation_cache))
        start = time.perf_counter()
        subprocess.run(command, env=env, cwd=REPO, check=True)
        row = json.loads(out.read_text())
    row["process_s"] = time.perf_counter() - start
    print(
        f"  {model} {' '.join(flags)} {dict(overrides) or ''}: done in {row['process_s']:.0f} s",
        flush=True,
    )
    return row


def part_models(args) -> list[dict]:
    flags = [] if args.epoch else ["--skip-epoch"]
    return [run_worker(name, args, flags=flags) for name in args.models]


def part_batch(args) -> list[dict]:
    return [
        run_worker(
            name, args, overrides=[("train.batch_size", b)], flags=["--no-eval", "--skip-epoch"]
        )
        for name in args.sweep_models
        for b in args.batch_sizes
    ]


def part_width(args) -> list[dict]:
    depth = len(measure.load_config(args.width_model, dict(args.set)).model.encoder_widths)
    return [
        run_worker(
            args.width_model,
            args,
            overrides=[("model.encoder_widths", (w,) * depth)],
            flags=["--no-eval", "--skip-epoch", "--no-naive"],
        )
        for w in args.widths
    ]


def with_device_count(n: int) -> dict:
    """XLA_FLAGS forcing `n` CPU devices, keeping the user's other flags (and aejax's)."""
    flags = re.sub(rf"{_DEVICE_COUNT_FLAG}=\d+", "", os.environ.get("XLA_FLAGS", ""))
    return {"XLA_FLAGS": f"{flags} {_DEVICE_COUNT_FLAG}={n}".strip()}


def part_devices(args) -> list[dict]:
    """Data-parallel rows at one global batch per model, a multiple of every device count."""
    rows = []
    multiple = math.lcm(*args.device_counts)
    for name in args.sweep_models:
        batch = measure.load_config(name, dict(args.set)).train.batch_size
        batch = -(-batch // multiple) * multiple
        for n in args.device_counts:
            rows.append(
                run_worker(
                    name,
                    args,
                    overrides=[("train.batch_size", batch)],
                    env=with_device_count(n),
                    flags=["--devices", str(n), "--no-naive", "--no-eval", "--skip-epoch"],
                )
            )
    return rows


def part_cache(args) -> list[dict]:
    """Start-up of three fresh processes per model: no cache, empty cache, filled cache."""
    rows = []
    for name in args.sweep_models:
        with tempfile.TemporaryDirectory() as cache_dir:
            cache_args = argparse.Namespace(**{**vars(args), "compilation_cache": None})
            for cache in ("none", "empty", "filled"):
                if cache != "none":
                    cache_args.compilation_cache = Path(cache_dir)
                row = run_worker(name, cache_args, flags=["--first-chunk-only"])
                rows.append({**row, "cache": cache})
                if cache == "empty" and not any(Path(cache_dir).iterdir()):
                    raise RuntimeError(f"the compilation cache in {cache_dir} stayed empty")
    return rows


PARTS = {
    "models": part_models,
    "batch": part_batch,
    "width": part_width,
    "devices": part_devices,
    "cache": part_cache,
}


def positive_gflops(text: str) -> float:
    """A peak that a fraction can divide by; zero or less is refused with the reason."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"a peak must be above 0 GFLOP/s, got {text}")
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument(
        "--models",
        nargs="+",
        choices=measure.model_names(),
        default=measure.model_names(),
        help="configs of the models part",
    )
    parser.add_argument(
        "--sweep-models",
        nargs="+",
        choices=measure.model_names(),
        default=["mlp", "vae"],
        help="configs of the batch, devices, cache parts",
    )
    parser.add_argument(
        "--batch-sizes", nargs="+", type=int, default=[32, 64, 128, 256, 512, 1024, 2048, 4096]
    )
    parser.add_argument("--width-model", choices=measure.model_names(), default="mlp")
    parser.add_argument(
        "--widths", nargs="+", type=int, default=[32, 64, 128, 256, 512, 1024, 2048]
    )
    parser.add_argument("--device-counts", nargs="+", type=int, default=[1, 2, 4, 8])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument(
        "--set",
        type=measure.parse_override,
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="config override for every row",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed runs; the median is kept")
    parser.add_argument("--min-seconds", type=float, default=1.0, help="shortest timed run")
    parser.add_argument(
        "--skip-epoch",
        dest="epoch",
        action="store_false",
        help="models part without the (long) time per epoch",
    )
    parser.add_argument(
        "--compilation-cache",
        type=Path,
        help="persistent compilation cache folder for every row's process",
    )
    parser.add_argument(
        "--peak-gflops",
        type=positive_gflops,
        help="fp32 GFLOP/s that the fraction of peak divides by (default: a 2048 x 2048 matmul "
        "measured at the start of the run)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument(
        "--doc",
        type=Path,
        nargs="?",
        const=REPO / "docs" / "benchmarks.md",
        help="copy the results into this page (default docs/benchmarks.md) between its markers",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", "-m", "benchmarks.run", *argv])
    for split in ("train", "test"):  # prepared here, so that no row's time includes preparing it
        sources.load(args.dataset, split)
    matmul_gflops = matmul_bound.matmul_gflops()  # the peak, unless one is given
    for part in args.parts:
        print(f"{part}:", flush=True)
        start = time.perf_counter()
        rows = PARTS[part](args)
        minutes = (time.perf_counter() - start) / 60
        meta = {
            "command": command,
            "machine": report.machine(),
            "minutes": minutes,
            "peak_gflops": args.peak_gflops,
            "matmul_gflops": matmul_gflops,
        }
        report.write_part(args.out, part, rows, meta)
    report.write_results(args.out, args.doc)


if __name__ == "__main__":
    main()
