"""Dynamic binarisation: binary draws with the grey level as probability, a function of
(seed, step) inside the step, and one fixed binarisation of the test set."""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import load_config

from aejax.data import binarize, sources
from aejax.training import loop


def test_draws_are_binary_with_the_grey_level_as_probability():
    grey = jnp.full((20_000,), 0.3)
    draws = binarize.sample(grey, jax.random.key(0))
    assert set(np.unique(draws)) == {0.0, 1.0}
    np.testing.assert_allclose(draws.mean(), 0.3, atol=0.01)


def train_state_at(step):
    return SimpleNamespace(step=jnp.asarray(step))  # the wrapper reads only `.step`


def test_training_batches_are_redrawn_each_step_and_reproducible():
    config = load_config("iwae")
    step = binarize.on_train_batches(config, lambda state, x, rng: x)  # returns what it sees
    x = jnp.full((4, 28, 28, 1), 0.5)
    at = {s: np.asarray(step(train_state_at(s), x, None)) for s in (3, 4)}
    assert not np.array_equal(at[3], at[4])
    np.testing.assert_array_equal(at[3], step(train_state_at(3), x, None))
    config.seed = 1
    other_seed = binarize.on_train_batches(config, lambda state, x, rng: x)
    assert not np.array_equal(at[3], other_seed(train_state_at(3), x, None))
    config.data.binarize = "none"
    assert binarize.on_train_batches(config, "the step") == "the step"


def test_a_labelled_batch_has_its_images_drawn_and_its_labels_kept():
    config = load_config("iwae")
    step = binarize.on_train_batches(config, lambda state, batch, rng: batch)
    batch = {"image": jnp.full((4, 28, 28, 1), 0.5), "label": jnp.arange(4)}
    seen = step(train_state_at(3), batch, None)
    np.testing.assert_array_equal(seen["image"], step(train_state_at(3), batch["image"], None))
    np.testing.assert_array_equal(seen["label"], batch["label"])


def test_test_set_is_binarised_once_the_same_for_every_run():
    config = load_config("iwae")
    test_x = jnp.asarray(sources.load("mnist5k", "test")[0][:50])
    once = binarize.test_images(config.data, test_x)
    assert set(np.unique(once)) == {0.0, 1.0}
    np.testing.assert_array_equal(once, binarize.test_images(config.data, test_x))
    config.data.binarize = "none"
    assert binarize.test_images(config.data, test_x) is test_x


def test_unknown_mode_is_refused(tiny, tmp_path):
    config = tiny("iwae", data__binarize="static")
    with pytest.raises(ValueError, match="unknown data.binarize 'static'.*dynamic"):
        loop.train_and_evaluate(config, tmp_path)
