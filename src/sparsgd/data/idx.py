"""The IDX file format of MNIST and Fashion-MNIST (LeCun et al.), parsed with numpy.

    bytes 0-1   0x00 0x00
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64
    byte  3     number of dimensions n
    4 * n bytes the sizes d_1 .. d_n, big-endian int32
    then        d_1 * ... * d_n elements, big-endian, row-major

So ``train-images-idx3-ubyte`` starts ``00 00 08 03  00 00 ea 60  00 00 00 1c  00 00 00 1c``
(uint8, 3 dimensions, 60000 x 28 x 28). The file must hold exactly the announced number of
bytes: a short file is truncated, a long one is not what its header says.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from sparsgd.data.files import DataFileError, read_bytes

__all__ = ["IDX_DTYPES", "parse_idx", "read_idx"]

IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
HEADER_BYTES = 4  # two zero bytes, the type code, the number of dimensions


def parse_idx(data: bytes, path: Path, remedy: str) -> np.ndarray:
    """The array stored in the IDX bytes ``data`` (read from ``path``, named in errors)."""
    if len(data) < HEADER_BYTES:
        raise DataFileError(
            path, f"truncated: {len(data)} bytes, shorter than an IDX header", remedy
        )
    # (1) magic number: 0, 0, type code, number of dimensions
    if data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPES:
        raise DataFileError(
            path,
            f"bad magic number 0x{data[:4].hex()}: not an IDX file (or still compressed?)",
            remedy,
        )
    dtype, ndim = IDX_DTYPES[data[2]], data[3]
    if ndim == 0:
        raise DataFileError(path, "IDX header announces 0 dimensions", remedy)
    # (2) the dimension sizes, big-endian int32
    body = HEADER_BYTES + 4 * ndim
    if len(data) < body:
        raise DataFileError(path, f"truncated inside the header ({len(data)} bytes)", remedy)
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    if min(shape) < 0:
        raise DataFileError(path, f"IDX header announces a negative size in {shape}", remedy)
    # (3) exactly prod(shape) elements must follow
    expected = math.prod(shape) * dtype.itemsize
    if len(data) - body != expected:
        problem = "truncated" if len(data) - body < expected else "longer than its header says"
        raise DataFileError(
            path,
            f"{problem}: header announces shape {shape} ({expected} data bytes), "
            f"file holds {len(data) - body}",
            remedy,
        )
    array = np.frombuffer(data, dtype=dtype, offset=body).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def read_idx(path: Path, remedy: str = "replace it with an intact copy") -> np.ndarray:
    """Read an IDX file, plain or gzip-compressed (``.gz``)."""
    return parse_idx(read_bytes(path, remedy), path, remedy)
