"""What the tutorial scripts share: their options, their configs, their run directory, metrics.json.

Each script trains with aejax's own loop, so every model it trains is an ordinary resumable run
in a folder of its run directory; the script adds its figures and a `metrics.json` beside them,
which `run_all.py` gathers into the gallery.
"""

import argparse
import json
import math
from pathlib import Path

import ml_collections

from aejax import api, configs
from aejax.training import checkpoint, loop

RUNS = Path("runs/experiments")


def parse_args(
    argv: list[str] | None, script: str, doc: str, *, epochs: int, full_epochs: int
) -> argparse.Namespace:
    """`--dataset`, `--epochs` (default `epochs`, or `full_epochs` with `--full`), `--workdir`
    (default `runs/experiments/SCRIPT/DATASET`) for the script at path `script` (its `__file__`)."""
    name = Path(script).stem
    parser = argparse.ArgumentParser(prog=f"experiments/{name}.py", description=doc.splitlines()[0])
    parser.add_argument(
        "--dataset", default="mnist5k", help="mnist5k (embedded), fashion_mnist, or mnist (TFDS)"
    )
    parser.add_argument(
        "--epochs", type=int, help=f"training epochs (default {epochs}; with --full {full_epochs})"
    )
    parser.add_argument("--full", action="store_true", help="the tutorial's full-length settings")
    parser.add_argument("--workdir", type=Path, help="run directory (default runs/experiments/...)")
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = full_epochs if args.full else epochs
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    args.name = name
    args.workdir = args.workdir or RUNS / name / args.dataset
    args.workdir.mkdir(parents=True, exist_ok=True)
    return args


def config(name: str, args: argparse.Namespace, **groups: dict) -> ml_collections.ConfigDict:
    """The shipped config `name` on `args.dataset` for `args.epochs`, then the overrides given
    per group: `config("mlp", args, model={"encoder_widths": (2,)})`."""
    cfg = configs.load(name)
    cfg.data.name, cfg.train.epochs = args.dataset, args.epochs
    for group, fields in groups.items():
        for field, value in fields.items():
            if field not in cfg[group]:
                raise KeyError(f"config {name!r} has no field {group}.{field} to override")
            cfg[group][field] = value
    return cfg


def run(cfg: ml_collections.ConfigDict, workdir: Path) -> tuple[api.Run, dict]:
    """`loop.train_and_evaluate` in `workdir` (resumed if it has a checkpoint): the trained run
    (its model and parameters, `api.Run`) and its last epoch's row."""
    _, last = loop.train_and_evaluate(cfg, workdir)
    if not last:  # a finished run read back: its last epoch's row is on disk
        last = checkpoint.read_metrics(Path(workdir))[-1]
    return api.load_run(workdir), last


def published(key: str, value: float, data: str, epochs: int | None, source: str) -> dict:
    """A figure a tutorial or paper reports for the quantity our `metrics[key]` measures."""
    return {"key": key, "value": value, "data": data, "epochs": epochs, "source": source}


def save_metrics(args: argparse.Namespace, metrics: dict, references=()) -> Path:
    """`metrics.json` in the run directory; a missing or non-finite number is an error, not a row."""
    bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
    if bad:
        raise FloatingPointError(f"{args.name}: non-finite results {bad}")
    for ref in references:
        if ref["key"] not in metrics:
            raise KeyError(
                f"{args.name}: a published figure refers to {ref['key']!r}, not measured"
            )
    record = {
        "script": args.name,
        "dataset": args.dataset,
        "epochs": args.epochs,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "published": list(references),
        "figures": sorted(p.name for p in args.workdir.glob("*.png")),
    }
    path = args.workdir / "metrics.json"
    path.write_text(json.dumps(record, indent=2))
    print(json.dumps(record["metrics"]), flush=True)
    return path
