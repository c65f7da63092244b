"""What a model with a prior generates, as figures in its run directory. For a N(0, I) prior
(a VAE, WAE, adversarial AE), `write_figures`:

- `samples.png`: decoder means of z ~ N(0, I), 6 rows of 10, under a title;
- `interpolations.png`: decoder means along the straight line between the posterior means of
  pairs of test images, one pair per row, the encoded images at either end, under a title;
- for a 2-D latent, `manifold.png`: the decoder over a grid of quantiles of N(0, I) (the
  gaussian inverse CDF of an even grid in (0, 1), so each cell holds equal prior mass), and
  `latent_scatter.png`: the test images' posterior means coloured by label.

For a learned prior over a VQ-VAE's codes, `write_samples`: `samples.png`, its draws decoded.

Image grids are written pixel for pixel: a grid of R x C images of H x W is a
PNG of R*H x C*W pixels, greyscale or RGB as the images are; the titled ones (`grid_panels`)
draw each image pixel as ZOOM x ZOOM, so that 28x28 digits read without zooming in.
"""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import PIL.Image
from jax.scipy.special import ndtri
from matplotlib.figure import Figure

from aejax.data.dataset import as_float
from aejax.evaluation import inference

ZOOM = 3  # figure pixels per image pixel, each way, of the titled grids


def _decode(model, params, z: jax.Array, likelihood: str) -> np.ndarray:
    return np.asarray(inference.decode(model, params, z, likelihood))


def prior_samples(model, params, rng, rows: int, cols: int, code_shape, likelihood: str):
    """[rows, cols, H, W, C] decoder means of draws from N(0, I) of `code_shape` (a latent
    dimension, or a code's shape such as a conv WAE's map)."""
    shape = (rows * cols, *np.atleast_1d(code_shape))
    images = _decode(model, params, jax.random.normal(rng, shape), likelihood)
    return images.reshape(rows, cols, *images.shape[1:])


def interpolations(model, params, x_a: jax.Array, x_b: jax.Array, steps: int, likelihood: str):
    """[pairs, steps + 2, H, W, C]: image a, `steps` decodings from code(a) to code(b), image b
    (codes of any shape: a VAE's posterior means, a conv AE's maps)."""
    mu_a, mu_b = inference.codes(model, params, x_a), inference.codes(model, params, x_b)
    t_S = jnp.linspace(0.0, 1.0, steps).reshape(1, steps, *[1] * (mu_a.ndim - 1))
    z_PxSx_ = mu_a[:, None] + t_S * (mu_b - mu_a)[:, None]
    pairs = mu_a.shape[0]
    decoded = _decode(model, params, z_PxSx_.reshape(pairs * steps, *mu_a.shape[1:]), likelihood)
    decoded = decoded.reshape(pairs, steps, *decoded.shape[1:])
    return np.concatenate([np.asarray(x_a)[:, None], decoded, np.asarray(x_b)[:, None]], axis=1)


def manifold(model, params, n: int, likelihood: str):
    """[n, n, H, W, C]: the decoder at z = Phi^-1(u) over an n x n grid of u in (0, 1); rows go
    down the second latent, columns along the first."""
    u_N = jnp.linspace(
        0.5 / n, 1 - 0.5 / n, n
    )  # cell centres: never 0 or 1, whose quantile is infinite
    z1, z2 = jnp.meshgrid(ndtri(u_N), ndtri(u_N)[::-1])
    images = _decode(model, params, jnp.stack([z1.ravel(), z2.ravel()], axis=-1), likelihood)
    return images.reshape(n, n, *images.shape[1:])


def displayable(images_xHxWxC: np.ndarray) -> np.ndarray:
    """Images as matplotlib and Pillow show them: RGB kept ([..., H, W, 3]), any other number
    of channels as the grey levels of the first ([..., H, W])."""
    return images_xHxWxC if images_xHxWxC.shape[-1] == 3 else images_xHxWxC[..., 0]


def tile(grid_RxCxHxWxC: np.ndarray) -> np.ndarray:
    """One [R*H, C*W] grey or [R*H, C*W, 3] RGB image of a grid of images."""
    r, c, h, w, channels = grid_RxCxHxWxC.shape
    tiled = grid_RxCxHxWxC.transpose(0, 2, 1, 3, 4).reshape(r * h, c * w, channels)
    return displayable(tiled)


