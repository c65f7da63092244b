"""The train state: made from the config's "init" stream, and restored from a workdir's
checkpoints, old ones without mutable collections too."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax.training import train_state

from aejax.training import checkpoint
from aejax.training.state import TrainState, create_state, restore_state

IMAGES = np.random.default_rng(0).uniform(size=(4, 28, 28, 1)).astype(np.float32)


def test_the_initial_state_is_a_function_of_the_seed(tiny):
    a, b = create_state(tiny("vae"), IMAGES), create_state(tiny("vae"), IMAGES)
    chex.assert_trees_all_equal(a.params, b.params)
    other = create_state(tiny("vae", seed=1), IMAGES)
    assert not np.array_equal(a.params["mu_head"]["kernel"], other.params["mu_head"]["kernel"])
    assert int(a.step) == 0 and a.collections == {}


def test_the_state_carries_a_models_mutable_collections(tiny):
    state = create_state(tiny("vqvae_ema"), IMAGES)
    assert set(state.collections) == {"vq_ema"}


def _state(collections=None) -> TrainState:
    params = {"w": jnp.arange(3.0)}
    tx = optax.adam(1e-3)
    return TrainState.create(apply_fn=None, params=params, tx=tx, collections=collections or {})


def test_a_checkpoint_restores_into_the_states_structure(tmp_path):
    saved = _state({"counts": {"c": jnp.ones(2)}}).replace(step=jnp.asarray(5))
    with checkpoint.manager(tmp_path, 3, writer=True) as mngr:
        assert restore_state(mngr, saved) is None  # no checkpoint yet
        checkpoint.save(mngr, 5, saved)
        restored = restore_state(mngr, _state({"counts": {"c": jnp.zeros(2)}}))
    assert int(restored.step) == 5
    chex.assert_trees_all_equal(restored.params, saved.params)
    chex.assert_trees_all_equal(restored.collections, saved.collections)


def test_a_checkpoint_of_flaxs_train_state_restores_without_collections(tmp_path):
    flax_state = train_state.TrainState.create(
        apply_fn=None, params={"w": jnp.arange(3.0) + 1}, tx=optax.adam(1e-3)
    ).replace(step=jnp.asarray(4))
    with checkpoint.manager(tmp_path, 3, writer=True) as mngr:
        checkpoint.save(mngr, 4, flax_state)
        restored = restore_state(mngr, _state())
        assert isinstance(restored, TrainState) and int(restored.step) == 4
        chex.assert_trees_all_equal(restored.params, flax_state.params)
        with pytest.raises(ValueError):  # a model with collections cannot do without them
            restore_state(mngr, _state({"counts": {"c": jnp.zeros(2)}}))
    assert jax.tree.leaves(restored.collections) == []
