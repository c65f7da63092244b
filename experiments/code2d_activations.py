"""A 2-D code through ReLU beside one through tanh: where the test digits land, and what it costs.

    python experiments/code2d_activations.py [--dataset fashion_mnist] [--epochs N | --full]

784-2-784 with MSE, its code through a ReLU (`mlp2d_relu`, in `relu/`) and through a tanh
(`mlp2d_tanh`, in `tanh/`). A ReLU sends every negative pre-activation to exactly 0, so codes
that would leave the positive quadrant pile up on its two axes; a tanh code is bounded but
never exactly 0. `codes_on_axes` is the fraction of test codes with a coordinate exactly 0,
the pile-up as a number (it shrinks as training moves the codes into the quadrant). 50 epochs by
default (under a minute for both on mnist5k); `--full` trains 200 (the tutorial gives no length).
Leaves `code_scatter.png` (the two codes side by side, coloured by label, with their test MSE)
and `metrics.json` in the run directory.
"""

import common
import jax.numpy as jnp

from aejax.data import sources
from aejax.evaluation import representation

ACTIVATIONS = ("relu", "tanh")


def main(argv: list[str] | None = None) -> dict:
    args = common.parse_args(argv, __file__, __doc__, epochs=50, full_epochs=200)
    test_x, test_y = sources.load(args.dataset, "test")
    panels, metrics = [], {}
    for activation in ACTIVATIONS:
        cfg = common.config(f"mlp2d_{activation}", args)
        run, last = common.run(cfg, args.workdir / activation)
        codes = representation.encode(run.model, run.params, test_x)
        mse, on_axes = last["test/recon"], float(jnp.mean(jnp.any(codes == 0, axis=1)))
        metrics[f"{activation}_test_mse"], metrics[f"{activation}_codes_on_axes"] = mse, on_axes
        title = f"{activation} code: test MSE {mse:.4f}, {on_axes:.0%} on an axis"
        panels.append((codes, test_y, title))
    representation.scatter_panels(panels, args.workdir / "code_scatter.png")
    seed = common.published(
        "tanh_test_mse", 0.0685, "MNIST (60,000)", None, "the 2-D autoencoder tutorial (tanh code)"
    )
    common.save_metrics(args, metrics, [seed])
    return metrics


if __name__ == "__main__":
    main()
