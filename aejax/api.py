"""aejax from Python: train on a notebook's arrays or a shipped dataset, then use the model.

    import aejax
    run = aejax.fit("vae", train=x_train, test=x_test, train__epochs=5)
    codes = run.encode(x_test)          # posterior means (a VAE) or codes
    images = run.sample(16)             # a VAE's decoder means of prior draws
    run.fit_sampler()                   # any autoencoder: a mixture fitted to its codes samples
    run.fit_sampler(kind="two_stage")   # or a second VAE trained on its codes
    run.fit_sampler(kind="transformer") # or a transformer over its codes' binned units
    run = aejax.load_run(run.workdir)   # later, or in another notebook

`fit` runs what `aejax train` runs (`loop.train_and_evaluate`): the same checkpoints in its
workdir and the same rules, so a second `fit` with the same workdir and config resumes the run
(or, when it is complete, returns it at once) and one with another config is refused.
"""

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from aejax import configs
from aejax.data.dataset import Dataset
from aejax.evaluation import code_mixture, code_tokens, code_vae, generation, inference
from aejax.models import factory
from aejax.training import checkpoint
from aejax.training.loop import train_and_evaluate
from aejax.training.setup import load_splits
from aejax.training.state import create_state, restore_state

Images = np.ndarray | jax.Array  # [N, H, W, C], values in [0, 1]
FITTED_SAMPLERS = ("mixture", "two_stage", "transformer")  # what `Run.fit_sampler` fits
SAMPLERS = (None, *FITTED_SAMPLERS, "prior")  # what `Run.sample` draws codes from


