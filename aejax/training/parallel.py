"""Data and model parallelism: a mesh of axes "data" and "model", each batch split over "data",
the train state replicated but for the axes a model declares split over "model".

The step is not rewritten for it. Under `jax.jit` a program means the same whatever the shardings
of its inputs, so the step on a mesh computes what it computes on one device: XLA's partitioner
splits the batch gather by the sharded indices (each device gathers its own rows from its replica
of the dataset) and inserts the all-reduce that turns per-device partial gradients into the
global batch mean. Random draws keep their values too, and `jax_threefry_partitionable` (on by
default in the JAX pinned here) lets each device generate only its own shard's bits. Only the
order of floating-point sums changes with the device count.

Model parallelism is the same partitioning again. A model too big for one device declares the
axes of its variables that may be split (`model_parallel_axes`: a sparse autoencoder's latent
axis); with `train.model_parallel` devices along "model", the state is made and kept split
along them (`state_sharding`), and XLA computes each device's share of the latents and inserts
the collectives that a top-k over all latents or a sum over them needs.

Several hosts: `initialize` joins them (`jax.distributed`); the mesh then spans every process's
devices, each process dispatches the same programs, and its devices gather only their rows.
"""

import contextlib
import itertools
import os

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from aejax import compiled

AXIS = "data"  # each batch is split over it
MODEL_AXIS = "model"  # the axes a model declares (`model_parallel_axes`) are split over it
# The environment variables that stand in for the multi-process flags.
ENV = {
    "coordinator_address": "JAX_COORDINATOR_ADDRESS",
    "num_processes": "JAX_NUM_PROCESSES",
    "process_id": "JAX_PROCESS_ID",
}


def initialize(
    coordinator_address: str | None, num_processes: int | None, process_id: int | None
) -> None:
    """Joins a multi-process run, from these settings or their environment variables, if any is set.

    Must run before JAX's first computation. A run with none of them set is one process.
    """
    given = {
        "coordinator_address": coordinator_address,
        "num_processes": num_processes,
        "process_id": process_id,
    }
    settings = {k: v if v is not None else os.environ.get(ENV[k]) for k, v in given.items()}
    if all(v is None for v in settings.values()):
        return
    missing = [f"--{k} (or ${ENV[k]})" for k, v in settings.items() if v is None]
    if missing:
        raise ValueError(
            f"a multi-process run needs all three settings; missing {', '.join(missing)}"
        )
    jax.distributed.initialize(
        settings["coordinator_address"], int(settings["num_processes"]), int(settings["process_id"])
    )


def make_mesh(devices: int | None = None, model_parallel: int = 1) -> Mesh:
    """A (data, model) mesh over the first `devices` local devices of every process (default: all
    of them), `model_parallel` of them along "model" (`lay_out`)."""
    local = jax.local_device_count()
    devices = local if devices is None else devices
    if not 1 <= devices <= local:
        raise ValueError(
            f"--devices={devices}, but each process sees {local} {jax.default_backend()} device(s); "
            "choose 1 to that number (on CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N "
            "makes N devices)"
        )
    by_process = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    chosen = [
        d
        for p in range(jax.process_count())
        for d in [d for d in by_process if d.process_index == p][:devices]
    ]
    return lay_out(chosen, model_parallel)


def lay_out(devices, model_parallel: int) -> Mesh:
    """`devices` (a sequence, or any mesh's array of them) as a (data, model) mesh with
    `model_parallel` along "model": consecutive devices, of one process where they fit, hold
    the shares of one model, whose collectives are then the nearest."""
    devices = np.ravel(np.asarray(devices, dtype=object))
    n = len(devices)
    if not (model_parallel >= 1 and n % model_parallel == 0):
        divisors = ", ".join(str(d) for d in range(1, n + 1) if n % d == 0)
        raise ValueError(
            f"train.model_parallel={model_parallel} does not divide the {n} device{'s' * (n > 1)} "
            f"of the mesh: choose one of {divisors}, or run on a multiple of {model_parallel} "
            "devices (--devices)"
        )
    return Mesh(devices.reshape(-1, model_parallel), (AXIS, MODEL_AXIS))


