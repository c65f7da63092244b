"""aejax beside plain PyTorch and Keras 3: the same models on the same data, taking turns.

    python -m benchmarks.peers.compare                       # 3 models x 3 seeds x 3 frameworks
    python -m benchmarks.peers.compare --models mlp --seeds 0 --out /tmp/peers   # a quick check

For each model and each seed (a round) every framework trains `--epochs` epochs of
Fashion-MNIST in a fresh process: `aejax_fit`, `torch_loop`, `keras_fit`, each round starting
one framework later, so that no framework always runs first or after the same neighbour while
the machine's load drifts. The fp32 matmul GFLOP/s of one 2048 x 2048 product is measured
before and after the runs, the yardstick of how busy the machine was. Writes `peers.jsonl`
(a row per run, as each ends), `peers.meta.json` and `peers.md` in `--out`. PyTorch and Keras
are not part of CI: `pip install -e ".[peers]"`.
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from aejax.data import sources
from benchmarks import report
from benchmarks.peers import common

REPO = Path(__file__).resolve().parents[2]
FRAMEWORKS = {
    "aejax": "benchmarks.peers.aejax_fit",
    "torch": "benchmarks.peers.torch_loop",
    "keras": "benchmarks.peers.keras_fit",
}
LOSS_UNITS = {"mlp": "BCE per pixel", "vae": "-ELBO, nats per image", "conv": "BCE per pixel"}


def python(args: list[str], capture: bool = False) -> str | None:
    """`python ARGS` in a fresh process that imports this tree's aejax and benchmarks; its
    output, if captured."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    stdout = subprocess.PIPE if capture else None
    done = subprocess.run(
        [sys.executable, *args], env=env, cwd=REPO, check=True, stdout=stdout, text=True
    )
    return done.stdout


def matmul_gflops() -> float:
    code = "from benchmarks.matmul_bound import matmul_gflops; print(matmul_gflops())"
    return float(python(["-c", code], capture=True).split()[-1])


def run_one(framework: str, model: str, seed: int, epochs: int) -> dict:
    """One framework's row for `model` and `seed`, trained in a process of its own."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "row.json"
        print(f"{model} seed {seed}: {framework}", flush=True)
        args = ["-m", FRAMEWORKS[framework], model, "--epochs", str(epochs), "--seed", str(seed)]
        python([*args, "--out", str(out)])
        return json.loads(out.read_text())


def turns(models: list[str], seeds: list[int], frameworks: list[str]):
    """(model, seed, framework) in running order: round i starts with framework i."""
    for model in models:
        for i, seed in enumerate(seeds):
            k = i % len(frameworks)
            for framework in frameworks[k:] + frameworks[:k]:
                yield model, seed, framework


def _median(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r[key] is not None]
    return statistics.median(values) if values else None


def table(rows: list[dict], meta: dict) -> str:
    """peers.md: per model, each framework's medians over seeds, and aejax against the best peer."""
    gflops = meta["matmul_gflops"]
    lines = [
        "# aejax beside PyTorch and Keras 3",
        "",
        (
            f"`{meta['command']}`, {meta['machine']['date']}, {meta['machine']['cores']} cores "
            f"({meta['machine']['cpu']}). Each run: {meta['epochs']} epochs of Fashion-MNIST "
            f"(60,000 images) in a fresh process, seeds {', '.join(map(str, meta['seeds']))}, the "
            "frameworks taking turns. fp32 matmul: "
            f"{gflops['before']:.0f} GFLOP/s before the runs, {gflops['after']:.0f} after."
        ),
        "",
        (
            "Steady samples/s: the median over seeds of each run's median over epochs 2 on (epoch 1 "
            "compiles and warms up); its range over seeds in brackets. First epoch: seconds including "
            "compilation. GFLOP/s: steady samples/s times aejax's FLOP per training step and sample "
            "(XLA's cost analysis; the models are the same), and its share of the matmul figure "
            "before the runs. Test loss: the whole 10,000-image test set after the last epoch, "
            "median over seeds."
        ),
        "",
    ]
    for model in dict.fromkeys(r["model"] for r in rows):
        of_model = [r for r in rows if r["model"] == model]
        flops = _median([r for r in of_model if "flop_per_sample" in r], "flop_per_sample")
        lines += [
            f"## {model}",
            "",
            f"| framework | steady samples/s | first epoch s | GFLOP/s | test loss ({LOSS_UNITS[model]}) | parameters |",
            "|---|---|---|---|---|---|",
        ]
        steady = {}
        for framework in FRAMEWORKS:
            runs = [r for r in of_model if r["framework"] == framework]
            if not runs:
                continue
            rates = [r["samples_per_s"] for r in runs if r["samples_per_s"] is not None]
            steady[framework] = statistics.median(rates) if rates else None
            rate = "n/a" if not rates else f"{steady[framework]:,.0f}"
            if len(rates) > 1:
                rate += f" ({min(rates):,.0f}-{max(rates):,.0f})"
            work = "n/a"
            if rates and flops:
                achieved = steady[framework] * flops / 1e9
                work = f"{achieved:.1f} ({achieved / gflops['before']:.0%})"
            lines.append(
                f"| {framework} | {rate} | {_median(runs, 'first_epoch_seconds'):.2f} | {work} | "
                f"{_median(runs, 'test_loss'):.4f} | {runs[0]['params']:,} |"
            )
        peers = {f: v for f, v in steady.items() if f != "aejax" and v}
        if steady.get("aejax") and peers:
            best = max(peers, key=peers.get)
            lines += ["", f"aejax / best peer ({best}): **{steady['aejax'] / peers[best]:.2f}x**"]
        lines.append("")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=common.MODELS, default=list(common.MODELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=2, help="at least 2 for a steady rate")
    parser.add_argument(
        "--frameworks", nargs="+", choices=list(FRAMEWORKS), default=list(FRAMEWORKS)
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):  # prepared here, so that no run's time includes preparing it
        sources.load(common.DATASET, split)
    meta = {
        "command": shlex.join(["python", "-m", "benchmarks.peers.compare", *argv]),
        "machine": report.machine(),
        "epochs": args.epochs,
        "seeds": args.seeds,
        "matmul_gflops": {"before": matmul_gflops()},
    }
    rows_path = args.out / "peers.jsonl"
    rows_path.write_text("")
    rows = []
    for model, seed, framework in turns(args.models, args.seeds, args.frameworks):
        rows.append(run_one(framework, model, seed, args.epochs))
        with rows_path.open("a") as f:  # kept as each run ends: a stopped comparison keeps them
            f.write(json.dumps(rows[-1]) + "\n")
    meta["matmul_gflops"]["after"] = matmul_gflops()
    (args.out / "peers.meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    (args.out / "peers.md").write_text(table(rows, meta))
    print(f"wrote {args.out / 'peers.md'}")


if __name__ == "__main__":
    main()
