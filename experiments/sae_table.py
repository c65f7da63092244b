"""Sparse autoencoders on a real network's activations: each variant at several sparsities, its
test L0, FVU, dead latents and the classifier accuracy its reconstruction keeps, as a table and
the L0 vs FVU frontier (docs/sae.md).

    python experiments/sae_table.py --dataset fashion_mnist --epochs 2

The vectors are the 1,024 penultimate activations of the `fidelity_features` classifier on the
dataset (trained once in `runs/fidelity_features_<dataset>`, or `--features` names a trained
one), dictionaries 16 times as wide. TopK and BatchTopK set their L0 by k; the penalised
variants by their sparsity weight (JumpReLU by its thresholds' start), whose L0 is what training
makes of it. Each point is an
ordinary run of a shipped `sae_*` config in `--workdir/DATASET/VARIANT-SETTING`, resumed if
present and read as it is once complete, so a rerun trains only what it lacks.
"""

import argparse
import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import aejax
from aejax.evaluation import dictionary
from aejax.training import checkpoint

KS = (8, 16, 32, 64)  # topk, batchtopk: the L0s of the table
WEIGHTS = {  # relu, gated: sparsity weights spanning those L0s on Fashion-MNIST
    "relu": (10.0, 15.0, 20.0, 28.0, 40.0),
    "gated": (2.0, 3.5, 5.0, 8.0, 12.0),
}
# jumprelu: where its thresholds start. In a few hundred steps Adam moves a log-threshold by at
# most the learning rate a step, so its L0 follows the start more than its weight (on
# Fashion-MNIST, weights 0.0625 and 0.25 both ended at L0 26).
THRESHOLDS = (0.5, 1.0, 1.5, 2.0, 2.5)
VARIANTS = ("topk", "batchtopk", "jumprelu", "relu", "gated")


def settings(variant: str) -> list[tuple[str, dict]]:
    """(label, overrides) of each point of `variant`."""
    if variant == "topk":
        return [(f"k={k}", {"model__k": k}) for k in KS]
    if variant == "batchtopk":  # its inference threshold keeps fewer than k a test vector
        return [(f"k={k}", {"model__k": k}) for k in (*KS, 2 * KS[-1])]
    if variant == "jumprelu":
        return [(f"threshold={t:g}", {"model__threshold_init": t}) for t in THRESHOLDS]
    return [(f"weight={w:g}", {"loss__sparsity_weight": w}) for w in WEIGHTS[variant]]


def point(variant: str, label: str, overrides: dict, args) -> dict:
    """The last epoch's test scores and the splice scores of one trained point."""
    workdir = args.workdir / args.dataset / f"{variant}-{label}"
    done = workdir / dictionary.DOWNSTREAM_FILE  # written once the last epoch has ended
    rows = checkpoint.read_metrics(workdir) if done.exists() else []
    if not rows or rows[-1]["epoch"] != args.epochs:
        aejax.fit(
            f"sae_{variant}", workdir=workdir, data__name=args.dataset,
            data__activations=args.features or "fidelity_features", train__epochs=args.epochs,
            **overrides,
        )  # fmt: skip
    last = checkpoint.read_metrics(workdir)[-1]
    spliced = json.loads(done.read_text())
    return {
        "variant": variant, "setting": label, "l0": last["test/l0"], "fvu": last["test/fvu"],
        "dead": last["train/dead_fraction"], "accuracy": spliced["sae"]["accuracy"],
        "original": spliced["original"]["accuracy"], "recovered": spliced["loss_recovered"],
    }  # fmt: skip


def at_l0(points: list[dict], variant: str, target: float) -> dict | None:
    """`variant`'s FVU, dead fraction and loss recovered at test L0 `target`: its point's where
    one is within 2%, else interpolated linearly in log L0 between the two points around it;
    None outside its points."""
    mine = sorted((p for p in points if p["variant"] == variant), key=lambda p: p["l0"])
    for p in mine:
        if abs(p["l0"] / target - 1) <= 0.02:
            return {k: p[k] for k in ("fvu", "dead", "recovered")} | {"measured": True}
    for a, b in zip(mine, mine[1:]):
        if a["l0"] < target < b["l0"]:
            t = np.log(target / a["l0"]) / np.log(b["l0"] / a["l0"])
            mixed = {k: float(a[k] + t * (b[k] - a[k])) for k in ("fvu", "dead", "recovered")}
            return mixed | {"measured": False}
    return None


def frontier(points: list[dict], path: Path) -> None:
    """Test FVU against test L0, one line per variant, L0 on a log axis."""
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    for variant in dict.fromkeys(p["variant"] for p in points):
        mine = sorted((p["l0"], p["fvu"]) for p in points if p["variant"] == variant)
        ax.plot(*zip(*mine), marker="o", label=variant)
    ax.set(xscale="log", xlabel="test L0 (latents per vector)", ylabel="test FVU")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--features", default="", help="a trained fidelity_features workdir")
    parser.add_argument("--workdir", type=Path, default=Path("runs/sae_table"))
    args = parser.parse_args()
    points = [
        point(variant, label, overrides, args)
        for variant in args.variants
        for label, overrides in settings(variant)
    ]
    print("| variant | setting | test L0 | test FVU | dead | accuracy spliced | loss recovered |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for p in points:
        print(
            f"| {p['variant']} | {p['setting']} | {p['l0']:.1f} | {p['fvu']:.3f} | "
            f"{p['dead']:.3f} | {p['accuracy']:.4f} | {p['recovered']:.3f} |"
        )
    print(f"accuracy with the activations as they are: {points[0]['original']:.4f}")
    print("\nAt equal L0: test FVU / dead fraction / loss recovered (* interpolated in log L0)")
    print("| variant | " + " | ".join(f"L0 {k}" for k in KS) + " |")
    print("| --- |" + " --- |" * len(KS))
    for variant in args.variants:
        cells = []
        for k in KS:
            at = at_l0(points, variant, k)
            star = "" if at is None or at["measured"] else "*"
            cells.append("-" if at is None else
                         f"{at['fvu']:.3f}{star} / {at['dead']:.3f} / {at['recovered']:.3f}")
        print(f"| {variant} | " + " | ".join(cells) + " |")
    (args.workdir / args.dataset / "sae_table.json").write_text(json.dumps(points, indent=1))
    path = args.workdir / args.dataset / "sae_frontier.png"
    frontier(points, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
