"""What a sparse autoencoder's dictionary does, after training: how often each latent fires,
what the network it reads loses when its layer is replaced by the reconstruction, and which
images drive a latent.

- `density`: the fraction of vectors on which each latent fires; `density_histogram` draws
  their log10, the dead latents (density 0) counted apart.
- `downstream`: for vectors read from a classifier's code (its head's input, the shipped
  `sae_*` configs' `fidelity_features` penultimate layer), the test accuracy and
  cross-entropy with the layer as it is, replaced by the reconstruction, and zeroed; and the
  "loss recovered", (CE_zero - CE_sae) / (CE_zero - CE_original): 1 when splicing in the
  reconstruction costs nothing, 0 when it is as bad as removing the layer.
- `top_activating`: each chosen latent's most activating test images, for vectors of images.
"""

import json
from pathlib import Path

import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from matplotlib.figure import Figure

from aejax import compiled
from aejax.evaluation import inference

DOWNSTREAM_FILE = "downstream.json"


def latents(model, params, vectors, batch_size: int = inference.BATCH) -> np.ndarray:
    """The latents [N, L] of vectors [N, D] (a BatchTopK's by its inference threshold)."""
    return np.asarray(inference.codes(model, params, vectors, batch_size))


def density(latents_NxL: np.ndarray) -> np.ndarray:
    """The fraction of vectors on which each latent fires, [L]."""
    return np.mean(latents_NxL > 0, axis=0)


def density_histogram(density_L: np.ndarray, path: Path) -> None:
    """log10 of the latents' firing densities; the dead (never firing) counted in the title."""
    alive = density_L[density_L > 0]
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    if alive.size:
        ax.hist(np.log10(alive), bins=50)
    dead = density_L.size - alive.size
    ax.set(
        xlabel="log10 firing density", ylabel="latents",
        title=f"{density_L.size:,} latents, {dead:,} never fired on the test set",
    )  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _classifier_head(source_run):
    """The head of the classifier `source_run` holds: features [N, F] -> class logits."""
    return compiled.jit(
        lambda f: source_run.model.apply({"params": source_run.params}, f, method=_apply_head)
    )


def _apply_head(classifier, features):
    return classifier.head(features)


def downstream(
    model, params, config: ml_collections.ConfigDict, test_vectors, test_labels
) -> dict | None:
    """The splice scores of the module docstring on the test split, or None where the vectors
    are not a classifier's code (another network's layer has no head to score)."""
    from aejax import api
    from aejax.data import activations

    data = config.data
    if not data.activations or data.layer is not None:
        return None
    source = api.load_run(activations.source_workdir(data))
    if not source.model.capabilities.classifies:
        return None
    head = _classifier_head(source)
    scale = data.vector_scale or 1.0  # the vectors were scaled by it: the head reads unscaled
    x = np.asarray(test_vectors)
    recon = np.asarray(inference.reconstruct(model, params, x, config.loss.likelihood))
    labels = jnp.asarray(test_labels)

    def scores(features):
        logits = inference.batched(head, jnp.asarray(features / scale))
        ce = float(jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels)))
        return {"accuracy": float(jnp.mean(jnp.argmax(logits, -1) == labels)), "ce": ce}

    original, spliced, zero = scores(x), scores(recon), scores(np.zeros_like(x))
    recovered = (zero["ce"] - spliced["ce"]) / (zero["ce"] - original["ce"])
    return {"original": original, "sae": spliced, "zero": zero, "loss_recovered": recovered}


def source_images(config: ml_collections.ConfigDict, split: str = "test"):
    """The images whose layer outputs the run's vectors are, or None for vectors given as such."""
    from aejax.data import sources

    if not config.data.activations:
        return None
    images_cfg = config.data.copy_and_resolve_references()
    with images_cfg.unlocked():
        images_cfg.activations = ""
    return sources.from_config(images_cfg, split).float_images()


def top_activating(
    latents_NxL: np.ndarray, images, chosen: list[int], path: Path, per_latent: int = 8
) -> None:
    """One row per chosen latent: its `per_latent` most activating images, strongest first."""
    from aejax.evaluation import generation

    fig = Figure(figsize=(per_latent, 1.1 * len(chosen)))
    axes = fig.subplots(len(chosen), per_latent, squeeze=False)
    for row, latent in enumerate(chosen):
        order = np.argsort(-latents_NxL[:, latent])[:per_latent]
        for col, i in enumerate(order):
            axes[row, col].imshow(generation.displayable(images[i]), cmap="gray", vmin=0, vmax=1)
            axes[row, col].axis("off")
        axes[row, 0].set_title(f"latent {latent}", fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def write_figures(workdir: Path, model, params, test_vectors, config, test_labels) -> None:
    """The dictionary's end-of-run report: feature_density.png; for vectors of images,
    top_activating.png (the 8 latents that fire on most test vectors, below 1/2); for a
    classifier's code, downstream.json (`downstream`)."""
    f = latents(model, params, test_vectors)
    rates = density(f)
    density_histogram(rates, workdir / "feature_density.png")
    images = source_images(config)
    if images is not None:
        candidates = np.argsort(-np.where(rates < 0.5, rates, 0))[:8]
        chosen = [int(i) for i in candidates if rates[i] > 0]
        top_activating(f, images, chosen, workdir / "top_activating.png")
    scores = None if test_labels is None else downstream(
        model, params, config, test_vectors, test_labels
    )
    if scores is not None:
        (workdir / DOWNSTREAM_FILE).write_text(json.dumps(scores, indent=1))
        print(
            f"downstream: test accuracy {scores['original']['accuracy']:.4f} as it is, "
            f"{scores['sae']['accuracy']:.4f} spliced, {scores['zero']['accuracy']:.4f} zeroed; "
            f"loss recovered {scores['loss_recovered']:.4f}",
            flush=True,
        )
