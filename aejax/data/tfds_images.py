"""TFDS's own image datasets (`cifar10`, `celeb_a`, ...) read without TensorFlow.

A dataset prepared as array_record is read by random access through `builder.as_data_source`,
its images decoded with Pillow. Preparing TFDS's image datasets from their sources encodes
images with TensorFlow, so do that once where TensorFlow is installed:
`tfds build cifar10 --file_format=array_record` (then point `data_dir` at its folder).
"""

import difflib
import os
from collections.abc import Sequence
from unittest import mock

import numpy as np
import tensorflow_datasets as tfds

from aejax.data.dataset import Dataset
from aejax.data.files import square_resize

# Datasets whose images are too large or not square, and the side they are resized to.
DEFAULT_IMAGE_SIZE = {"celeb_a": 64}
READ_BLOCK = 1000  # examples decoded (and resized) per read: celeb_a's full images would be 19 GB


def load_tfds(
    name: str,
    split: str,
    *,
    data_dir: str | os.PathLike | None = None,
    image_size: int | None = None,
    known: tuple[str, ...] = (),
) -> Dataset:
    """The `split` of TFDS dataset `name`: its "image" feature, its "label" when it has one.
    An unknown name is refused naming the nearest of `known` (aejax's datasets) and TFDS's."""
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        names = dict.fromkeys([*known, *tfds.list_builders(with_community_datasets=False)])
        close = difflib.get_close_matches(name, list(names), n=3)
        hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
        raise ValueError(
            f"Unknown dataset {name!r}: neither aejax's ({', '.join(known)}) nor TFDS's; {hint}"
            "Or give your own with data.path (an .npz file or a folder of images)"
        ) from None
    features = builder.info.features
    if "image" not in features:
        raise ValueError(f"TFDS dataset {name!r} has no 'image' feature: {list(features)}")
    image_size = image_size or DEFAULT_IMAGE_SIZE.get(name)
    try:
        builder.download_and_prepare(file_format="array_record")
        source = builder.as_data_source(split)
    except Exception as err:  # TensorFlow missing, offline, prepared as tfrecord: one remedy
        raise RuntimeError(
            f"TFDS dataset {name!r} ({split}) is not prepared as array_record in "
            f"{builder.data_dir}, and preparing it needs TensorFlow and the network. Prepare it "
            f"once where TensorFlow is installed: `tfds build {name} --file_format=array_record "
            f"--data_dir=DIR`, then pass DIR as data_dir (or $AEJAX_DATA_DIR). (Preparing it "
            f"here failed: {type(err).__name__}: {err})"
        ) from None
    images, labels = [], []
    for start in range(0, len(source), READ_BLOCK):
        for example in read_examples(source, range(start, min(start + READ_BLOCK, len(source)))):
            image = np.asarray(example["image"])
            images.append(square_resize(image, image_size) if image_size else image)
            if "label" in example:
                labels.append(example["label"])
    label_feature = features["label"] if "label" in features else None
    num_classes = getattr(label_feature, "num_classes", None)
    return Dataset(
        np.stack(images),
        np.array(labels) if labels else None,
        num_classes if labels else None,
        name=f"{name}:{split}",
    )


def read_examples(source, keys) -> Sequence:
    """The records at `keys` of a TFDS data source in one batched read, about 20x faster than
    one by one."""
    if isinstance(source.data_source, mock.Mock):
        # `tfds.testing.mock_data` (TFDS 4.9.10) sets its mock's `__getitems__` unbound, so that
        # calling it raises TypeError; its `__getitem__` works.
        return [source[key] for key in keys]
    return source.__getitems__(keys)
