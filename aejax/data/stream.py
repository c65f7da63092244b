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
assembles the global batch. The test set stays in memory.

A user's `.npy` of vectors (a network's activations, which can outgrow memory) streams the same
way from the file itself, memory-mapped (`VectorFile`); other user data is held in memory.
"""

import copy
import functools
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import grain
import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from aejax.data import sources
from aejax.data.builders import parse_records
from aejax.data.dataset import Dataset, held_out_rows, split_fingerprint
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

    def example(self) -> Dataset:
        """What the model is shaped and initialised from: the first row."""
        return self.dataset([0])

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


class VectorFile:
    """The training rows of a `.npy` of float vectors (N, D), memory-mapped and read by row, so a
    file larger than memory trains; the test split is the rows `hold_out` holds out, in memory.

    What the in-memory path learns from the whole array (every value finite, the fingerprint,
    the mean squared norm and total variance that `data.normalize` and FVU need) comes from one
    pass over the file in blocks, made when first asked for.
    """

    BLOCK_BYTES = 1 << 26  # read at a time by that pass
    vectors = True

    def __init__(self, path: str | os.PathLike, test_fraction: float):
        self.path = Path(path)
        self.name = self.path.name
        self.array = np.load(self.path, mmap_mode="r")
        Dataset(np.asarray(self.array[:1]), name=self.name)  # refuses images, ints, no values
        if self.array.ndim != 2:
            raise ValueError(
                f"data.stream reads an .npy of vectors (N, D); {self.name} holds shape "
                f"{self.array.shape}: set --config.data.stream=never to read it into memory"
            )
        self.rows, self.test_rows = held_out_rows(len(self.array), test_fraction, self.name)
        self.scale = np.float32(1)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def image_shape(self) -> tuple[int]:
        return (int(self.array.shape[1]),)

    def read(self, rows) -> tuple[np.ndarray, None]:
        """float32 vectors of training rows `rows`, scaled as `Dataset.scaled` scales them;
        no labels."""
        return self.array[self.rows[np.asarray(rows)]].astype(np.float32) * self.scale, None

    def example(self) -> Dataset:
        """What the model is shaped and initialised from: the training vectors' mean, as one
        row (a sparse autoencoder's pre-encoder bias starts there)."""
        mean = self._pass["mean"] * np.float64(self.scale)
        return Dataset(mean[None].astype(np.float32), name=self.name)

    def test_split(self) -> Dataset:
        """The held-out rows, in memory, scaled alike."""
        test = Dataset(np.asarray(self.array[self.test_rows]), name=f"{self.name}:test")
        return test.scaled(self.scale) if self.scale != 1 else test

    def scaled(self, scale: float) -> "VectorFile":
        """This file read times `scale`."""
        scaled = copy.copy(self)
        scaled.scale = np.float32(self.scale * np.float32(scale))
        return scaled

    @functools.cached_property
    def _pass(self) -> dict:
        """One read of the file: its fingerprint, and the training rows' mean squared norm and
        total variance (float64, blocks combined as Chan, Golub and LeVeque's pairwise update)."""
        digest = hashlib.sha256(self.rows.tobytes())  # which rows train
        n, mean, m2, square = 0, np.zeros(self.array.shape[1]), 0.0, 0.0
        step = max(1, self.BLOCK_BYTES // self.array[0].nbytes)
        for start in range(0, len(self.array), step):
            block = np.asarray(self.array[start : start + step])
            digest.update(np.ascontiguousarray(block).data)
            bad = ~np.isfinite(block)
            if bad.any():
                raise ValueError(
                    f"{self.name}: row {start + np.argwhere(bad)[0][0]} holds a NaN or infinite "
                    "value; drop or repair such rows"
                )
            lo, hi = np.searchsorted(self.rows, [start, start + len(block)])
            x = block[self.rows[lo:hi] - start].astype(np.float64)
            if not len(x):
                continue
            block_mean = x.mean(axis=0)
            delta, total = block_mean - mean, n + len(x)
            m2 += np.sum(np.square(x - block_mean)) + np.sum(np.square(delta)) * n * len(x) / total
            mean += delta * len(x) / total
            square += np.sum(np.square(x))
            n = total
        shape = (len(self), self.array.shape[1])
        return {
            "fingerprint": split_fingerprint(shape, np.float32, False, digest),
            "mean": mean,
            "mean_square": square / n,
            "variance": m2 / n,
        }

    @property
    def mean_square(self) -> float:
        """The training vectors' mean squared norm, as read (scaled)."""
        return float(self._pass["mean_square"] * np.float64(self.scale) ** 2)

    @property
    def variance(self) -> float:
        """The training vectors' total variance (mean squared distance to their mean), as read."""
        return float(self._pass["variance"] * np.float64(self.scale) ** 2)

    def fingerprint(self) -> dict:
        """As `Dataset.fingerprint`, its hash over the file's values and which rows train."""
        return self._pass["fingerprint"]

    def device_bytes(self) -> int:
        return len(self) * self.array[0].size * 4  # as float32


TrainingFile = RecordFile | VectorFile  # a training split read from disk by row


def training_file(data: ml_collections.ConfigDict) -> tuple[TrainingFile, Dataset]:
    """The training split `data` names, read from disk as it trains, and its test split."""
    if data.path:
        file = VectorFile(data.path, data.test_fraction)
        return file, file.test_split()
    return RecordFile(data.name, "train"), sources.from_config(data, "test")


def wanted(config: ml_collections.ConfigDict) -> bool:
    """Whether `config` trains from the stream: always, never, or ("auto") when the training set
    is bigger than `data.device_bytes_budget`. What streams: aejax's own datasets, whose
    array_record files are already on disk, and an `.npy` of vectors (`data.path`)."""
    mode = config.data.stream
    if mode not in MODES:
        raise ValueError(f"unknown data.stream {mode!r}; choose one of {MODES}")
    path, name = config.data.path, config.data.name
    streamable = path.endswith(".npy") if path else name in sources.DATASETS
    if not streamable or config.data.activations:
        if mode == "always":
            raise ValueError(
                "data.stream='always' streams aejax's own datasets "
                f"({', '.join(sources.DATASETS)}) and an .npy of vectors (data.path); other data "
                "is held in memory: set --config.data.stream=auto"
            )
        return False
    if mode == "auto":
        file = VectorFile(path, config.data.test_fraction) if path else RecordFile(name, "train")
    streams = mode == "always" or (
        mode == "auto" and file.device_bytes() > config.data.device_bytes_budget
    )
    if streams:
        fraction = config.data.label_fraction  # None or 1: every row, as it is
        for name, value in (("data.label_fraction", None if fraction == 1 else fraction),
                            ("model.output_bias", config.model.get("output_bias"))):  # fmt: skip
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
        file: TrainingFile,
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
