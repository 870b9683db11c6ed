"""The IDX file format (MNIST, Fashion-MNIST), read strictly.

An IDX file is: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B
int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions,
then each dimension as a big-endian uint32, then the values in C order,
big-endian. The official files are gzipped; ``read_idx`` reads either (it
looks at the first bytes, not the name). Every way a file can be wrong gives
an ``IdxFormatError`` that names the file and what was found.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from agentdeck.engine.data.errors import IdxFormatError

_TYPES: dict[int, tuple[str, str]] = {
    0x08: ("u1", "unsigned byte"),
    0x09: ("i1", "signed byte"),
    0x0B: (">i2", "short"),
    0x0C: (">i4", "int"),
    0x0D: (">f4", "float"),
    0x0E: (">f8", "double"),
}
_GZIP_MAGIC = b"\x1f\x8b"

#: File names tried for a split's images / labels, in order (``{p}`` is
#: ``train`` or ``t10k``): the official gzip names, the unzipped names, and
#: the dotted names some mirrors use.
IMAGE_NAMES = ("{p}-images-idx3-ubyte.gz", "{p}-images-idx3-ubyte", "{p}-images.idx3-ubyte")
LABEL_NAMES = ("{p}-labels-idx1-ubyte.gz", "{p}-labels-idx1-ubyte", "{p}-labels.idx1-ubyte")


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file (gzipped or not), in native byte order.

    Checks the magic number, the type code, the dimensions and that the data
    is exactly as long as the header says.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise IdxFormatError(
            f"{path}: {len(raw)} bytes is too short for an IDX header (4 bytes + dimensions)"
        )
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES or not 1 <= raw[3] <= 8:
        magic = int.from_bytes(raw[:4], "big")
        hint = ""
        if raw[:1] in (b"<", b"{") or raw[:5].lower().startswith((b"<!doc", b"<html")):
            hint = " (it looks like text or HTML, perhaps an error page saved in place of the file)"
        raise IdxFormatError(
            f"{path}: bad magic number 0x{magic:08X}{hint}; an IDX file starts with two zero "
            "bytes, a type code (08 uint8, 09 int8, 0B int16, 0C int32, 0D float32, 0E float64) "
            "and the number of dimensions, e.g. 0x00000803 for images, 0x00000801 for labels"
        )
    dtype_code, type_name = _TYPES[raw[2]]
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IdxFormatError(
            f"{path}: truncated header: {ndim} dimensions need {header} bytes, the file has {len(raw)}"
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(dtype_code)
    count = math.prod(dims)
    expected = count * dtype.itemsize
    have = len(raw) - header
    if have < expected:
        per_record = (count // dims[0] if dims[0] else 0) * dtype.itemsize
        whole = have // per_record if per_record else 0
        raise IdxFormatError(
            f"{path}: truncated: the header says {' x '.join(map(str, dims))} {type_name}s "
            f"({expected:,} bytes of data) but only {have:,} bytes follow "
            f"({whole:,} complete records); the file is damaged or cut short, fetch it again"
        )
    if have > expected:
        raise IdxFormatError(
            f"{path}: {have - expected:,} unexpected bytes after the {' x '.join(map(str, dims))} "
            f"{type_name}s the header describes"
        )
    arr = np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(dims)
    # A writable array in native byte order (frombuffer over bytes is read-only).
    return arr.astype(dtype.newbyteorder("="), copy=True)


def _read_bytes(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            head = f.read(2)
            f.seek(0)
            if head != _GZIP_MAGIC:
                return f.read()
            with gzip.GzipFile(fileobj=f) as gz:
                return gz.read()
    except FileNotFoundError:
        raise IdxFormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise IdxFormatError(f"{path}: is a folder, expected an IDX file") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise IdxFormatError(
            f"{path}: the gzip data is damaged ({e}); the file is cut short or corrupt, fetch it again"
        ) from None
    except OSError as e:
        raise IdxFormatError(f"{path}: cannot read: {e.strerror or e}") from None


def find_split(folder: Path, prefix: str) -> tuple[Path | None, Path | None]:
    """The images and labels files of split ``prefix`` (``train``/``t10k``) in ``folder``."""
    return _first(folder, IMAGE_NAMES, prefix), _first(folder, LABEL_NAMES, prefix)


def _first(folder: Path, patterns: tuple[str, ...], prefix: str) -> Path | None:
    for pattern in patterns:
        p = folder / pattern.format(p=prefix)
        if p.is_file():
            return p
    return None


def read_idx_pair(
    images_path: Path, labels_path: Path
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Images flattened to ``uint8 [n, rows*cols]``, labels as ``int64 [n]``, and ``(rows, cols)``.

    Checks that the images are 3-D uint8, the labels 1-D integers, and that
    the two files hold the same number of records.
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise IdxFormatError(
            f"{images_path}: expected uint8 images n x rows x cols, found "
            f"{images.dtype} with shape {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise IdxFormatError(
            f"{labels_path}: expected a 1-D array of integer labels, found "
            f"{labels.dtype} with shape {labels.shape}"
        )
    if images.shape[0] != labels.shape[0]:
        raise IdxFormatError(
            f"{images_path.name} has {images.shape[0]:,} images but {labels_path.name} has "
            f"{labels.shape[0]:,} labels (in {images_path.parent}); they must come from the same split"
        )
    n, rows, cols = images.shape
    return images.reshape(n, rows * cols), labels.astype(np.int64), (rows, cols)
