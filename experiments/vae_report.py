"""Trains VAE configs and scores them as generative models: docs/vae.md's ELBO and NLL table.

    python experiments/vae_report.py --dataset mnist5k --epochs 100 --only vae iwae

Each run is an ordinary aejax run in `--workdir/DATASET/NAME` (resumed if present), on
dynamically binarised data; its scores (`nll.evaluate_test_set`, k = --samples) are
written to `generative.json` there. Wall times are the whole command per model.
"""

import argparse
import json
import time
from pathlib import Path

from aejax import configs
from aejax.evaluation import nll
from aejax.training import loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--workdir", type=Path, default=Path("runs/vae_report"))
    parser.add_argument("--only", nargs="*", default=["vae", "iwae", "iwae_k5", "iwae_k50"])
    parser.add_argument("--samples", type=int, default=5000, help="importance samples k")
    parser.add_argument("--nll_images", type=int, default=None, help="first N test images only")
    args = parser.parse_args()
    rows = []
    for name in args.only:
        start = time.perf_counter()
        config = configs.load(name)
        config.data.name, config.train.epochs = args.dataset, args.epochs
        config.data.binarize = "dynamic"
        workdir = args.workdir / args.dataset / name
        state, last = loop.train_and_evaluate(config, workdir)
        scores = nll.evaluate_test_set(
            config, state.params, samples=args.samples, images=args.nll_images
        )
        scores["wall_seconds"] = time.perf_counter() - start
        (workdir / "generative.json").write_text(json.dumps(scores, indent=2))
        print(name, scores, flush=True)
        rows.append(
            f"| {name} | {config.loss.iwae_samples} | {last['test/recon'] + last['test/kl']:.2f} | "
            f"{-scores['elbo']:.2f} | {scores['nll']:.2f} | {scores['images']} | "
            f"{scores['active_units']}/{config.model.latent_dim} | {scores['wall_seconds']:.0f} s |"
        )
    print(
        f"\n{args.dataset}, dynamically binarised, {args.epochs} epochs, seed 0, k = {args.samples}\n"
    )
    print(
        "| config | k (training) | -ELBO, closed-form KL | -ELBO, k-sample | NLL | test images "
        "| active units | wall |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
