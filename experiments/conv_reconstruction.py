"""The convolutional AE of the tutorials beside the shallow MLP AE: the same test digits, both
reconstructions, both loss curves.

    python experiments/conv_reconstruction.py [--dataset fashion_mnist] [--epochs N | --full]

The zoo's `conv` config (conv16-8-8 with pooling to a 4x4x8 code, nearest upsampling back, BCE,
batch 200) and the `mlp` config (784-32-784) train for the same epochs: 20 by default (about a
minute for the conv AE on mnist5k on 2 CPU cores), 50 with `--full`, the tutorials' length.
Runs in `conv/` and `mlp/`; `reconstructions.png` (10 test digits, the conv AE's and the MLP
AE's reconstructions), `loss_curves.png` (test and train BCE of both) and `metrics.json` in
the run directory.
"""

import common
import numpy as np

from aejax import checkpoint, data, models, plots, representation


def main(argv: list[str] | None = None) -> dict:
    args = common.parse_args(argv, __file__, __doc__, epochs=20, full_epochs=50)
    digits = data.load(args.dataset, "test")[0][:10]
    rows, curves, metrics = [digits], {}, {}
    for name in ("conv", "mlp"):
        cfg = common.config(name, args)
        state, last = common.run(cfg, args.workdir / name)
        model = models.build(cfg.model)
        recon = representation.reconstruct(model, state.params, digits, cfg.loss.likelihood)
        rows.append(np.asarray(recon))
        curves[f"{name} AE"] = checkpoint.read_metrics(args.workdir / name)
        metrics[f"{name}_train_bce"] = last["train/recon"]
        metrics[f"{name}_test_bce"] = last["test/recon"]
    titles = ["test images", "conv AE reconstructions", "MLP AE (784-32-784) reconstructions"]
    plots.image_rows(rows, titles, args.workdir / "reconstructions.png")
    plots.metric_curves(
        curves, ("test/recon", "train/recon"), args.workdir / "loss_curves.png", "BCE per pixel"
    )
    source = "the Keras and TensorFlow conv AE tutorials (BCE per pixel, split not stated)"
    tutorials = [
        common.published("conv_train_bce", 0.10, "MNIST (60,000)", None, source),
        common.published(
            "conv_train_bce", 0.062, "MNIST (60,000)", 50, f"a larger conv AE; {source}"
        ),
    ]
    common.save_metrics(args, metrics, tutorials)
    return metrics


if __name__ == "__main__":
    main()
