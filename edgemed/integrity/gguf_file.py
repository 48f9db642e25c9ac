"""GGUF structure: magic, version, the metadata and tensor tables, and the tensor data's extent.

A GGUF file is a header (magic ``GGUF``, version, tensor and key counts), key/value metadata, a
table of tensors (name, shape, type, offset into the data section), padding to the alignment,
then the tensor data. :func:`check_gguf` walks the header with ``struct`` over a memory map, so
a damaged length or type is reported at its byte offset instead of surfacing as a numpy error
from ``gguf.GGUFReader`` or as "failed to load model" from llama.cpp, then checks that every
tensor's bytes lie inside the file.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from edgemed.integrity import INCOMPLETE, BadValue, CorruptFile, ShortRead, truncated

MAGIC = b"GGUF"
VERSIONS = (2, 3)  # what llama.cpp and gguf-py read
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # GGML_MAX_DIMS
# Counts and lengths beyond these come from damage, not from any real model (vocabularies are ~10^5
# strings, models ~10^4 tensors); below them a value that overruns the file means the file was cut.
MAX_COUNT = 1 << 24
MAX_LENGTH = 1 << 32
# value type id -> struct format of a scalar (8: string, 9: array are handled apart)
SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9


@dataclass(frozen=True)
class GGUFLayout:
    """What the header says: version, counts, where tensor data starts and ends, and the file size."""

    version: int
    n_tensors: int
    n_kv: int
    data_offset: int
    data_end: int
    size: int



class _Cursor:
    def __init__(self, buf, size: int):
        self.buf, self.size, self.pos = buf, size, 0

    def take(self, fmt: str):
        n = struct.calcsize(fmt)
        if self.pos + n > self.size:
            raise ShortRead(self.pos + n)
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += n
        return value

    def skip(self, n: int) -> None:
        if self.pos + n > self.size:
            raise ShortRead(self.pos + n)
        self.pos += n

    def string(self) -> bytes:
        start = self.pos
        n = self.take("<Q")
        if n > MAX_LENGTH:
            raise BadValue(start, f"string length {n:,} is not plausible (damaged)")
        end = self.pos + n
        if end > self.size:
            raise ShortRead(end)
        value = bytes(self.buf[self.pos:end])
        self.pos = end
        return value


def check_gguf(path: str | os.PathLike) -> GGUFLayout:
    """Check a GGUF's header and that its tensor data fits in the file; raise CorruptFile if not.

    >>> import tempfile, numpy as np, gguf
    >>> p = Path(tempfile.mkdtemp()) / "tiny.gguf"
    >>> w = gguf.GGUFWriter(str(p), "llama"); w.add_tensor("w", np.ones((4, 8), np.float32))
    >>> w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    >>> layout = check_gguf(p); (layout.version, layout.n_tensors, layout.data_end == layout.size)
    (3, 1, True)
    >>> _ = p.write_bytes(p.read_bytes()[:-8])
    >>> check_gguf(p)
    Traceback (most recent call last):
    ...
    edgemed.integrity.CorruptFile: .../tiny.gguf: truncated at byte ... of ... (tensor 'w' runs past the end): an incomplete download or copy; fetch, copy or re-export it again
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size == 0:
            raise CorruptFile(path, f"empty file (0 bytes): {INCOMPLETE}")
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _walk(path, buf, size)
    except OSError as e:
        raise CorruptFile(path, f"unreadable ({e.strerror or e})") from None


