"""Training data streamed from disk (`data.stream`), for a training set too big for the device.

Grain over array_record: Grain is the JAX ecosystem's input pipeline, and the TFDS builders
already write array_record, which it reads by random access, so no second copy of the data is
made; its iterator state is a small JSON that Orbax saves in the train state's checkpoint.

The stream reads the rows the in-memory path gathers, in the same order: epoch e's batches are
`device.epoch_batches(fold_in(shuffle_rng, e))`, drawn as there and fetched to the host once an
epoch. Element s of the pipeline is step s's batch, so the iterator's position is the step
itself; it is saved with the train state all the same and checked against it on restore. Background
threads (Grain's `ReadOptions`) read and parse a chunk ahead while the device trains. Each
process reads only its own rows of every batch and `jax.make_array_from_process_local_data`
assembles the global batch. The test set stays in memory; so does a user's numpy array, for
which an array_record writer is still to come.
"""

import functools
import hashlib
import os
from collections.abc import Callable

import grain
import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from aejax.data import sources
from aejax.data.builders import parse_records
from aejax.data.dataset import Dataset, split_fingerprint
from aejax.training import parallel

MODES = ("auto", "never", "always")


class RecordFile:
    """One split of a prepared aejax dataset, read by row from its array_record files."""

    def __init__(self, name: str, split: str):
        self.name = f"{name}:{split}"
        self.files = [os.fspath(f) for f in sources.prepared(name).info.splits[split].filepaths]
        self.source = grain.sources.ArrayRecordDataSource(self.files)  # files in row order

    def __len__(self) -> int:
        return len(self.source)

    def read(self, rows) -> tuple[np.ndarray, np.ndarray]:
        """uint8 images and int32 labels of `rows`, in one batched read: stored as the in-memory
        path stores them, so the step scales both alike."""
        images, labels = parse_records(self.source.__getitems__([int(r) for r in rows]))
        return images, labels.astype(np.int32)

    def dataset(self, rows) -> Dataset:
        """`rows` as a checked `Dataset`."""
        return Dataset(*self.read(rows), name=self.name)

    def fingerprint(self) -> dict:
        """As `Dataset.fingerprint`, its hash over the record files' bytes: read once, not
        decoded."""
        digest = hashlib.sha256()
        for path in self.files:
            with open(path, "rb") as f:
                while block := f.read(1 << 24):
                    digest.update(block)
        image, _ = self.read([0])
        return split_fingerprint((len(self), *image.shape[1:]), image.dtype, True, digest)

    def device_bytes(self) -> int:
        """What the split would take on the device: rows times one row's images and label."""
        image, label = self.read([0])
        return len(self) * (image.nbytes + label.nbytes)


def wanted(config: ml_collections.ConfigDict) -> bool:
    """Whether `config` trains from the stream: always, never, or ("auto") when the training set
    is bigger than `data.device_bytes_budget`. Only aejax's own datasets stream so far: their
    array_record files are already on disk."""
    mode = config.data.stream
    if mode not in MODES:
        raise ValueError(f"unknown data.stream {mode!r}; choose one of {MODES}")
    streamable = not config.data.path and config.data.name in sources.DATASETS
    if not streamable:
        if mode == "always":
            raise ValueError(
                f"data.stream='always' streams aejax's own datasets ({', '.join(sources.DATASETS)}); "
                "other data is held in memory: set --config.data.stream=auto"
            )
        return False
    streams = mode == "always" or (
        mode == "auto"
        and RecordFile(config.data.name, "train").device_bytes() > config.data.device_bytes_budget
    )
    if streams:
        fraction = config.data.label_fraction  # None or 1: every row, as it is
        for name, value in (("data.label_fraction", None if fraction == 1 else fraction),
                            ("model.output_bias", config.model.output_bias)):  # fmt: skip
            if value is not None:
                raise ValueError(
                    f"{name}={value!r} needs the whole training set in memory, but "
                    f"data.stream={mode!r} streams it; set --config.data.stream=never"
                )
    return streams


def process_rows(mesh: Mesh, batch_size: int) -> slice:
    """The rows of every global batch that this process's devices hold."""
    sharding = NamedSharding(mesh, P(parallel.AXIS))
    spans = [
        index[0].indices(batch_size)[:2]
        for index in sharding.addressable_devices_indices_map((batch_size,)).values()
    ]
    return slice(min(s for s, _ in spans), max(e for _, e in spans))


class StreamedBatches:
    """A chunk's batches read from disk: what the compiled chunk trains on, step after step.

    The training loop's other batch source is `device.DeviceBatches`; both give `chunk(epoch,
    begin, end)` and `checkpoint_items`, and the chunk takes its batch with `take`.
    """

    dataset = None  # nothing lives on the device between chunks

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        mesh: Mesh,
        file: RecordFile,
        epoch_order: Callable[[int], jax.Array],
        structure: Callable,
    ):
        """`epoch_order(e)` gives epoch e's row indices as [steps, batch]; `structure(images,
        labels)` what the step takes (`device.as_dataset`)."""
        self.file, self.structure = file, structure
        self.batch_size = config.train.batch_size
        self.steps_per_epoch = len(file) // self.batch_size
        self.rows = process_rows(mesh, self.batch_size)
        self._epoch_order = functools.lru_cache(maxsize=2)(  # the current epoch and the next
            lambda epoch: np.asarray(jax.device_get(epoch_order(epoch)))[:, self.rows]
        )
        self._sharding = NamedSharding(mesh, P(None, parallel.AXIS))  # [steps, batch, ...]
        steps = grain.MapDataset.range(config.train.epochs * self.steps_per_epoch)
        options = grain.ReadOptions(
            num_threads=config.data.read_threads, prefetch_buffer_size=config.train.chunk
        )
        self.iterator = iter(steps.map(self._read_step).to_iter_dataset(options))

    def _read_step(self, step: int):
        """This process's rows of step `step`'s batch."""
        epoch, i = divmod(step, self.steps_per_epoch)
        return self.structure(*self.file.read(self._epoch_order(epoch)[i]))

    @staticmethod
    def take(dataset, batch):
        """The step's batch is the one streamed in."""
        del dataset
        return batch

    def position(self) -> int:
        """The next step the pipeline will give."""
        return self.iterator.get_state()["next_index"]

    def chunk(self, epoch: int, begin: int, end: int):
        """Steps `begin` to `end` of `epoch`, stacked: [steps, batch, ...], split over the mesh."""
        first = epoch * self.steps_per_epoch + begin
        if self.position() != first:
            raise RuntimeError(f"the stream is at step {self.position()}, the loop at {first}")
        steps = [next(self.iterator) for _ in range(end - begin)]
        local = jax.tree.map(lambda *b: np.stack(b), *steps)
        return jax.tree.map(
            lambda a: jax.make_array_from_process_local_data(
                self._sharding, a, (end - begin, self.batch_size, *a.shape[2:])
            ),
            local,
        )

    def checkpoint_items(self, restoring: bool) -> dict:
        """The pipeline's state: saved in, and restored from, the train state's checkpoint."""
        args = grain.checkpoint.CheckpointRestore if restoring else grain.checkpoint.CheckpointSave
        return {"pipeline": args(self.iterator)}

    def check_restored(self, step: int) -> None:
        if self.position() != step:
            raise ValueError(
                f"the checkpoint at step {step} holds a data pipeline at step {self.position()}: "
                "it was not written by this config; start a new --workdir"
            )

    def close(self) -> None:
        self.iterator.close()
