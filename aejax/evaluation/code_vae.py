"""A second VAE trained on a run's codes: the two-stage VAE sampler, an ex-post sampler for any
autoencoder with a decoder.

"Diagnosing and Enhancing VAE Models" (Dai and Wipf, 2019) trains a second VAE on the codes of
the first: where the codes' distribution is far from N(0, I), the second stage's own latents
match N(0, I) closely, and its decoded draws are codes the first decoder knows. Pythae offers
it for every model (`TwoStageVAESampler`). Here the second stage is an aejax run itself, trained
by the one loop in the folder `two_stage` of the run's workdir: the `vae` model on the codes
standardised per unit, two hidden layers of 1024 units (Pythae's), as many latents as the code
has units, and a gaussian likelihood whose variance it learns (the paper's gamma). Its KL is
warmed up linearly over about the first half of its steps: at full weight from the start, the second
stage fitted to `tied`'s 150-unit codes of full MNIST collapsed in its first epoch (KL 0; the
decoder gave the codes' mean at unit variance, 212.9 nats = 150 x log(2 pi e) / 2, in every
epoch), and with the warm-up over its first 3 epochs it reached KL 39.9 and loss 119.8 nats.
"""

import json
import math
import os
import shutil
from pathlib import Path

import jax
import ml_collections
import numpy as np

from aejax import configs
from aejax.training.loop import train_and_evaluate

FOLDER = Path("two_stage")  # the second stage's workdir, inside the run's
FILE = "standardisation.npz"  # the codes' means and deviations, and what they were taken of
WIDTHS = (1024, 1024)
EPOCHS = 20
BATCH = 100


def config(
    code_units: int, epochs: int, seed: int, warmup_steps: int = 0
) -> ml_collections.ConfigDict:
    """The second stage's config: `vae` on vectors of `code_units`, its variance learned, its
    KL warmed up over `warmup_steps`."""
    config = configs.get("vae")
    config.seed = seed
    config.data.normalize = "none"  # the codes come standardised
    config.model.encoder_widths = WIDTHS  # hidden layers under the gaussian heads
    config.model.latent_dim = code_units
    config.model.activation = "relu"
    config.model.learned_variance = True
    config.model.image_shape = (code_units,)
    config.loss.likelihood = "gaussian"
    config.loss.kl_warmup_steps = warmup_steps
    config.train.epochs = epochs
    config.train.batch_size = BATCH
    return config


def fit(codes_NxD: jax.Array, workdir: Path, meta: dict, epochs: int, seed: int) -> Path:
    """Trains the second stage on `codes_NxD` standardised, with the standardisation and `meta`
    (what it was fitted to) beside it, in `workdir`/FOLDER (`train_beside`). Returns its
    workdir."""
    codes = np.asarray(codes_NxD, np.float32)
    mean_D, std_D = codes.mean(0), codes.std(0) + 1e-6  # a unit that never varies stays finite
    standardised = (codes - mean_D) / std_D
    arrays = {"mean": mean_D, "std": std_D}
    steps = epochs * math.ceil(len(codes) / BATCH)  # the held-out tenth makes it an upper bound
    stage_config = config(codes.shape[1], epochs, seed, warmup_steps=steps // 2)
    return train_beside(workdir, FOLDER / FILE, stage_config, standardised, arrays, meta)


def train_beside(workdir: Path, file: Path, config, data, arrays: dict, meta: dict) -> Path:
    """Trains a sampler's run of `config` on `data` in `workdir`/`file`'s folder, with `arrays`
    and `meta` (what it was fitted to) in `file`. It trains in a folder of its own and replaces
    a fit already there only once it is complete: an interrupted fit leaves the old one."""
    folder, name = file.parts
    stage = Path(workdir) / folder
    partial = stage.with_name(f".{folder}.partial")
    shutil.rmtree(partial, ignore_errors=True)  # an interrupted fit's: its codes may differ
    train_and_evaluate(config, partial, train=data)
    with open(partial / name, "wb") as f:
        np.savez(f, meta=json.dumps(meta), **arrays)
    shutil.rmtree(stage, ignore_errors=True)
    os.replace(partial, stage)
    return stage


def load(workdir: Path) -> tuple[Path, np.ndarray, np.ndarray, dict] | None:
    """The second stage's workdir, the codes' means and deviations and what it was fitted to;
    None if none was fitted (or its fit did not finish)."""
    stage = Path(workdir) / FOLDER
    if not (stage / FILE).exists():
        return None
    with np.load(stage / FILE) as saved:
        return stage, saved["mean"], saved["std"], json.loads(str(saved["meta"]))
