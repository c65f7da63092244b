"""The compiled work of a run: the train step, chunks of steps in one `lax.scan`, and the
evaluation of a dataset; and the clock that keeps their compilation apart from training time.

Randomness is a function of (seed, step), which is why a resumed run continues exactly.
"""

import time

import jax
import jax.numpy as jnp

from aejax import compiled
from aejax.data import device
from aejax.data.dataset import as_float
from aejax.objectives.autoencoding import LossFn
from aejax.training import parallel


def make_train_step(loss_fn: LossFn):
    """The pure step `(state, x, rng) -> (state, metrics)`: one gradient update on batch `x`.

    A state with mutable collections hands them to the loss and keeps what it returns; the one
    update applies every optimiser of `optimizers.make_optimizer`'s partition."""

    def train_step(state, x, rng):
        state_kw = {"collections": state.collections} if state.collections else {}
        grads, aux = jax.grad(loss_fn, has_aux=True)(state.params, x, rng, True, step=state.step, **state_kw)
        metrics, collections = aux if state_kw else (aux, state.collections)
        return state.apply_gradients(grads=grads, collections=collections), metrics

    return train_step


def make_train_chunk(train_step, out_shardings=None, take=device.gather):
    """`train_chunk(state, dataset, inputs_C, rng) -> (state, metrics_C)`, compiled once per C.

    Step s draws its noise from `fold_in(rng, s)` and trains on `take(dataset, inputs_C[s])`:
    by default `inputs_C` are batches of indices into the on-device `dataset` (images, or a
    dict of images and labels); a streamed run passes the batches themselves
    (`stream.StreamedBatches.take`). A chunk of one step compiles no loop at all: XLA:CPU ran
    the conv AE's step 3x slower inside a `lax.scan`, even a fully unrolled one. On a mesh,
    `inputs_C` come sharded over the batch and `out_shardings` (one sharding, or the state's
    and the metrics') keeps the new state where the old one lived and the metrics replicated.
    """

    def body(state, dataset, inputs, rng):
        batch = as_float(take(dataset, inputs))  # uint8 images scaled to [0, 1] here
        return train_step(state, batch, jax.random.fold_in(rng, state.step))

    @compiled.jit(donate_argnums=0, out_shardings=out_shardings)
    def train_chunk(state, dataset, inputs_C, rng):
        if jax.tree.leaves(inputs_C)[0].shape[0] == 1:
            state, metrics = body(state, dataset, jax.tree.map(lambda a: a[0], inputs_C), rng)
            return state, jax.tree.map(lambda m: m[None], metrics)
        return jax.lax.scan(lambda st, inputs: body(st, dataset, inputs, rng), state, inputs_C)

    return train_chunk


class CompileClock:
    """Compiles jitted functions ahead of their first call and sums the seconds spent tracing
    and compiling in `seconds`, so that an epoch's speed counts training alone."""

    def __init__(self):
        self.seconds = 0.0

    def compile(self, jitted, *args):
        start = time.perf_counter()
        executable = jitted.lower(*args).compile()
        self.seconds += time.perf_counter() - start
        return executable

    def per_chunk_length(self, train_chunk):
        """`train_chunk` compiled once for each chunk length it is called with."""
        executables = {}

        def call(state, dataset, inputs_C, rng):
            length = jax.tree.leaves(inputs_C)[0].shape[0]
            if length not in executables:
                executables[length] = self.compile(train_chunk, state, dataset, inputs_C, rng)
            return executables[length](state, dataset, inputs_C, rng)

        return call


def make_evaluate(loss_fn: LossFn, batch_size: int, mesh: jax.sharding.Mesh | None = None):
    """`evaluate(params, dataset, rng) -> metrics`: dataset means, one host read for all batches.

    On a mesh, each batch that divides over its data axis is split over it.
    """
    eval_batch = compiled.jit(lambda params, x, rng: loss_fn(params, as_float(x), rng, False)[1])

    def evaluate(params, dataset, rng):
        n = jax.tree.leaves(dataset)[0].shape[0]
        sums = None
        for i, start in enumerate(range(0, n, batch_size)):
            rows = slice(start, start + batch_size)
            batch = jax.tree.map(lambda a, rows=rows: a[rows], dataset)
            size = min(batch_size, n - start)
            if mesh is not None and size % parallel.batch_shards(mesh) == 0:
                batch = parallel.shard_batch(batch, mesh)
            means = eval_batch(params, batch, jax.random.fold_in(rng, i))
            weighted = {k: v * size for k, v in means.items()}
            sums = weighted if sums is None else jax.tree.map(jnp.add, sums, weighted)
        return {k: float(v) / n for k, v in jax.device_get(sums).items()}

    return evaluate
