"""The IDX reader: every type code read in native byte order, raw or gzipped alike, and a
damaged file (bad magic number, cut short, trailing bytes, broken gzip) named with its fault."""

import gzip
import os

import numpy as np
import pytest
from conftest import write_idx

from aejax.data.builders import IDX_FILES
from aejax.data.idx import parse_idx, read_bytes, read_idx

DEBIAN_FASHION = "/usr/share/datasets/fashion-mnist"
NO_DEBIAN_FASHION = "needs Debian's Fashion-MNIST: sudo apt-get install dataset-fashion-mnist"


def test_read_idx_of_debian_fashion_mnist():
    if not os.path.isdir(DEBIAN_FASHION):
        pytest.skip(NO_DEBIAN_FASHION)
    for split, n in [("train", 60000), ("test", 10000)]:
        images_name, labels_name = IDX_FILES[split]
        images = read_idx(f"{DEBIAN_FASHION}/{images_name}.gz")
        labels = read_idx(f"{DEBIAN_FASHION}/{labels_name}.gz")
        assert images.shape == (n, 28, 28) and images.dtype == np.uint8
        assert np.bincount(labels).tolist() == [n // 10] * 10


def test_a_file_reads_the_same_raw_or_gzipped(tmp_path):
    """Debian's gzipped Fashion-MNIST test labels, and the same bytes stored raw and gzipped
    again (another compressor's stream): one array, one content."""
    if not os.path.isdir(DEBIAN_FASHION):
        pytest.skip(NO_DEBIAN_FASHION)
    original = f"{DEBIAN_FASHION}/t10k-labels-idx1-ubyte.gz"
    raw = read_bytes(original)
    assert raw[:4] == b"\0\0\x08\x01" and len(raw) == 8 + 10000
    (tmp_path / "labels").write_bytes(raw)
    (tmp_path / "labels.gz").write_bytes(gzip.compress(raw, compresslevel=1))
    want = read_idx(original)
    for path in (tmp_path / "labels", tmp_path / "labels.gz"):
        assert read_bytes(path) == raw
        np.testing.assert_array_equal(read_idx(path), want)


# The tests below write small synthetic files on purpose: they check how the parser reads each
# type code, which the real datasets (unsigned bytes only) do not use, and how it fails.


@pytest.mark.parametrize("dtype", [">u1", ">i1", ">i2", ">i4", ">f4", ">f8"])
def test_parse_idx_reads_every_type_code_in_native_byte_order(dtype):
    code = {">u1": 0x08, ">i1": 0x09, ">i2": 0x0B, ">i4": 0x0C, ">f4": 0x0D, ">f8": 0x0E}[dtype]
    array = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
    raw = bytes([0, 0, code, 3]) + np.asarray(array.shape, ">u4").tobytes() + array.tobytes()
    parsed = parse_idx(raw, "mem")
    assert parsed.dtype.isnative and parsed.dtype.kind == np.dtype(dtype).kind
    np.testing.assert_array_equal(parsed, array)


@pytest.mark.parametrize("name", ["raw", "file.gz"])
def test_read_idx_round_trip(tmp_path, name):
    array = np.arange(-6, 18, dtype=np.int32).reshape(2, 3, 4)  # big-endian ints on disk
    write_idx(tmp_path / name, array)
    assert np.array_equal(read_idx(tmp_path / name), array)


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
        (4 * 28 * 28 + 14, "truncated IDX file, 2 bytes is shorter than the header"),
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
