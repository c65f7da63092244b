"""The linear AE finds PCA's plane: principal angles, reconstruction errors, both projections.

    python experiments/linear_pca.py [--dataset fashion_mnist] [--epochs N | --full]

The `linear` config: 784-2-784, no activations, MSE, with biases. Its optimum reconstructs
as well as PCA with 2 components, and its decoder's two columns span the same plane of pixel
space as PCA's top two directions, in some other basis. The script measures the principal
angles between the two planes (0 degrees: the same plane) and both test MSEs. The AE's code
is PCA's coordinates only up to an affine map, so for the figure it is mapped onto PCA's axes
by least squares (an affine fit on the training codes); `code_r2` is the share of the variance
of PCA's test coordinates that map explains (1: the encoder is PCA's projection too). 50
epochs by default (half a minute on mnist5k); `--full` trains 200 (the tutorial gives no length).
Leaves `projections.png` (PCA's plane beside the AE's aligned code) and `metrics.json`.
"""

import common
import jax.numpy as jnp

from aejax.data import sources
from aejax.evaluation import representation


def main(argv: list[str] | None = None) -> dict:
    args = common.parse_args(argv, __file__, __doc__, epochs=50, full_epochs=200)
    cfg = common.config("linear", args)
    run, last = common.run(cfg, args.workdir / "linear")
    train_x, _ = sources.load(args.dataset, "train")
    test_x, test_y = sources.load(args.dataset, "test")
    pca_train, pca_test, pca_mse = representation.pca_codes_and_error(train_x, test_x, 2)
    _, pca_directions_2xD = representation.pca(jnp.asarray(train_x.reshape(len(train_x), -1)), 2)
    decoder_columns_Dx2 = run.params["decoder"]["mlp"]["dense0"]["kernel"].T
    angles = representation.principal_angles(decoder_columns_Dx2, pca_directions_2xD.T)

    ae_train, ae_test = (representation.encode(run.model, run.params, x) for x in (train_x, test_x))
    # The affine least-squares fit: centred codes to PCA's coordinates, centred by construction.
    ae_mean = ae_train.mean(0)
    map_2x2 = jnp.linalg.lstsq(ae_train - ae_mean, pca_train)[0]
    aligned_test = (ae_test - ae_mean) @ map_2x2
    residual = jnp.sum(jnp.square(aligned_test - pca_test))
    code_r2 = 1 - residual / jnp.sum(jnp.square(pca_test - pca_test.mean(0)))

    pca_title = f"PCA: test images on its 2 axes, MSE {pca_mse:.4f}"
    ae_title = f"linear AE code, affine-mapped onto PCA's axes, MSE {last['test/recon']:.4f}"
    representation.scatter_panels(
        [(pca_test, test_y, pca_title), (aligned_test, test_y, ae_title)],
        args.workdir / "projections.png",
        axes_names=("principal axis 1", "principal axis 2"),
    )
    metrics = {
        "principal_angle_1_deg": float(angles[0]),
        "principal_angle_2_deg": float(angles[1]),
        "ae_test_mse": last["test/recon"],
        "pca_test_mse": pca_mse,
        "code_r2": float(code_r2),
    }
    common.save_metrics(args, metrics)
    return metrics


if __name__ == "__main__":
    main()
