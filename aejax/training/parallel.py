"""Data parallelism: one mesh axis "data", each batch split over it, the train state replicated.

The step is not rewritten for it. Under `jax.jit` a program means the same whatever the shardings
of its inputs, so the step on a mesh computes what it computes on one device: XLA's partitioner
splits the batch gather by the sharded indices (each device gathers its own rows from its replica
of the dataset) and inserts the all-reduce that turns per-device partial gradients into the
global batch mean. Random draws keep their values too, and `jax_threefry_partitionable` (on by
default in the JAX pinned here) lets each device generate only its own shard's bits. Only the
order of floating-point sums changes with the device count.

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

AXIS = "data"
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


def make_mesh(devices: int | None = None) -> Mesh:
    """A 1-D mesh over the first `devices` local devices of every process (default: all of them)."""
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
    return Mesh(np.array(chosen), (AXIS,))


def describe(mesh: Mesh) -> str:
    """One line for the log: how the batch is split."""
    return (
        f"devices: {mesh.size} {jax.default_backend()} in {jax.process_count()} process(es), "
        "each batch split over them"
    )


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def replicate(tree, mesh: Mesh):
    """`tree` (host arrays, or arrays on any device) as one copy on every device of `mesh`.

    A compiled identity rather than `device_put`: it accepts random keys, and on several
    processes each passes its own identical host value without an equality check.
    """
    return compiled.jit(lambda t: t, out_shardings=replicated(mesh))(tree)


def shard_batch(x: jax.Array, mesh: Mesh, batch_axis: int = 0) -> jax.Array:
    """`x` split along `batch_axis` over the mesh's devices: each holds one slice of the batch."""
    return jax.device_put(x, NamedSharding(mesh, P(*[None] * batch_axis, AXIS)))


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    """Refuses a batch that does not split evenly: devices would otherwise train on unequal parts."""
    n = mesh.size
    if batch_size % n:
        lower, upper = batch_size - batch_size % n, batch_size - batch_size % n + n
        nearest = f"{lower} or {upper}" if lower else f"{upper}"
        raise ValueError(
            f"train.batch_size={batch_size} does not divide over the {n} devices of the mesh; use a "
            f"multiple of {n} ({nearest}), or run on a number of devices that divides "
            f"{batch_size} (--devices)"
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
