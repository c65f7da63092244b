"""The tutorials' convolutional AEs beside the shallow MLP AE: the same test digits, their
reconstructions, their loss curves.

    python experiments/conv_reconstruction.py [--dataset fashion_mnist] [--epochs N | --full]

Three configs train for the same epochs, 20 by default (the conv AE tutorial's length; on full MNIST
on 2 shared CPU cores, 33 minutes for `conv_resize`, 22 for `conv_twopool`, under one for `mlp`), 50
with `--full`, each in its own folder: `conv_resize` (conv16-pool-conv8-pool-conv8-pool to a 4x4x8
code, decoded 4-7-14-28 by nearest resize as Udacity's "Convolutional Autoencoder" notebook does,
BCE, batch 200), `conv_twopool` (conv16-pool-conv8-pool to a 7x7x8 code and back), and `mlp`
(784-32-784). Leaves `reconstructions.png` (10 test digits over each model's reconstructions),
`loss_curves.png` (test and train BCE per pixel) and `metrics.json` in the run directory.
"""

import common
import numpy as np

from aejax.data import sources
from aejax.evaluation import figures, inference
from aejax.training import checkpoint

MODELS = {  # config: the row title of its reconstructions
    "conv_resize": "conv AE, 4x4x8 code, resize decoder",
    "conv_twopool": "two-pool conv AE, 7x7x8 code",
    "mlp": "MLP AE (784-32-784)",
}


def main(argv: list[str] | None = None) -> dict:
    args = common.parse_args(argv, __file__, __doc__, epochs=20, full_epochs=50)
    digits = sources.load(args.dataset, "test")[0][:10]
    rows, curves, metrics = [digits], {}, {}
    for name, title in MODELS.items():
        cfg = common.config(name, args)
        run, last = common.run(cfg, args.workdir / name)
        recon = inference.reconstruct(run.model, run.params, digits, cfg.loss.likelihood)
        rows.append(np.asarray(recon))
        curves[title] = checkpoint.read_metrics(args.workdir / name)
        metrics[f"{name}_train_bce"] = last["train/recon"]
        metrics[f"{name}_test_bce"] = last["test/recon"]
    figures.image_rows(rows, ["test images", *MODELS.values()], args.workdir / "reconstructions.png")
    figures.metric_curves(
        curves, ("test/recon", "train/recon"), args.workdir / "loss_curves.png", "BCE per pixel"
    )
    source = "the Keras and TensorFlow conv AE tutorials (BCE per pixel, split not stated)"
    tutorials = [
        common.published("conv_resize_train_bce", 0.10, "MNIST (60,000)", 20, source),
        common.published("conv_twopool_train_bce", 0.07, "MNIST (60,000)", None, source),
    ]
    common.save_metrics(args, metrics, tutorials)
    return metrics


if __name__ == "__main__":
    main()
