"""What a sparse autoencoder's dictionary does: how often each latent fires, what the network it
reads loses when its layer is replaced by the reconstruction (both every epoch, `EpochScores`,
and at the end of the run), and which images drive a latent.

- `density`: the fraction of vectors on which each latent fires; `density_histogram` draws
  their log10, the dead latents (density 0) counted apart.
- `downstream` (`Splice`): for vectors read from a classifier's code (its head's input, the shipped
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


def _apply_head(classifier, features):
    return classifier.head(features)


class Splice:
    """The test split's vectors read from a classifier's code, and its head: the scores of the
    module docstring with the layer as it is, zeroed (both fixed), and replaced by a dictionary's
    reconstruction."""

    def __init__(self, source_run, config: ml_collections.ConfigDict, test_vectors, test_labels):
        self.likelihood = config.loss.likelihood
        self.scale = config.data.vector_scale or 1.0  # the head reads the vectors unscaled
        self.vectors = np.asarray(test_vectors)
        self.labels = jnp.asarray(test_labels)
        params = source_run.params
        self.head = compiled.jit(
            lambda f: source_run.model.apply({"params": params}, f, method=_apply_head)
        )
        self.original = self.scores(self.vectors)
        self.zero = self.scores(np.zeros_like(self.vectors))

    @classmethod
    def of(cls, config: ml_collections.ConfigDict, test_vectors, test_labels) -> "Splice | None":
        """The splice of the run `config` describes, or None where its vectors are not a
        classifier's code (another network's layer has no head to score)."""
        from aejax import api
        from aejax.data import activations

        data = config.data
        if test_labels is None or not data.activations or data.layer is not None:
            return None
        source = api.load_run(activations.source_workdir(data))
        if not source.model.capabilities.classifies:
            return None
        return cls(source, config, test_vectors, test_labels)

    def scores(self, features) -> dict:
        """Test accuracy and mean cross-entropy with the layer's output `features` (as scaled)."""
        logits = inference.batched(self.head, jnp.asarray(features / self.scale))
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, self.labels)
        accuracy = jnp.mean(jnp.argmax(logits, -1) == self.labels)
        return {"accuracy": float(accuracy), "ce": float(jnp.mean(ce))}

    def __call__(self, model, params) -> dict:
        """The scores as they are, spliced and zeroed, and the loss recovered."""
        recon = np.asarray(inference.reconstruct(model, params, self.vectors, self.likelihood))
        spliced = self.scores(recon)
        recovered = (self.zero["ce"] - spliced["ce"]) / (self.zero["ce"] - self.original["ce"])
        scores = {"original": self.original, "sae": spliced, "zero": self.zero}
        return scores | {"loss_recovered": recovered}


def downstream(
    model, params, config: ml_collections.ConfigDict, test_vectors, test_labels
) -> dict | None:
    """`Splice`'s scores of the trained dictionary, or None where they do not apply."""
    splice = Splice.of(config, test_vectors, test_labels)
    return None if splice is None else splice(model, params)


class EpochScores:
    """What each epoch adds to the row of a dictionary: the fraction of latents that never fired
    on the test set and, for a classifier's code, the spliced accuracy and the loss recovered;
    and, for TensorBoard, the histogram of the latents' log10 firing densities. Built once."""

    def __init__(self, model, config: ml_collections.ConfigDict, test_vectors, test_labels):
        self.model, self.vectors = model, jnp.asarray(test_vectors)
        self.splice = Splice.of(config, test_vectors, test_labels)
        self._firings = compiled.jit(  # [L] counts: the [N, L] latents never leave the device
            lambda params, x: jnp.sum(inference.code(model, params, x) > 0, axis=0)
        )

    def __call__(self, params) -> tuple[dict, dict]:
        """(scalars for the row, {name: values} histograms) of `params`."""
        n, batch = len(self.vectors), inference.BATCH
        counts = sum(self._firings(params, self.vectors[i : i + batch]) for i in range(0, n, batch))
        density_L = np.asarray(counts) / n
        scalars = {"test/never_fired": float(np.mean(density_L == 0))}
        if self.splice is not None:
            scores = self.splice(self.model, params)
            scalars["test/accuracy_spliced"] = scores["sae"]["accuracy"]
            scalars["test/loss_recovered"] = scores["loss_recovered"]
        return scalars, {"test/log10_density": np.log10(density_L[density_L > 0])}


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
    scores = downstream(model, params, config, test_vectors, test_labels)
    if scores is not None:
        (workdir / DOWNSTREAM_FILE).write_text(json.dumps(scores, indent=1))
        print(
            f"downstream: test accuracy {scores['original']['accuracy']:.4f} as it is, "
            f"{scores['sae']['accuracy']:.4f} spliced, {scores['zero']['accuracy']:.4f} zeroed; "
            f"loss recovered {scores['loss_recovered']:.4f}",
            flush=True,
        )
