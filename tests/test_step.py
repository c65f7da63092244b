"""The compiled work of a run: the step, chunks of steps, their compilation, evaluation."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from aejax.data.device import gather
from aejax.training.state import TrainState
from aejax.training.step import CompileClock, make_evaluate, make_train_chunk, make_train_step


def noisy_loss(params, x, rng, train, step=None):
    """A loss whose gradient depends on the batch and on the key: (x . w) times a draw."""
    draw = jax.random.normal(rng, ())
    loss = jnp.mean(x.reshape(len(x), -1) @ params["w"]) * draw
    return loss, {"loss": loss, "draw": jnp.full(len(x), draw).mean()}


def _state() -> TrainState:
    return TrainState.create(apply_fn=None, params={"w": jnp.zeros(4)}, tx=optax.sgd(0.1))


def test_the_train_step_hands_its_step_to_the_loss():
    def loss_fn(params, x, rng, train, step=None):  # gradient: the step the loss was given
        return step * params["w"], {}

    state = TrainState.create(apply_fn=None, params={"w": jnp.zeros(())}, tx=optax.sgd(1.0))
    state = state.replace(step=7)
    state, _ = make_train_step(loss_fn)(state, None, None)
    assert state.params["w"] == -7.0


def test_a_chunk_is_its_steps_one_after_another_each_with_the_key_of_its_step():
    dataset = jnp.arange(40, dtype=jnp.uint8).reshape(10, 2, 2, 1)
    idx_CxB = jnp.array([[0, 1], [2, 3], [4, 5]])
    rng = jax.random.key(3)
    step = make_train_step(noisy_loss)
    state, want_draws = _state().replace(step=5), []
    for idx_B in idx_CxB:  # uint8 rows scaled to [0, 1] as the chunk scales them
        batch = gather(dataset, idx_B).astype(jnp.float32) / 255
        state, metrics = step(state, batch, jax.random.fold_in(rng, state.step))
        want_draws.append(metrics["draw"])
    chunked, metrics_C = make_train_chunk(step)(_state().replace(step=5), dataset, idx_CxB, rng)
    assert int(chunked.step) == 8
    chex.assert_trees_all_close(chunked.params, state.params, rtol=1e-6)
    np.testing.assert_allclose(metrics_C["draw"], want_draws, rtol=1e-6)
    single, metrics_1 = make_train_chunk(step)(_state(), dataset, idx_CxB[:1], rng)
    assert metrics_1["draw"].shape == (1,) and int(single.step) == 1


def test_a_chunk_compiles_once_per_length_and_the_clock_counts_it():
    clock = CompileClock()
    train_chunk = clock.per_chunk_length(make_train_chunk(make_train_step(noisy_loss)))
    compiled_for = []
    compile_ahead = clock.compile
    clock.compile = lambda jitted, *args: compiled_for.append(args) or compile_ahead(jitted, *args)
    dataset, rng, state = jnp.ones((10, 2, 2, 1)), jax.random.key(0), _state()
    for length in (2, 2, 3, 2):
        idx = jnp.zeros((length, 2), jnp.int32)
        state, _ = train_chunk(state, dataset, idx, rng)
    assert [len(args[2]) for args in compiled_for] == [2, 3] and clock.seconds > 0
    assert int(state.step) == 9


def test_evaluation_is_the_mean_over_the_dataset_whatever_the_batches():
    def loss_fn(params, x, rng, train):  # a batch's metrics: its mean, and its key's first bits
        return None, {"mean": jnp.mean(x), "key": jax.random.key_data(rng)[-1].astype(jnp.float32)}

    dataset = jnp.arange(10.0).reshape(10, 1, 1, 1) / 255  # rows of 0..9 once scaled as stored
    rng = jax.random.key(1)
    for batch_size in (3, 5, 10):
        metrics = make_evaluate(loss_fn, batch_size)(None, dataset, rng)
        np.testing.assert_allclose(metrics["mean"], float(jnp.mean(dataset)), rtol=1e-6)
    # Batch i draws from fold_in(rng, i): two batches of 5 weigh their keys equally.
    keys = [jax.random.key_data(jax.random.fold_in(rng, i))[-1] for i in (0, 1)]
    metrics = make_evaluate(loss_fn, 5)(None, dataset, rng)
    np.testing.assert_allclose(metrics["key"], np.mean(np.asarray(keys, np.float32)), rtol=1e-6)
