"""Figures a run leaves in its workdir: loss curves, reconstructions, samples from the prior.

Drawn on `matplotlib.figure.Figure` objects, not through pyplot: nothing here selects a backend
or adds to a notebook's figures; `savefig` renders each file with Agg, chosen by its extension.
"""

from pathlib import Path

import jax
import ml_collections
import numpy as np
from matplotlib.figure import Figure

from aejax.data.dataset import as_float
from aejax.evaluation import dictionary, generation, inference
from aejax.objectives import corruptions
from aejax.training import checkpoint


def loss_curves(rows: list[dict], path: Path) -> None:
    """Train and test loss per epoch, one panel per loss term."""
    terms = sorted({k.split("/", 1)[1] for r in rows for k in r if k.startswith("train/")})
    fig = Figure(figsize=(4 * len(terms), 3))
    axes = fig.subplots(1, len(terms), squeeze=False)
    epochs = [r["epoch"] for r in rows]
    for ax, term in zip(axes[0], terms):
        for split in ("train", "test"):
            values = [r.get(f"{split}/{term}", np.nan) for r in rows]
            ax.plot(epochs, values, marker=".", label=split)  # one epoch is a point, not a line
        ax.set(title=term, xlabel="epoch")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def metric_curves(
    runs: dict[str, list[dict]], keys: tuple[str, ...], path: Path, ylabel: str | None = None
) -> None:
    """Metrics of several runs per epoch on one axes: `runs` maps a label to a run's rows
    (`checkpoint.read_metrics`), `keys` name the metrics ("test/recon", "train/recon"), drawn
    solid, dashed, dotted; one colour per run; `ylabel` says what and in which unit."""
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    for colour, (label, rows) in enumerate(runs.items()):
        for style, key in zip(("-", "--", ":"), keys, strict=False):
            if not rows or any(key not in r for r in rows):
                raise KeyError(f"the run {label!r} has no {key!r} in every epoch's metrics")
            values = [r[key] for r in rows]
            name = label if len(keys) == 1 else f"{label} {key}"
            epochs = [r["epoch"] for r in rows]
            ax.plot(epochs, values, style, marker=".", color=f"C{colour}", label=name)
    ax.set(xlabel="epoch", ylabel=ylabel or ", ".join(keys))
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def image_rows(rows: list[np.ndarray], titles: list[str], path: Path) -> None:
    """Rows of images ([N, H, W, C] each, grey or RGB) one above the other, e.g. inputs over
    reconstructions."""
    n = rows[0].shape[0]
    fig = Figure(figsize=(n, len(rows) * 1.1))
    axes = fig.subplots(len(rows), n, squeeze=False)
    for r, (images, title) in enumerate(zip(rows, titles)):
        for c in range(n):
            axes[r, c].imshow(generation.displayable(images[c]), cmap="gray", vmin=0, vmax=1)
            axes[r, c].axis("off")
        axes[r, 0].set_title(title, fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def write_figures(
    workdir: Path,
    model,
    params,
    test_x: jax.Array,
    config: ml_collections.ConfigDict,
    rng: jax.Array,
    test_labels: np.ndarray | None = None,
) -> None:
    """The end-of-run figures: loss curves; for a model that reconstructs, 10 test images over
    their reconstructions (for a denoising model: corrupted input, reconstruction, clean
    target); for a model with a N(0, I) prior the figures of `generation` (prior samples,
    interpolations, a 2-D code's maps, its scatter coloured by `test_labels` when given); for a
    learned prior, its decoded samples; for a sparse autoencoder, `dictionary.write_figures`;
    for another model of vectors, the loss curves alone. What applies is what the model declares
    (`model.capabilities`). `test_x` may be stored uint8."""
    loss_curves(checkpoint.read_metrics(workdir), workdir / "loss_curves.png")
    capabilities, likelihood = model.capabilities, config.loss.likelihood
    if capabilities.dictionary:
        dictionary.write_figures(workdir, model, params, test_x, config, test_labels)
        return
    if test_x.ndim == 2:  # vectors (a two-stage sampler's codes): no images to show
        return
    if capabilities.reconstructs:
        x = as_float(test_x[:10])
        corrupt = corruptions.build(config.loss.corruption)
        x_in = x if corrupt is None else corrupt(x, rng)
        recon = np.asarray(inference.reconstruct(model, params, x_in, likelihood))
        if corrupt is None:
            rows, titles = [np.asarray(x), recon], ["test images", "reconstructions"]
        else:
            rows = [np.asarray(x_in), recon, np.asarray(x)]
            corrupted = f"{config.loss.corruption.name} corrupted input"
            titles = [corrupted, "reconstructions", "clean targets"]
        image_rows(rows, titles, workdir / "reconstructions.png")
    if capabilities.normal_prior:
        generation.write_figures(workdir, model, params, test_x, test_labels, likelihood, rng)
    if capabilities.learned_prior or capabilities.drawn_prior:
        generation.write_samples(workdir, model, params, rng, likelihood, test_x.shape[1:])
