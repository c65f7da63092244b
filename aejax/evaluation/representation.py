"""How good are a model's codes? Measures and pictures any run can ask for.

Linear probe (L2-penalised logistic regression on frozen, normalised codes, full-batch Adam
in one compiled loop), k-nearest-neighbour accuracy (batched distances on the device),
reconstruction error against PCA with as many components as the code has units (at most the
784 pixels), principal angles between subspaces, a 2-D scatter of the test codes, the first
layer's weights as images, and two views of what a unit responds to: the input of bounded norm
that maximises it (activation maximisation) and the training images that excite it most.
`evaluate_run` does all of them for a trained model and leaves the PNGs in its workdir.
"""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from matplotlib.figure import Figure

from aejax import compiled
from aejax.data import sources
from aejax.evaluation import generation, inference


def units_fn(model, params, layer: int | None = None):
    """`x -> [B, K]`: the code, flattened, or with `layer` the activations of dense encoder
    layer `layer` (0: the first; `capabilities.hidden_widths`), through the encoder's own
    layers. Traceable, for use inside compiled functions."""
    if layer is None:
        return lambda x: inference.code(model, params, x).reshape(x.shape[0], -1)
    widths = model.capabilities.hidden_widths
    if not 0 <= layer < len(widths):
        raise ValueError(
            f"layer={layer} names no hidden layer: only an MLP encoder's layers 0 to "
            f"len(widths) - 1 can be read, and this model's dense encoder layers have widths "
            f"{widths}; use layer=None for the code"
        )
    return lambda x: model.apply({"params": params}, x, layer, method="hidden")


def encode(
    model, params, images: jax.Array, batch_size: int = 1000, layer: int | None = None
) -> jax.Array:
    """Codes `[N, K]` of `images` (or a hidden layer's activations, `units_fn`), batch by batch."""
    return inference.batched(compiled.jit(units_fn(model, params, layer)), images, batch_size)


