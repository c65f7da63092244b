"""Dynamic binarisation (`config.data.binarize = "dynamic"`), the protocol of Burda et al. (2016).

Grey levels become Bernoulli draws: the training batch is redrawn inside the compiled step from
a key that is a function of (seed, step), so every pass over the data sees new binary images
and a resumed run draws the same ones; the test set is drawn once, from a fixed key shared by
all seeds, so that every run is scored on the same binary images.
"""

from collections.abc import Callable

import jax
import ml_collections

from aejax import random_streams
from aejax.data.dataset import as_float

MODES = ("none", "dynamic")
TEST_KEY = 0  # the one binarisation of every test set


def mode(data_cfg: ml_collections.ConfigDict) -> str:
    name = data_cfg.binarize
    if name not in MODES:
        raise ValueError(f"unknown data.binarize {name!r}; choose one of {MODES}")
    return name


def sample(x: jax.Array, rng: jax.Array) -> jax.Array:
    """Each pixel 1 with probability its grey level, else 0."""
    return jax.random.bernoulli(rng, x).astype(x.dtype)


def test_images(data_cfg: ml_collections.ConfigDict, test_x: jax.Array) -> jax.Array:
    """The test set as evaluated: binarised once from `TEST_KEY` when the mode is dynamic (as
    float32), else as given (uint8 images stay uint8)."""
    if mode(data_cfg) == "none":
        return test_x
    return sample(as_float(test_x), jax.random.key(TEST_KEY))


def on_train_batches(config: ml_collections.ConfigDict, train_step: Callable) -> Callable:
    """`train_step(state, x, rng)` seeing binarised batches when `config.data` asks for it."""
    if mode(config.data) == "none":
        return train_step
    key = random_streams.stream(config.seed, "binarize")

    def binarized_step(state, batch, rng):
        draw = jax.random.fold_in(key, state.step)
        if isinstance(batch, dict):  # a labelled batch: only its images are grey levels
            return train_step(state, {**batch, "image": sample(batch["image"], draw)}, rng)
        return train_step(state, sample(batch, draw), rng)

    return binarized_step