@dataclasses.dataclass(frozen=True)
class Run:
    """A trained run: its workdir, config, parameters and model, and what the model does."""

    workdir: Path
    config: ml_collections.ConfigDict
    params: Any  # the parameter tree, as numpy arrays
    model: nn.Module
    step: int  # the checkpoint's: what a sampler fitted to the codes was fitted at

    def __repr__(self) -> str:
        """One line, not the parameters: the workdir, the model and its size, the epochs."""
        size = sum(np.size(p) for p in jax.tree.leaves(self.params))
        rows = self.metrics()
        epochs = f"{rows[-1]['epoch']} epochs" if rows else "no epoch logged"
        data = self.config.data.path or self.config.data.name
        return (
            f"Run({str(self.workdir)!r}: {self.config.model.name} on {data}, {size:,} "
            f"parameters, {epochs})"
        )

    def metrics(self) -> list[dict]:
        """One row per epoch, as in `metrics.jsonl`: train/ and test/ losses, speed."""
        return checkpoint.read_metrics(self.workdir)

    def encode(self, x: Images) -> np.ndarray:
        """The codes of images `x` [N, H, W, C]: a VAE's posterior means, an AE's codes; a sparse
        autoencoder's latents of vectors [N, D], given as the layer gives them (the run's
        `data.vector_scale` is applied as training applied it)."""
        return np.asarray(inference.codes(self.model, self.params, self._images(x)))

    def decode(self, z: np.ndarray | jax.Array) -> np.ndarray:
        """The decoder's mean images [N, H, W, C] of codes `z` [N, *code shape]."""
        z = jnp.asarray(z)
        if z.ndim < 2 or z.shape[1:] != self._code_shape():
            raise ValueError(
                f"z has shape {z.shape}; this run's decoder takes codes [N, "
                f"{', '.join(map(str, self._code_shape()))}], as run.encode gives them"
            )
        decoded = inference.decode(self.model, self.params, z, self._likelihood())
        return np.asarray(decoded) / self._vector_scale()

    def reconstruct(self, x: Images) -> np.ndarray:
        """decode(encode(x)): for a VAE, the decoder's mean at the posterior mean (no noise).
        Vectors come back at the layer's scale, as `x` was given."""
        recon = inference.reconstruct(self.model, self.params, self._images(x), self._likelihood())
        return np.asarray(recon) / self._vector_scale()

    def sample(self, n: int, seed: int = 0, sampler: str | None = None) -> np.ndarray:
        """`n` images decoded from codes drawn, seeded, from `sampler`: "mixture", "two_stage"
        or "transformer", the sampler `fit_sampler` fitted to this run's codes; "prior", the model's
        prior: N(0, I) (a VAE, or a WAE or adversarial AE, whose codes were matched to it), a
        VampPrior, or a learned prior over a VQ-VAE's codes (`vqvae_prior`); None, the first of
        a fitted mixture, two-stage VAE or transformer, and the prior."""
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; choose one of {SAMPLERS}")
        fitted = {
            "mixture": code_mixture.load(self.workdir), "two_stage": code_vae.load(self.workdir),
            "transformer": code_tokens.load(self.workdir),
        }  # fmt: skip
        if sampler is None:
            sampler = next((kind for kind, found in fitted.items() if found), "prior")
        rng = jax.random.key(seed)
        if sampler == "prior":
            images = inference.sample(
                self.model, self.params, rng, n, self._likelihood(),
                tuple(self.config.model.image_shape),
                name=f"this run's model {self.config.model.name!r}", workdir=str(self.workdir),
            )  # fmt: skip
            return np.asarray(images)
        if fitted[sampler] is None:
            raise ValueError(
                f"{self.workdir} holds no {sampler} sampler: fit one, "
                f"run.fit_sampler(kind={sampler!r})"
            )
        meta = fitted[sampler][-1]
        if meta["step"] != self.step:
            raise ValueError(
                f"the {sampler} sampler in {self.workdir} was fitted to the codes at step "
                f"{meta['step']}, and the run is now at step {self.step}: fit it again, "
                f"run.fit_sampler(kind={sampler!r})"
            )
        if sampler == "mixture":
            z = fitted[sampler][0].sample(rng, n)
        elif sampler == "two_stage":
            stage, mean_D, std_D, _ = fitted[sampler]
            z = load_run(stage).sample(n, seed, "prior") * std_D + mean_D
        else:
            stage, edges_DxE, _ = fitted[sampler]
            prior = load_run(stage)
            z = code_tokens.sample(prior.model, prior.params, edges_DxE, rng, n)
        z = jnp.asarray(z).reshape(n, *self._code_shape())
        return np.asarray(inference.decode(self.model, self.params, z, self._likelihood()))

    def fit_sampler(
        self,
        x: Images | None = None,
        components: int = code_mixture.COMPONENTS,
        seed: int = 0,
        kind: str = "mixture",
        epochs: int = code_vae.EPOCHS,
    ) -> dict:
        """Fits a sampler of `kind` to the codes of images `x` (default: the run's training
        split) and keeps it in the workdir, where `sample` then draws from it: "mixture", a
        Gaussian mixture of `components` full-covariance gaussians (EM, seeded); "two_stage", a
        second VAE trained `epochs` on the codes (`code_vae`); "transformer", a causal
        transformer trained `epochs` on the codes' binned units (`code_tokens`). Writes
        `KIND_samples.png`.
        Returns what it was fitted to (a mixture's mean log density per code too)."""
        if kind not in FITTED_SAMPLERS:
            raise ValueError(f"unknown sampler kind {kind!r}; choose one of {FITTED_SAMPLERS}")
        if x is None:
            x = self._training_images()
        codes = inference.codes(self.model, self.params, self._images(x))
        codes_NxD = codes.reshape(codes.shape[0], -1)
        meta = {
            "step": self.step, "seed": seed, "codes": int(codes_NxD.shape[0]),
            "code_units": int(codes_NxD.shape[1]),
        }  # fmt: skip
        if kind == "mixture":
            if codes_NxD.shape[0] < components:
                raise ValueError(
                    f"{codes_NxD.shape[0]} codes cannot place {components} mixture components: "
                    "fit to more images, or pass fewer components"
                )
            mixture = code_mixture.fit(codes_NxD, jax.random.key(seed), components=components)
            meta.update(
                components=components,
                log_density_per_code=float(jnp.mean(mixture.log_prob(codes_NxD))),
            )
            code_mixture.save(mixture, self.workdir, meta)
            title = f"decoded draws of a {components}-component mixture fitted to the codes"
        elif kind == "two_stage":
            meta.update(epochs=epochs)
            code_vae.fit(codes_NxD, self.workdir, meta, epochs, seed)
            title = "decoded draws of a second VAE trained on the codes"
        else:
            meta.update(epochs=epochs, bins=code_tokens.BINS)
            code_tokens.fit(codes_NxD, self.workdir, meta, epochs, seed)
            title = "decoded draws of a transformer over the codes' binned units"
        grid = self.sample(60, seed, kind).reshape(6, 10, *self.config.model.image_shape)
        path = self.workdir / f"{kind}_samples.png"
        generation.grid_panels([grid], [title], path, generation.ZOOM)
        return meta

    def _training_images(self) -> np.ndarray:
        """The run's training split, loaded as the run loaded it; refused for a notebook's
        arrays, which the run did not keep."""
        if self.config.data.name == "arrays":
            raise ValueError(
                "this run trained on arrays it did not keep: pass its training images, "
                "run.fit_sampler(x_train)"
            )
        return load_splits(self.config)[0].images

    def interpolate(self, x_a: Images, x_b: Images, steps: int = 8) -> np.ndarray:
        """[pairs, steps + 2, H, W, C]: each image of `x_a`, `steps` decodings along the line
        from its code to that of the image of `x_b`, then that image."""
        return generation.interpolations(
            self.model, self.params, self._images(x_a), self._images(x_b), steps,
            self._likelihood(),
        )  # fmt: skip

    def _code_shape(self) -> tuple[int, ...]:
        """An image's code shape, what `encode` gives and `decode` takes (without the batch)."""
        return inference.code_shape(self.model, self.params, self.config.model.image_shape)

    def _likelihood(self) -> str:
        return self.config.loss.likelihood

    def _images(self, x: Images) -> jax.Array:
        """`x` checked, and as the model reads it: vectors scaled as training scaled them."""
        x = _check_images(np.asarray(x), tuple(self.config.model.image_shape), "x")
        return jnp.asarray(x * self._vector_scale() if x.ndim == 2 else x)

    def _vector_scale(self) -> np.float32:
        """What the run's vectors were multiplied by (`data.normalize`); 1 for images."""
        return np.float32(self.config.data.get("vector_scale") or 1)


