"""What a stacked AE's units respond to: weights, maximising inputs, the images exciting them most.

    python experiments/features.py [--dataset fashion_mnist] [--epochs N | --full]

784-300-150-300-784 ELU, BCE, L2 weight penalty (the `stacked` config), N epochs: 30, or 100
with `--full`. Leaves `first_layer.png` (the weights of the first 32 of the 300 first-layer
units, each a 28x28 image, red positive, blue negative), `maximising_inputs.png` (for the 16
code units whose activations vary most over the test images, the input that maximises each,
found by gradient ascent within the mean norm of a test image), `top_activating.png` (each of
those units' maximising input beside the 8 training images that excite it most),
`top_activating_layer0.png` (the same for units 0-7 of the first hidden layer, whose weights
are the first 8 of `first_layer.png`), the run's `reconstructions.png` and `loss_curves.png`,
and `metrics.json`: test BCE in nats per image, and averaged over those 16 units the
activation their maximising inputs reach, their mean and their largest activation on the test
images, and the mean activation of their 8 most exciting training images.
"""

import common
import jax.numpy as jnp
import numpy as np

from aejax.data import sources
from aejax.evaluation import representation

UNITS = 16  # code units shown
FIRST_LAYER_UNITS = 8  # units 0-7 of the first hidden layer
TOP = 8  # most exciting training images per unit


def main(argv: list[str] | None = None) -> dict:
    args = common.parse_args(argv, __file__, __doc__, epochs=30, full_epochs=100)
    cfg = common.config("stacked", args)
    run, last = common.run(cfg, args.workdir)
    model, params = run.model, run.params
    kernel_DxH = params["encoder"]["mlp"]["dense0"]["kernel"]
    representation.image_grid(
        np.asarray(kernel_DxH[:, :32]).T.reshape(-1, 28, 28),
        args.workdir / "first_layer.png",
        "first-layer weights of units 0-31",
        symmetric=True,
    )

    test_x = sources.load(args.dataset, "test")[0]
    codes_NxK = representation.encode(model, params, test_x)
    units = jnp.argsort(-codes_NxK.var(axis=0))[:UNITS]  # the most variable units
    radius = float(np.linalg.norm(test_x.reshape(len(test_x), -1), axis=1).mean())
    inputs, history = representation.activation_maximisation(model, params, units, radius)
    representation.image_grid(
        inputs[..., 0],
        args.workdir / "maximising_inputs.png",
        f"inputs of norm {radius:.1f} maximising code units {', '.join(map(str, units.tolist()))}",
        symmetric=False,
    )
    train_x = sources.load(args.dataset, "train")[0]
    top, top_values = representation.top_activating(model, params, train_x, units, TOP)
    representation.unit_rows(
        inputs,
        train_x[np.asarray(top)],
        units.tolist(),
        args.workdir / "top_activating.png",
        "code units: the maximising input, then the training images exciting it most",
    )
    first = list(range(FIRST_LAYER_UNITS))
    first_inputs, _ = representation.activation_maximisation(model, params, first, radius, layer=0)
    first_top, _ = representation.top_activating(model, params, train_x, first, TOP, layer=0)
    representation.unit_rows(
        first_inputs,
        train_x[np.asarray(first_top)],
        first,
        args.workdir / "top_activating_layer0.png",
        "first hidden layer: the maximising input, then the training images exciting it most",
    )
    metrics = {
        "test_bce": last["test/recon"],
        "maximised_activation": float(history[-1].mean()),
        "test_mean_activation": float(codes_NxK[:, units].mean()),
        "test_max_activation": float(codes_NxK[:, units].max(axis=0).mean()),
        "top_train_activation": float(top_values.mean()),
    }
    common.save_metrics(args, metrics)
    return metrics


if __name__ == "__main__":
    main()
