"""docs/representation.md's tables: how well each model's codes classify, and semi-supervision.

    python experiments/representation_table.py --dataset mnist5k --epochs 20 --finetune_epochs 10 \
        --semi_supervised sdae conv

For each config: the autoencoder is trained (the `sdae` greedily, then end to end), its codes
are measured by `aejax.evaluation.representation` (linear probe, 5-NN, PCA of the same size, figures in
its run dir), and a softmax classifier on its encoder is fine-tuned with all labels. The
classifiers of the configs named by `--semi_supervised` (e.g. `sdae conv`) are also fine-tuned
with 1%, 10% and 100% of the labels (stratified) against the same networks from scratch.
Every run is an ordinary aejax run under `--workdir/DATASET/`, resumed if present.
"""

import argparse
import math
from pathlib import Path

from aejax import api, configs
from aejax.configs import fields
from aejax.data import sources
from aejax.evaluation import representation
from aejax.training import checkpoint, loop, pretrain

MODELS = (
    "linear",
    "mlp",
    "mlp2d_relu",
    "stacked",
    "tied",
    "denoising",
    "sparse",
    "contractive",
    "vae",
    "conv",
    "sdae",
)
FRACTIONS = (0.01, 0.1, 1.0)


def train_autoencoder(name: str, args) -> tuple:
    """The autoencoder's config and its trained run (the `sdae`'s fine-tuning run)."""
    config = configs.load(name)
    config.data.name, config.train.epochs = args.dataset, args.epochs
    workdir = args.workdir / args.dataset / name
    if "pretrain" in config:
        pretrain.pretrain_and_finetune(config, workdir)
        workdir = workdir / "finetune"
    else:
        loop.train_and_evaluate(config, workdir)
    return config, api.load_run(workdir)


def classifier_accuracy(config, workdir: Path, args, *, init_from="", fraction=1.0) -> float:
    """Test accuracy of a classifier on `config`'s encoder trained with `fraction` of the labels.

    A fraction keeps about the same number of steps as the full set (capped at 100 epochs) and
    a batch no larger than a quarter of its labels.
    """
    classifier = fields.classifier_config(
        config, init_from=str(init_from), label_fraction=fraction, epochs=args.finetune_epochs
    )
    labels = round(fraction * len(sources.load(args.dataset, "train")[1]))
    full_steps = args.finetune_epochs * (round(labels / fraction) // config.train.batch_size)
    classifier.train.batch_size = min(config.train.batch_size, labels // 4)
    steps_per_epoch = labels // classifier.train.batch_size
    classifier.train.epochs = min(100, math.ceil(full_steps / steps_per_epoch))
    loop.train_and_evaluate(classifier, workdir)
    return checkpoint.read_metrics(workdir)[-1]["test/accuracy"]  # also when read back, complete


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--epochs", type=int, default=20, help="autoencoder epochs")
    parser.add_argument("--finetune_epochs", type=int, default=10, help="classifier epochs")
    parser.add_argument("--workdir", type=Path, default=Path("runs/representation"))
    parser.add_argument("--only", nargs="*", default=MODELS, help="config names to run")
    parser.add_argument(
        "--semi_supervised",
        nargs="*",
        default=(),
        choices=MODELS,
        help="configs whose classifiers also learn from 1%%, 10%% and 100%% of the labels",
    )
    args = parser.parse_args()
    root = args.workdir / args.dataset
    rows, semi = [], []
    for name in args.only:
        config, run = train_autoencoder(name, args)
        r = representation.evaluate_run(run.model, run.params, config, run.workdir)
        finetuned = classifier_accuracy(
            config, root / f"{name}_classifier", args, init_from=run.workdir
        )
        rows.append(
            f"| {name} | {r['code_size']} | {r['linear_probe']:.3f} | {r['knn']:.3f} | {finetuned:.3f} "
            f"| {r['pca_linear_probe']:.3f} | {r['pca_knn']:.3f} | {r['reconstruction_mse']:.4f} "
            f"| {r['pca_reconstruction_mse']:.4f} |"
        )
        if name in args.semi_supervised:
            for fraction in FRACTIONS:
                tag = f"{name}_{fraction:g}"
                pretrained = classifier_accuracy(
                    config,
                    root / f"{tag}_pretrained",
                    args,
                    init_from=run.workdir,
                    fraction=fraction,
                )
                scratch = classifier_accuracy(
                    config, root / f"{tag}_scratch", args, fraction=fraction
                )
                semi.append(f"| {name} | {fraction:.0%} | {pretrained:.3f} | {scratch:.3f} |")
    print(
        f"\n{args.dataset}: autoencoders {args.epochs} epochs, classifiers {args.finetune_epochs}, seed 0\n"
    )
    print(
        "| config | code size | linear probe | 5-NN | fine-tuned | PCA probe | PCA 5-NN "
        "| test MSE per pixel | PCA MSE |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if semi:
        print("\n| encoder | labels | pretrained, fine-tuned | from scratch |")
        print("|---|---|---|---|")
        print("\n".join(semi))


if __name__ == "__main__":
    main()