def _normalise(train_NxK: jax.Array, test_MxK: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Centred and scaled to unit mean squared norm over the training codes: one scale for all
    units, so that a near-constant unit (a PCA direction past the data's rank, a dead unit) is
    not blown up into noise as per-unit standardisation would."""
    mean = train_NxK.mean(0)
    scale = jnp.sqrt(jnp.mean(jnp.sum(jnp.square(train_NxK - mean), axis=1))) + 1e-12
    return (train_NxK - mean) / scale, (test_MxK - mean) / scale


def num_classes(*labels) -> int:
    """The number of classes that label arrays need: the largest label plus one."""
    return max(int(np.max(np.asarray(y))) for y in labels) + 1


@compiled.jit(static_argnames=("steps", "classes"))
def _fit_logistic(codes_NxK, labels_N, *, steps: int, lr: float, l2: float, classes: int):
    params = {"w": jnp.zeros((codes_NxK.shape[1], classes)), "b": jnp.zeros(classes)}
    tx = optax.adam(lr)

    def loss(p):
        logits = codes_NxK @ p["w"] + p["b"]
        cross_entropy = optax.softmax_cross_entropy_with_integer_labels(logits, labels_N)
        return jnp.mean(cross_entropy) + l2 * jnp.sum(jnp.square(p["w"]))

    def step(carry, _):
        p, opt_state = carry
        updates, opt_state = tx.update(jax.grad(loss)(p), opt_state)
        return (optax.apply_updates(p, updates), opt_state), None

    (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), length=steps)
    return params


def linear_probe(
    train_codes, train_labels, test_codes, test_labels, *, steps=500, lr=0.05, l2=1e-4
) -> float:
    """Test accuracy of a softmax regression fitted to the normalised training codes.

    The small L2 penalty keeps a wide code from being fitted to its last training example:
    on mnist5k's 4,000 training images it lifted the test accuracy on 150 PCA components
    from 0.877 to 0.894, on all 784 from 0.834 to 0.896.
    """
    train_codes, test_codes = _normalise(train_codes, test_codes)
    classes = num_classes(train_labels, test_labels)
    p = _fit_logistic(
        train_codes, jnp.asarray(train_labels), steps=steps, lr=lr, l2=l2, classes=classes
    )
    predictions = jnp.argmax(test_codes @ p["w"] + p["b"], axis=-1)
    return float(jnp.mean(predictions == jnp.asarray(test_labels)))


@compiled.jit(static_argnames=("k", "classes"))
def _knn_predict(train_NxK, train_labels_N, test_BxK, *, k: int, classes: int):
    sq_dist_BxN = (
        jnp.sum(test_BxK**2, 1)[:, None]
        - 2 * test_BxK @ train_NxK.T
        + jnp.sum(train_NxK**2, 1)[None]
    )
    _, nearest_Bxk = jax.lax.top_k(-sq_dist_BxN, k)
    # The neighbours' labels are gathered once: gathering from `nearest_Bxk` twice made XLA:CPU
    # fuse the top-k into both gathers, 57x slower at 60,000 training codes.
    neighbours_Bxk = train_labels_N[nearest_Bxk]
    votes = jax.nn.one_hot(neighbours_Bxk, classes).sum(1)
    # A tie goes to the class of the single nearest neighbour.
    votes = votes + 0.5 * jax.nn.one_hot(neighbours_Bxk[:, 0], classes)
    return jnp.argmax(votes, axis=-1)


def knn_accuracy(
    train_codes, train_labels, test_codes, test_labels, *, k=5, batch_size=1000
) -> float:
    """Test accuracy of a k-nearest-neighbour vote (Euclidean) among the training codes."""
    classes = num_classes(train_labels, test_labels)
    train_labels = jnp.asarray(train_labels)
    predictions = jnp.concatenate(
        [
            _knn_predict(
                train_codes, train_labels, test_codes[i : i + batch_size], k=k, classes=classes
            )
            for i in range(0, len(test_codes), batch_size)
        ]
    )
    return float(jnp.mean(predictions == jnp.asarray(test_labels)))


def pca(train_NxD: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    """The training mean `[D]` and the top-`k` principal directions `[k, D]`."""
    mean = train_NxD.mean(0)
    centred = train_NxD - mean
    _, eigenvectors = jnp.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
    return mean, eigenvectors[:, ::-1][:, :k].T


def pca_codes_and_error(train_x, test_x, k: int) -> tuple[jax.Array, jax.Array, float]:
    """PCA with `k` components: train codes, test codes, and test MSE per pixel."""
    train_flat, test_flat = train_x.reshape(len(train_x), -1), test_x.reshape(len(test_x), -1)
    mean, components_KxD = pca(train_flat, k)
    train_codes, test_codes = (
        (train_flat - mean) @ components_KxD.T,
        (test_flat - mean) @ components_KxD.T,
    )
    error = jnp.mean(jnp.square(test_codes @ components_KxD + mean - test_flat))
    return train_codes, test_codes, float(error)


def principal_angles(a_DxK, b_DxL) -> np.ndarray:
    """The principal angles in degrees between the column spaces of `a` and `b`, smallest
    first: 0 for a direction both span, 90 for one orthogonal to the other. Their cosines are
    the singular values of Qa^T Qb for orthonormal bases Qa, Qb (Bjorck and Golub, 1973),
    taken in float64: arccos near 1 resolves angles to about 1e-6 degrees (float32: 0.02)."""
    qa = np.linalg.qr(np.asarray(a_DxK, np.float64))[0]
    qb = np.linalg.qr(np.asarray(b_DxL, np.float64))[0]
    cosines = np.linalg.svd(qa.T @ qb, compute_uv=False)
    return np.degrees(np.arccos(np.clip(cosines, -1.0, 1.0)))


def reconstruction_mse(model, params, images, likelihood: str, batch_size: int = 1000) -> float:
    """Test MSE per pixel between images and the decoded mean of their codes (no sampling)."""

    @compiled.jit
    def squared_error(x):
        return jnp.sum(jnp.square(inference.reconstruction(model, params, x, likelihood) - x))

    total = sum(
        squared_error(images[i : i + batch_size]) for i in range(0, len(images), batch_size)
    )
    return float(total) / images.size


def activation_maximisation(
    model,
    params,
    units,
    radius: float,
    *,
    image_shape=(28, 28, 1),
    steps=200,
    lr=1.0,
    seed=0,
    layer: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """For each code unit in `units` (or unit of hidden layer `layer`), an input of L2 norm at
    most `radius` that maximises it, by projected gradient ascent from a small random image
    (all units at once, one image each). Returns the images `[U, *image_shape]` and the
    activations `[steps + 1, U]`.

    Without the norm bound the activation of a (piecewise) linear unit grows without limit.
    """
    codes_of, units = units_fn(model, params, layer), jnp.asarray(units)

    def activations(x_UxHxWxC):  # unit u of image u's code; image u moves only unit u's term
        return codes_of(x_UxHxWxC)[jnp.arange(units.size), units]

    def total(x):
        values = activations(x)
        return values.sum(), values

    def norms(a):
        return jnp.sqrt(jnp.sum(jnp.square(a), axis=tuple(range(1, a.ndim)), keepdims=True))

    def step(x, _):
        (_, values), grad = jax.value_and_grad(total, has_aux=True)(x)
        x = x + lr * grad / (norms(grad) + 1e-12)  # a step of length lr for each image
        return x * jnp.minimum(1.0, radius / norms(x)), values  # back onto the ball

    start = 0.01 * jax.random.normal(jax.random.key(seed), (units.size, *image_shape))
    x, history = compiled.jit(lambda x: jax.lax.scan(step, x, length=steps))(start)
    return x, jnp.concatenate([history, activations(x)[None]])


def top_activating(
    model, params, images: jax.Array, units, k: int = 8, *, layer: int | None = None
) -> tuple[jax.Array, jax.Array]:
    """For each code unit in `units` (or unit of hidden layer `layer`), the `k` images that
    excite it most: their indices into `images` `[U, k]` and activations `[U, k]`, highest
    first."""
    activations_UxN = encode(model, params, images, layer=layer)[:, jnp.asarray(units)].T
    values, indices = jax.lax.top_k(activations_UxN, k)
    return indices, values


def unit_rows(maxima, top_images, units, path: Path, title: str) -> None:
    """One row per unit: the input that maximises it (stretched to its own range) beside the
    images that excite it most (0 to 1). `maxima` [U, H, W, C], `top_images` [U, k, H, W, C],
    grey or RGB."""
    top_images = generation.displayable(np.asarray(top_images))
    maxima = np.asarray(maxima)
    low = maxima.min(axis=(1, 2, 3), keepdims=True)
    stretched = generation.displayable((maxima - low) / (maxima.max(axis=(1, 2, 3), keepdims=True) - low))
    n_units, k = top_images.shape[:2]
    fig = Figure(figsize=((k + 1) * 0.9, n_units * 0.9 + 0.5))
    axes = fig.subplots(n_units, k + 1, squeeze=False)
    for row, (unit, maximum, images) in enumerate(zip(units, stretched, top_images)):
        axes[row, 0].imshow(maximum, cmap="gray", vmin=0, vmax=1)
        axes[row, 0].set_ylabel(f"unit {unit}", fontsize=7)
        for col, image in enumerate(images, start=1):
            axes[row, col].imshow(image, cmap="gray", vmin=0, vmax=1)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_title("maximising\ninput", fontsize=7)
    axes[0, 1].set_title(f"the {k} training images exciting it most", fontsize=7, loc="left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def scatter_codes(codes_NxK, labels_N, path: Path, title: str) -> None:
    """Test codes coloured by label; a wider code is drawn on its first two principal axes."""
    scatter_panels([(codes_NxK, labels_N, title)], path)


def scatter_panels(panels, path: Path, axes_names=("code 1", "code 2")) -> None:
    """`scatter_codes` for several codes side by side, one panel per `(codes_NxK, labels_N,
    title)` on one colour scale: the same images coded by two models, or before and after.
    `axes_names` label the axes of 2-D codes."""
    fig = Figure(figsize=(5 * len(panels) + 1, 5), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)
    colours = generation.label_colours(np.concatenate([np.asarray(p[1]) for p in panels]))
    for ax, (codes_NxK, labels_N, title) in zip(axes[0], panels):
        codes, names = np.asarray(codes_NxK), axes_names
        if codes.shape[1] > 2:
            mean, components = pca(jnp.asarray(codes), 2)
            codes = np.asarray((codes - mean) @ components.T)
            names = ("principal axis 1", "principal axis 2")
        points = ax.scatter(codes[:, 0], codes[:, 1], s=3, **{**colours, "c": labels_N})
        ax.set(title=title, xlabel=names[0], ylabel=names[1])
    fig.colorbar(points, ax=axes[0].tolist(), label="label")
    fig.savefig(path, dpi=100)


def image_grid(images_NxHxW, path: Path, title: str, *, symmetric: bool) -> None:
    """Images side by side, each on its own scale (symmetric about 0 for weights); RGB images
    ([N, H, W, 3]) are each stretched to [0, 1] instead."""
    n = len(images_NxHxW)
    cols = min(n, 8)
    rows = -(-n // cols)
    fig = Figure(figsize=(cols * 1.1, rows * 1.1 + 0.4))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image in zip(axes.flat, np.asarray(images_NxHxW)):
        bound = np.abs(image).max() + 1e-12
        limits = (-bound, bound) if symmetric else (image.min(), image.max())
        if image.ndim == 3:  # RGB: imshow takes no colour scale, so the image is stretched
            image = (image - limits[0]) / (limits[1] - limits[0] + 1e-12)
        ax.imshow(image, cmap="RdBu_r" if symmetric else "gray", vmin=limits[0], vmax=limits[1])
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def evaluate_run(model, params, config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
    """Every measure for a trained model on its dataset, saved as `representation.json`, with
    `code_scatter.png`, `first_layer.png` (MLP encoders), `activation_maximisation.png` and
    `top_activating.png` (the same code units' maximising inputs beside the training images
    that excite them most)."""
    workdir = Path(workdir)
    train, test = (sources.from_config(config.data, split) for split in sources.SPLITS)
    if train.labels is None:
        raise ValueError(f"{train.name} has no labels: probes and scatters need them")
    (train_x, train_y), (test_x, test_y) = ((d.float_images(), d.labels) for d in (train, test))
    train_codes, test_codes = encode(model, params, train_x), encode(model, params, test_x)
    k = test_codes.shape[1]
    pca_train, pca_test, pca_error = pca_codes_and_error(
        jnp.asarray(train_x), jnp.asarray(test_x), k
    )
    result = {
        "code_size": k,
        "linear_probe": linear_probe(train_codes, train_y, test_codes, test_y),
        "knn": knn_accuracy(train_codes, train_y, test_codes, test_y),
        "pca_linear_probe": linear_probe(pca_train, train_y, pca_test, test_y),
        "pca_knn": knn_accuracy(pca_train, train_y, pca_test, test_y),
        "pca_reconstruction_mse": pca_error,
    }
    if model.capabilities.reconstructs:
        result["reconstruction_mse"] = reconstruction_mse(
            model, params, test_x, config.loss.likelihood
        )
    (workdir / "representation.json").write_text(json.dumps(result, indent=2))

    name = f"{workdir.name} ({config.model.name}) on {config.data.path or config.data.name}"  # the run, by its folder
    scatter_codes(test_codes, test_y, workdir / "code_scatter.png", f"test codes, {name}")
    kernels = [
        w
        for path, w in jax.tree.leaves_with_path(params)
        if "/".join(k.key for k in path).endswith("encoder/mlp/dense0/kernel")
    ]
    if kernels:  # a dense first layer [pixels, units]: each unit's weights are an image
        units = np.asarray(kernels[0][:, :32]).T.reshape(-1, *test_x.shape[1:])
        units = generation.displayable(units)
        image_grid(
            units, workdir / "first_layer.png", f"first-layer weights, {name}", symmetric=True
        )
    radius = float(np.linalg.norm(test_x.reshape(len(test_x), -1), axis=1).mean())
    units = list(range(min(k, 8)))
    maxima, _ = activation_maximisation(model, params, units, radius, image_shape=test_x.shape[1:])
    image_grid(
        generation.displayable(np.asarray(maxima)),
        workdir / "activation_maximisation.png",
        f"inputs of norm {radius:.1f} that maximise code units 0-{len(units) - 1}, {name}",
        symmetric=False,
    )
    top, _ = top_activating(model, params, train_x, units)
    unit_rows(
        maxima,
        np.asarray(train_x)[np.asarray(top)],
        units,
        workdir / "top_activating.png",
        f"code units 0-{len(units) - 1}, {name}",
    )
    return result
