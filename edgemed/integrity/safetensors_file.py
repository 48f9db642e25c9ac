"""safetensors structure: 8-byte header length, JSON header, tensor offsets against the file size.

A safetensors file is ``u64 N`` (little-endian), ``N`` bytes of JSON mapping each tensor name to
``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets into the data that follows), then the
data. :func:`check_safetensors` reads only the header, so it costs the same for 1 MB and 10 GB.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from edgemed.integrity import INCOMPLETE, CorruptFile, truncated

MAX_HEADER = 100 << 20  # the safetensors library's own limit
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "I16": 2, "U16": 2,
               "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8, "C64": 8}


def check_safetensors(path: str | os.PathLike) -> dict:
    """The parsed header (``__metadata__`` dropped) of a complete safetensors file, else CorruptFile.

    >>> import tempfile, numpy as np
    >>> from safetensors.numpy import save_file
    >>> p = Path(tempfile.mkdtemp()) / "model.safetensors"
    >>> save_file({"w": np.zeros((4, 3), np.float32)}, p)
    >>> check_safetensors(p)["w"]["shape"]
    [4, 3]
    >>> _ = p.write_bytes(p.read_bytes()[:-10])
    >>> check_safetensors(p)
    Traceback (most recent call last):
    ...
    edgemed.integrity.CorruptFile: .../model.safetensors: truncated at byte 110 of 120 (tensor 'w' runs past the end): an incomplete download or copy; fetch, copy or re-export it again
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise truncated(path, size, 8, "the 8-byte header length is cut")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER:
                raise CorruptFile(path, f"unreadable safetensors header: its length field says {n:,} bytes "
                                        "(not a safetensors file, or its start is damaged)")
            if 8 + n > size:
                raise truncated(path, size, 8 + n, "the JSON header runs past the end")
            raw = f.read(n)
    except OSError as e:
        raise CorruptFile(path, f"unreadable ({e.strerror or e})") from None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as e:
        raise CorruptFile(path, f"unreadable safetensors header (not JSON: {e})") from None
    if not isinstance(header, dict):
        raise CorruptFile(path, f"unreadable safetensors header (a JSON {type(header).__name__}, not an object)")
    header.pop("__metadata__", None)
    end, last = 0, None
    for name, info in header.items():
        begin, stop = _offsets(path, name, info)
        if stop > end:
            end, last = stop, name
    expected = 8 + n + end
    if expected > size:
        raise truncated(path, size, expected, f"tensor '{last}' runs past the end")
    if expected < size:
        raise CorruptFile(path, f"{size - expected:,} bytes after the last tensor (the header says the file "
                                f"ends at byte {expected:,} of {size:,}): damaged or not written by safetensors; "
                                f"{INCOMPLETE}")
    return header


def _offsets(path: Path, name: str, info) -> tuple[int, int]:
    """``(begin, end)`` of one tensor, checked against its dtype and shape."""
    bad = f"unreadable safetensors header: tensor '{name}'"
    if not isinstance(info, dict):
        raise CorruptFile(path, f"{bad} is described by a {type(info).__name__}, not an object")
    offsets, shape, dtype = info.get("data_offsets"), info.get("shape"), info.get("dtype")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in offsets)
            or offsets[0] > offsets[1]):
        raise CorruptFile(path, f"{bad} has data_offsets {offsets!r} (want [begin, end], 0 <= begin <= end)")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise CorruptFile(path, f"{bad} has shape {shape!r}")
    if not isinstance(dtype, str):
        raise CorruptFile(path, f"{bad} has dtype {dtype!r}")
    itemsize = DTYPE_BYTES.get(dtype)
    if itemsize is not None:
        numel = 1
        for d in shape:
            numel *= d
        if offsets[1] - offsets[0] != numel * itemsize:
            raise CorruptFile(path, f"{bad} spans {offsets[1] - offsets[0]:,} bytes but {dtype} {shape} needs "
                                    f"{numel * itemsize:,}")
    return offsets[0], offsets[1]