def can_sample(model: nn.Module) -> bool:
    """Whether `Run.sample` draws from `model`: codes matched to N(0, I), or a learned prior
    over a VQ-VAE's codes."""
    return model.capabilities.samples


def _check_images(x: np.ndarray, image_shape: tuple, name: str) -> np.ndarray:
    """`x` as float32 images [N, *image_shape] in [0, 1] (uint8 scaled as training scales it),
    or float32 vectors [N, D] for a model of vectors, else a clear error."""
    if len(image_shape) == 1:
        if x.ndim != 2 or x.shape[1] != image_shape[0]:
            raise ValueError(
                f"{name} has shape {x.shape}; this run's model takes vectors [N, {image_shape[0]}]"
            )
        return Dataset(x, name=name).images
    if x.ndim != 4 or tuple(x.shape[1:]) != image_shape:
        raise ValueError(
            f"{name} has shape {x.shape}; this run's model takes images "
            f"[N, {', '.join(map(str, image_shape))}] (grey images need a channel axis: x[..., None])"
        )
    return Dataset(x, name=name).float_images()


def fit(
    config: str | Path | ml_collections.ConfigDict = "vae",
    *,
    train: Images | tuple[Images, np.ndarray] | Dataset | None = None,
    test: Images | tuple[Images, np.ndarray] | Dataset | None = None,
    workdir: str | Path | None = None,
    resume_changes: tuple[str, ...] = (),
    **overrides: Any,
) -> Run:
    """Trains `config` (a shipped config's name, a config file or a ConfigDict); returns the run.

    `train` and `test`: images [N, H, W, C] in [0, 1] (or uint8 0..255), an `(images, labels)`
    pair, or an `aejax.Dataset`; without `test`, `data.test_fraction` of `train` is held out;
    without either, the dataset `config.data` names is loaded. The model takes its image shape
    from the data. `workdir`: where the run lives (default: a new temporary folder).
    `overrides` set config fields, a double underscore between levels, since a keyword cannot
    hold a dot: `opt__lr=3e-4` is `--config.opt.lr=3e-4`; `**{"opt__lr": 3e-4}` passes them from
    a dict. An undeclared field is an error. `resume_changes` names what a resumed run may
    change (`aejax train --resume_changes`): `("train.epochs",)` continues a finished run for
    more epochs, `("data",)` continues it on other data.
    """
    if not isinstance(config, ml_collections.ConfigDict):
        config = configs.load(config)
    config = configs.override(config, **overrides)
    if train is not None:
        config.data.name = "arrays"  # recorded in config.json: the data came from the caller
    workdir = Path(tempfile.mkdtemp(prefix="aejax-run-") if workdir is None else workdir)
    train_and_evaluate(config, workdir, train=train, test=test, resume_changes=tuple(resume_changes))
    return load_run(workdir)  # the config as trained: its image shape is the data's


def _tuples(value):
    """JSON's lists back to the tuples configs hold (layer widths, image shapes)."""
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def load_run(workdir: str | Path) -> Run:
    """The run in `workdir` (of `fit` or `aejax train`) at its newest checkpoint."""
    workdir = Path(workdir)
    path = workdir / checkpoint.CONFIG_FILE
    if not path.exists():
        raise FileNotFoundError(f"{workdir} holds no run: {path.name} is missing")
    config = ml_collections.ConfigDict(_tuples(json.loads(path.read_text())))
    config.lock()
    example = np.zeros((1, *config.model.image_shape), np.float32)
    state = create_state(config, example)  # the structure to restore into
    mngr = checkpoint.manager(workdir, config.train.keep_checkpoints)
    restored = restore_state(mngr, state)
    mngr.close()
    if restored is None:
        raise FileNotFoundError(f"{workdir} holds no checkpoint yet: train it first")
    params = jax.device_get(restored.params)
    return Run(workdir, config, params, factory.build(config.model), int(restored.step))