def _walk(path: Path, buf, size: int) -> GGUFLayout:
    cur = _Cursor(buf, size)
    where = "the file header"
    try:
        magic = bytes(buf[:4])
        if magic != MAGIC:
            if size < 4 and MAGIC.startswith(magic):
                raise ShortRead(4)
            raise CorruptFile(path, f"bad magic {magic!r} (a GGUF file starts with {MAGIC!r}): not a GGUF "
                                    "file, or its start is damaged")
        cur.pos = 4
        version = cur.take("<I")
        if version not in VERSIONS:
            raise CorruptFile(path, f"unsupported GGUF version {version} (llama.cpp reads versions "
                                    f"{' and '.join(map(str, VERSIONS))}): an old or damaged file")
        n_tensors, n_kv = cur.take("<Q"), cur.take("<Q")
        if n_kv > MAX_COUNT or n_tensors > MAX_COUNT:
            raise BadValue(8, f"{n_kv:,} metadata keys and {n_tensors:,} tensors is not plausible (damaged counts)")
        alignment = DEFAULT_ALIGNMENT
        for _ in range(n_kv):
            start = cur.pos
            where = f"the metadata entry at byte {start:,}"
            key = _text(cur.string(), start, "metadata key")
            where = f"metadata '{key}'"
            kind = cur.take("<I")
            value = _value(cur, kind, start, key)
            if key == "general.alignment":
                if kind != 4 or value == 0 or value & (value - 1):
                    raise BadValue(start, f"general.alignment must be a power of two (uint32), got {value!r}")
                alignment = value
        tensors = []
        for i in range(n_tensors):
            start = cur.pos
            where = f"tensor entry {i} at byte {start:,}"
            name = _text(cur.string(), start, "tensor name")
            where = f"the entry of tensor '{name}'"
            n_dims = cur.take("<I")
            if not 1 <= n_dims <= MAX_DIMS:
                raise BadValue(start, f"tensor '{name}' has {n_dims} dimensions (GGUF allows 1 to {MAX_DIMS})")
            dims = [cur.take("<Q") for _ in range(n_dims)]
            tensors.append((name, dims, cur.take("<I"), cur.take("<Q"), start))
        data_offset = -(-cur.pos // alignment) * alignment
    except ShortRead:
        raise CorruptFile(path, f"truncated at byte {size:,}, inside its header ({where} runs past the end "
                                f"of the file): {INCOMPLETE}") from None
    except BadValue as e:
        raise CorruptFile(path, f"unreadable GGUF header at byte {e.offset:,}: {e.message}") from None
    return GGUFLayout(version, n_tensors, n_kv, data_offset,
                      _data_end(path, tensors, data_offset, alignment, size), size)


def _data_end(path: Path, tensors: list, data_offset: int, alignment: int, size: int) -> int:
    """Where the last tensor's bytes end; every tensor's type, shape and offset checked on the way."""
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    end, last = data_offset, None
    for name, dims, kind, offset, start in tensors:
        try:
            qtype = GGMLQuantizationType(kind)
            block, type_size = GGML_QUANT_SIZES[qtype]
        except (ValueError, KeyError):
            raise CorruptFile(path, f"unreadable GGUF header at byte {start:,}: tensor '{name}' has unknown "
                                    f"type {kind}") from None
        if dims[0] % block:
            raise CorruptFile(path, f"unreadable GGUF header at byte {start:,}: tensor '{name}' of type "
                                    f"{qtype.name} has a row of {dims[0]} values, not a multiple of {block}")
        if offset % alignment:
            raise CorruptFile(path, f"unreadable GGUF header at byte {start:,}: tensor '{name}' starts at "
                                    f"data offset {offset:,}, not a multiple of the alignment {alignment}")
        n = 1
        for d in dims:
            n *= d
        stop = data_offset + offset + n * type_size // block
        if stop > end:
            end, last = stop, name
    if end > size:
        raise truncated(path, size, end, f"tensor '{last}' runs past the end")
    return end


def _text(raw: bytes, offset: int, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadValue(offset, f"{what} is not UTF-8 text ({raw[:24]!r}…)") from None


def _value(cur: _Cursor, kind: int, start: int, key: str, depth: int = 0):
    """Read (or skip) one metadata value of type ``kind``; scalars are returned."""
    fmt = SCALARS.get(kind)
    if fmt is not None:
        return cur.take(fmt)
    if kind == STRING:
        cur.string()
        return None
    if kind == ARRAY and depth < 4:
        item = cur.take("<I")
        count = cur.take("<Q")
        item_fmt = SCALARS.get(item)
        if item_fmt is not None:
            cur.skip(count * struct.calcsize(item_fmt))
            return None
        if item not in (STRING, ARRAY):
            raise BadValue(start, f"metadata '{key}': unknown array item type {item}")
        if count > MAX_LENGTH:
            raise BadValue(start, f"metadata '{key}': an array of {count:,} items is not plausible (damaged)")
        if item == STRING:  # vocabularies: ~10^5 strings, so lengths only, no copies
            _skip_strings(cur, count, start, key)
            return None
        for _ in range(count):
            _value(cur, item, start, key, depth + 1)
        return None
    raise BadValue(start, f"metadata '{key}': unknown value type {kind}")


_U64 = struct.Struct("<Q")


def _skip_strings(cur: _Cursor, count: int, start: int, key: str) -> None:
    pos, size, buf, unpack = cur.pos, cur.size, cur.buf, _U64.unpack_from
    for _ in range(count):
        if pos + 8 > size:
            raise ShortRead(pos + 8)
        n = unpack(buf, pos)[0]
        if n > MAX_LENGTH:
            raise BadValue(pos, f"metadata '{key}': string length {n:,} is not plausible (damaged)")
        pos += 8 + n
    if pos > size:
        raise ShortRead(pos)
    cur.pos = pos