def describe(mesh: Mesh) -> str:
    """One line for the log: how the batch (and the model) is split."""
    where = f"devices: {mesh.size} {jax.default_backend()} in {jax.process_count()} process(es)"
    if mesh.shape[MODEL_AXIS] == 1:
        return f"{where}, each batch split over them"
    return (
        f"{where}, each batch split over {mesh.shape[AXIS]} groups of {mesh.shape[MODEL_AXIS]}, "
        "within which a sparse autoencoder's latents are split (train.model_parallel)"
    )


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def place(tree, shardings):
    """`tree` (host arrays, or arrays on any device) laid out as `shardings` (one sharding, or a
    tree of them as `state_sharding` gives) says.

    A compiled identity rather than `device_put`: it accepts random keys, and on several
    processes each passes its own identical host value without an equality check.
    """
    return compiled.jit(lambda t: t, out_shardings=shardings)(tree)


def replicate(tree, mesh: Mesh):
    """`tree` as one copy on every device of `mesh`."""
    return place(tree, replicated(mesh))


def state_sharding(state, mesh: Mesh, model):
    """Where each leaf of a train state (parameters, optimiser state, mutable collections) lives on
    `mesh`: split over the "model" axis along the axis `model.model_parallel_axes` gives for its
    name, replicated otherwise. Adam's moments carry their parameter's name and shape, so they are
    split alike; a model that declares nothing is replicated whole. `state` may be abstract
    (`jax.eval_shape`)."""
    axes = getattr(model, "model_parallel_axes", {})
    shares = mesh.shape[MODEL_AXIS]

    def sharding(path, leaf):
        name = getattr(path[-1], "key", None) if path else None
        if shares == 1 or name not in axes:
            return replicated(mesh)
        axis = axes[name]
        if leaf.shape[axis] % shares:
            raise ValueError(
                f"{name} has {leaf.shape[axis]} latents, which do not divide over "
                f"train.model_parallel={shares} devices: choose a model.latents or a "
                "train.model_parallel that divides it"
            )
        spec = [MODEL_AXIS if a == axis else None for a in range(leaf.ndim)]
        return NamedSharding(mesh, P(*spec))

    return jax.tree.map_with_path(sharding, state)


def shard_batch(x: jax.Array, mesh: Mesh, batch_axis: int = 0) -> jax.Array:
    """`x` split along `batch_axis` over the mesh's data axis: each group of devices along the
    model axis holds one slice of the batch."""
    return jax.device_put(x, NamedSharding(mesh, P(*[None] * batch_axis, AXIS)))


def batch_shards(mesh: Mesh) -> int:
    """How many parts a batch is split into: the size of the mesh's data axis."""
    return mesh.shape[AXIS]


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    """Refuses a batch that does not split evenly: devices would otherwise train on unequal parts."""
    n, shares = batch_shards(mesh), mesh.shape[MODEL_AXIS]
    if batch_size % n:
        lower, upper = batch_size - batch_size % n, batch_size - batch_size % n + n
        nearest = f"{lower} or {upper}" if lower else f"{upper}"
        parts = f"{n} devices of the mesh"
        other = f"run on a number of devices that divides {batch_size} (--devices)"
        if shares > 1:
            parts = f"{n} parts of the mesh ({mesh.size} devices / train.model_parallel={shares})"
            other = f"choose --devices and train.model_parallel whose quotient divides {batch_size}"
        raise ValueError(
            f"train.batch_size={batch_size} does not divide over the {parts}; use a multiple of "
            f"{n} ({nearest}), or {other}"
        )


def is_main_process() -> bool:
    """Whether this process writes the run's files and prints: process 0 of a multi-process run."""
    return jax.process_index() == 0


_barrier_ids = itertools.count()  # every process passes the same barriers in the same order


def _wait_for_all_processes(name: str) -> None:
    """A barrier through JAX's coordination service (a no-op for one process). Not a device
    collective: on CPU, Gloo gives a process only 30 s to join its peers' first collective,
    and preparing a dataset can take longer."""
    barrier = ocp.multihost.get_barrier_sync_fn()
    barrier(key=f"aejax/{name}/{next(_barrier_ids)}", timeout_ms=3_600_000)


@contextlib.contextmanager
def main_process_first():
    """Runs the block on process 0, then on the others: a dataset is prepared into a shared
    folder once, and the other processes read it, rather than all writing it at once."""
    if not is_main_process():
        _wait_for_all_processes("main process first")
    yield
    if is_main_process():
        _wait_for_all_processes("main process first")
