"""A run is set up once: `setup` builds every piece a run trains with, the loop rebuilds none,
its random streams are the key of the run's seed folded with fixed numbers, and bad input is refused
before any training."""

import collections
from types import SimpleNamespace

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import load_config
from test_random_streams import FOLDED, key_data

from aejax.data import binarize, device, sources
from aejax.data.dataset import as_float
from aejax.objectives import registry
from aejax.training import loop
from aejax.training import setup as run_setup


@pytest.fixture(scope="module")
def digits():
    """mnist5k's training images, stored uint8."""
    return sources.dataset("mnist5k", "train").images


def test_the_default_runs_order_and_initial_parameters_come_from_its_fixed_streams():
    config = load_config("vae")  # what `aejax train` trains without --config
    run = run_setup.setup(config)
    root = jax.random.key(config.seed)
    for name, number in FOLDED.items():
        want = key_data(jax.random.fold_in(root, number))
        np.testing.assert_array_equal(key_data(run.keys[name]), want)
    epoch_0 = jax.random.fold_in(jax.random.fold_in(root, 2), 0)
    first_epoch = device.epoch_batches(epoch_0, len(run.data.train), config.train.batch_size)
    np.testing.assert_array_equal(run.batches.chunk(0, 0, run.steps_per_epoch), first_epoch)
    init_rng, noise_rng = jax.random.split(jax.random.fold_in(root, 0))
    example = as_float(run.data.train.images[:1])
    variables = run.model.init({"params": init_rng, "noise": noise_rng}, example)
    chex.assert_trees_all_equal(run.state.params, variables["params"])


def test_dynamic_binarisation_draws_from_the_fifth_stream_folded_with_the_step():
    config = load_config("iwae")
    assert config.data.binarize == "dynamic"
    seen = binarize.on_train_batches(config, lambda state, x, rng: x)
    x = jnp.full((4, 28, 28, 1), 0.5)
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(config.seed), 5), 3)
    at_step_3 = seen(SimpleNamespace(step=jnp.asarray(3)), x, None)
    np.testing.assert_array_equal(at_step_3, binarize.sample(x, key))


def _count_calls(monkeypatch, calls: collections.Counter, holder, name: str, key=None) -> None:
    """Counts in `calls[name]` the calls of `holder.name` (or of `holder[key]`, a registry's
    entry, looked up at each call wherever it is called from)."""
    original = holder[key] if key else getattr(holder, name)

    def counted(*args, **kwargs):
        calls[name] += 1
        return original(*args, **kwargs)

    if key:
        monkeypatch.setitem(holder, key, counted)
    else:
        monkeypatch.setattr(holder, name, counted)


def test_a_run_reads_its_data_and_builds_its_pieces_once(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr("aejax.evaluation.figures.write_figures", lambda *args, **kwargs: None)
    calls = collections.Counter()
    _count_calls(monkeypatch, calls, sources, "from_config")
    _count_calls(monkeypatch, calls, registry.OBJECTIVES, "objective", key="reconstruction")
    for builder in ("create_state", "make_train_step", "make_evaluate"):
        _count_calls(monkeypatch, calls, run_setup, builder)
    loop.train_and_evaluate(tiny("mlp", train__epochs=2), tmp_path)  # two epochs, two evaluations
    assert calls == {
        "from_config": 2,  # the train split and the test split
        "objective": 1,
        "create_state": 1,
        "make_train_step": 1,
        "make_evaluate": 1,
    }


def test_the_run_is_fitted_to_the_data_it_is_given(digits):
    images = np.repeat(digits[:300, :24, :24], 3, axis=-1)  # 24x24 colour images
    config = load_config("conv")
    config.train.batch_size = 50
    run = run_setup.setup(config, train=images)
    assert tuple(run.config.model.image_shape) == (24, 24, 3)
    assert (len(run.data.train), len(run.data.test)) == (270, 30)  # data.test_fraction held out
    assert run.steps_per_epoch == 5
    assert set(run.data.fingerprint) == {"train", "test"}
    assert config.model.image_shape == (28, 28, 1)  # the caller's config is left as it was


@pytest.mark.parametrize(
    "overrides, data, message",
    [
        ({"train__batch_size": 100_000}, {}, "batch_size=100000 must be between 1 and the 4000"),
        ({"opt__lr": float("nan")}, {}, "opt.lr=nan must be a positive finite number"),
        ({"opt__name": "lion"}, {}, "unknown optimizer 'lion'"),
        ({"model__name": "nope"}, {}, "unknown model 'nope'"),
        ({"loss__objective": "nope"}, {}, "unknown loss.objective 'nope'"),
        ({}, {"test": "test"}, "a test set was given without a training set"),
        ({}, {"train": "train", "test": "small"}, r"training images are \(28, 28, 1\) but test"),
        ({"loss__objective": "classification"}, {"train": "train"}, "has no labels"),
    ],
)
def test_bad_input_is_refused_before_training(tiny, digits, overrides, data, message):
    arrays = {"train": digits[:100], "test": digits[:20], "small": digits[:20, :14, :14]}
    splits = {split: arrays[name] for split, name in data.items()}
    with pytest.raises(ValueError, match=message):
        run_setup.setup(tiny("mlp", **overrides), **splits)
