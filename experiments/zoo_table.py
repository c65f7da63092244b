"""Trains every model config on one dataset and prints docs/zoo.md's table of test losses.

    python experiments/zoo_table.py --dataset mnist5k --epochs 20

Each run is an ordinary aejax run in `--workdir/DATASET/NAME` (resumed if present), with its
figures; the table gives the final test reconstruction loss, its unit, and the code size.
"""

import argparse
import math
from pathlib import Path

import jax

from aejax import api, configs
from aejax.training import loop

ZOO = ("linear", "mlp", "mlp2d_tanh", "mlp2d_relu", "stacked", "tied", "denoising",
       "denoising_masking", "denoising_salt_pepper", "sparse", "sparse_l1", "contractive", "vae",
       "conv", "conv_transpose", "conv_denoising")


def code_size(run: api.Run) -> int:
    """The size of the trained model's code of one image."""
    x = jax.numpy.zeros((1, *run.config.model.image_shape))
    _, aux = run.model.apply({"params": run.params}, x, rngs={"noise": jax.random.key(1)})
    return math.prod(aux["z" if "z" in aux else "code"].shape[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=Path("runs/zoo"))
    parser.add_argument("--only", nargs="*", default=ZOO, help="config names to run")
    args = parser.parse_args()
    rows = []
    for name in args.only:
        config = configs.load(name)
        config.data.name, config.train.epochs = args.dataset, args.epochs
        workdir = args.workdir / args.dataset / name
        _, last = loop.train_and_evaluate(config, workdir)
        size = code_size(api.load_run(workdir))
        unit = {"mean": "per pixel", "sum": "nats per image"}[config.loss.reduction]
        kind = "BCE" if config.loss.likelihood == "bernoulli" else "MSE"
        rows.append(f"| {name} | {size} | {last['test/recon']:.4f} | {kind} {unit} | "
                    f"{last['test/loss']:.4f} |")
    print(f"\n{args.dataset}, {args.epochs} epochs, seed 0\n")
    print("| config | code size | test reconstruction | unit | test loss (with penalties) |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