def save_grid(grid: np.ndarray, path: Path) -> None:
    """An 8-bit greyscale or RGB PNG, one pixel per image pixel (Pillow comes with matplotlib)."""
    pixels = np.round(255 * np.clip(tile(grid), 0, 1)).astype(np.uint8)
    PIL.Image.fromarray(pixels).save(path, optimize=True)


def grid_panels(grids: list[np.ndarray], titles: list[str], path: Path, zoom: int = 1) -> None:
    """Grids side by side, each tiled under its title (two models' manifolds, say), `zoom` x
    `zoom` figure pixels per image pixel, 10 pixels between grids."""
    tiles = [np.clip(tile(grid), 0, 1).repeat(zoom, axis=0).repeat(zoom, axis=1) for grid in grids]
    width, height = sum(t.shape[1] for t in tiles), max(t.shape[0] for t in tiles)
    gap, title_height, dpi = 10, 30, 100
    fig = Figure(figsize=((width + gap * (len(tiles) - 1)) / dpi, (height + title_height) / dpi))
    axes = fig.subplots(
        1,
        len(tiles),
        squeeze=False,
        gridspec_kw={
            "width_ratios": [t.shape[1] for t in tiles],
            "wspace": gap / (width / len(tiles)),  # a fraction of the mean panel width
        },
    )
    for ax, image, title in zip(axes[0], tiles, titles):
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.subplots_adjust(left=0, right=1, bottom=0, top=height / (height + title_height))
    fig.savefig(path, dpi=dpi)


def label_colours(labels_N: np.ndarray) -> dict:
    """`ax.scatter` arguments that colour points by class: class c in tab10's (or tab20's) c-th
    colour, whichever classes are present; more than 20 classes on a continuous scale."""
    classes = int(np.max(labels_N)) + 1
    if classes <= 10:
        cmap, scale = "tab10", 10
    elif classes <= 20:
        cmap, scale = "tab20", 20
    else:
        cmap, scale = "viridis", classes
    return {"c": labels_N, "cmap": cmap, "vmin": -0.5, "vmax": scale - 0.5}


def latent_scatter(mu_Nx2: np.ndarray, labels_N: np.ndarray, path: Path) -> None:
    """Posterior means of the test images, coloured by label."""
    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    points = ax.scatter(mu_Nx2[:, 0], mu_Nx2[:, 1], s=3, **label_colours(labels_N))
    fig.colorbar(points, ax=ax, label="label")
    ax.set(xlabel="z[0]", ylabel="z[1]", title="posterior means of the test images")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def write_figures(workdir: Path, model, params, test_x, test_labels, likelihood: str, rng) -> None:
    """Samples and interpolations for any model with a N(0, I) prior; the manifold and, for
    labelled test images, the scatter for a 2-D code. `test_x` may be stored uint8: it is
    scaled here."""
    code_shape = inference.code_shape(model, params, test_x.shape[1:])
    samples = prior_samples(model, params, rng, 6, 10, code_shape, likelihood)
    grid_panels([samples], ["decoder means of 60 draws z ~ N(0, I)"], workdir / "samples.png", ZOOM)
    pairs = interpolations(
        model, params, as_float(test_x[:8]), as_float(test_x[8:16]), 10, likelihood
    )
    title = "each row: test image a, 10 decodings from code(a) to code(b), test image b"
    grid_panels([pairs], [title], workdir / "interpolations.png", ZOOM)
    code_2d = model.capabilities.code_2d
    if code_2d:
        save_grid(manifold(model, params, 20, likelihood), workdir / "manifold.png")
    if code_2d and test_labels is not None:  # a run on unlabelled arrays has none
        mu = np.asarray(inference.codes(model, params, test_x))
        latent_scatter(mu, np.asarray(test_labels), workdir / "latent_scatter.png")


def write_samples(
    workdir: Path, model, params, rng: jax.Array, likelihood: str, image_shape
) -> None:
    """`samples.png`: 6 rows of 10 images decoded from a learned prior's draws."""
    images = np.asarray(inference.sample(model, params, rng, 60, likelihood, image_shape))
    grid = images.reshape(6, 10, *images.shape[1:])
    title = "60 codes drawn from the prior, decoded"
    grid_panels([grid], [title], workdir / "samples.png", ZOOM)
