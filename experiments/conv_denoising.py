"""The denoising conv AE of the tutorials at two noise levels: noisy input, output, clean target.

    python experiments/conv_denoising.py [--dataset fashion_mnist] [--epochs N | --full]

The `conv_denoising_resize` config (32-32-16 conv encoder; a decoder that resizes 4-7-14-28 before
its conv16, conv32, conv32, as Udacity's "Convolutional Autoencoder" notebook does; BCE, batch 200)
trained on `x + factor * N(0, 1)` clipped to [0, 1], once at factor 0.5 (in `noise_0.5/`) and once
at 0.4 (`noise_0.4/`). The tutorials train 100 epochs (`--full`); on 2 CPU cores that is hours on
full MNIST, so the default is 10 epochs, and `loss_curves.png` shows where each run was heading. The
test inputs are noisy too, so the test BCE is the tutorials' validation loss: the output against the
clean target. Leaves `denoising_0.5.png`, `denoising_0.4.png` (three rows: noisy test input, output,
clean target), `loss_curves.png` and `metrics.json` in the run directory.
"""

import common
import jax
import numpy as np

from aejax.data import sources
from aejax.evaluation import figures, inference
from aejax.objectives import corruptions
from aejax.training import checkpoint

FACTORS = (0.5, 0.4)
PUBLISHED_BCE = {0.5: 0.10, 0.4: 0.084}  # the tutorials' figures, by noise factor


def main(argv: list[str] | None = None) -> dict:
    args = common.parse_args(argv, __file__, __doc__, epochs=10, full_epochs=100)
    clean = sources.load(args.dataset, "test")[0][:10]
    metrics, tutorials, curves = {}, [], {}
    for factor in FACTORS:
        cfg = common.config("conv_denoising_resize", args)
        cfg.loss.corruption.factor = factor
        cfg.loss.corruption.at_eval = True  # scored as a denoiser: noisy in, clean target
        run, last = common.run(cfg, args.workdir / f"noise_{factor}")
        clipped = ", clipped" if cfg.loss.corruption.clip else ""
        noisy = corruptions.build(cfg.loss.corruption)(clean, jax.random.key(cfg.seed))
        output = inference.reconstruct(
            run.model, run.params, noisy, cfg.loss.likelihood
        )
        figures.image_rows(
            [np.asarray(noisy), np.asarray(output), clean],
            [f"test input + {factor} N(0, 1){clipped}", "output", "clean target"],
            args.workdir / f"denoising_{factor}.png",
        )
        curves[f"noise {factor}"] = checkpoint.read_metrics(args.workdir / f"noise_{factor}")
        key = f"test_bce_noise_{factor}"
        metrics[key] = last["test/recon"]
        tutorials.append(
            common.published(
                key,
                PUBLISHED_BCE[factor],
                "MNIST (60,000)",
                100,
                "the Keras and TensorFlow denoising conv AE tutorials",
            )
        )
    figures.metric_curves(
        curves, ("test/recon", "train/recon"), args.workdir / "loss_curves.png", "BCE per pixel"
    )
    common.save_metrics(args, metrics, tutorials)
    return metrics


if __name__ == "__main__":
    main()
