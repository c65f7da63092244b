"""Reader for IDX files, the format of MNIST and Fashion-MNIST.

The header is checked against the payload, so a corrupt or truncated file raises a `ValueError`
naming the file and the fault instead of yielding a wrongly shaped array.
"""

import gzip
import os
import zlib

import numpy as np

# IDX type codes (third magic byte) -> big-endian numpy dtypes.
_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Returns the array stored in the IDX file at `path`, gzipped or raw, in native byte order."""
    return parse_idx(read_bytes(path), path)


def parse_idx(raw: bytes, path: str | os.PathLike) -> np.ndarray:
    """Returns the array held by `raw`, the uncompressed bytes of the IDX file at `path`."""
    if len(raw) < 4:
        raise ValueError(f"{path}: truncated IDX file, {len(raw)} bytes is shorter than the header")
    zeros, code, ndim = raw[:2], raw[2], raw[3]
    if zeros != b"\0\0" or code not in _DTYPES or ndim == 0:
        raise ValueError(
            f"{path}: bad IDX magic number 0x{raw[:4].hex()}; expected two zero bytes, a type code "
            f"in {{{', '.join(f'0x{c:02x}' for c in _DTYPES)}}} and at least one dimension"
        )
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise ValueError(
            f"{path}: truncated IDX header, {ndim} dimensions need {header_size} bytes"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = _DTYPES[code]
    expected = int(np.prod(shape)) * dtype.itemsize
    found = len(raw) - header_size
    if found != expected:
        fault = "truncated IDX file" if found < expected else "IDX file with trailing bytes"
        raise ValueError(
            f"{path}: {fault}: the header says shape {shape} of {dtype.name}, "
            f"{expected} data bytes, but {found} data bytes follow it"
        )
    data = np.frombuffer(raw, dtype, offset=header_size).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def read_bytes(path: str | os.PathLike) -> bytes:
    """Returns the file's bytes, decompressed when it starts with the gzip magic number: the same
    content whether a file is stored raw or gzipped, and however it was compressed."""
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as err:
        raise ValueError(f"{path}: corrupt gzip stream ({err})") from err
