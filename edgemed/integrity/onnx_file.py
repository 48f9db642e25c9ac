"""ONNX structure: the protobuf is whole, its graph is complete, its external data is all there.

An ONNX model is a protobuf ``ModelProto``; large weights may live in separate files that tensors
point to (``external_data``: location, offset, length). :func:`check_onnx` walks the protobuf's
wire format over a memory map (tensor bytes are skipped, never copied: a 540 MB model is checked
in well under a second and without its size in RAM), and checks that:

- every length-delimited field fits in the file (a cut file is "truncated at byte N of M");
- the model has a graph and an opset; every node input and graph output is defined by something
  (a file cut exactly between two nodes loses nodes and fails here);
- every external-data file is inside the model's folder, exists, and is long enough for the
  offsets and lengths the tensors reference.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path

from edgemed.integrity import INCOMPLETE, BadValue, CorruptFile, ShortRead, truncated

EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
# TensorProto.DataType -> bits per element (strings have no fixed size)
DTYPE_BITS = {1: 32, 2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 7: 64, 9: 8, 10: 16, 11: 64, 12: 32, 13: 64, 14: 64,
              15: 128, 16: 16, 17: 8, 18: 8, 19: 8, 20: 8, 21: 4, 22: 4, 23: 4}



@dataclass
class _Tensor:
    name: str = ""
    dtype: int = 0
    dims: list[int] = field(default_factory=list)
    location: int = 0
    external: dict[str, str] = field(default_factory=dict)


@dataclass
class _Graph:
    defined: set[bytes] = field(default_factory=set)
    needed: list[tuple[bytes, str]] = field(default_factory=list)  # (name, who needs it)
    tensors: list[_Tensor] = field(default_factory=list)


def check_onnx(path: str | os.PathLike) -> None:
    """Check an ``.onnx`` file (or every ``.onnx`` in a folder) and its external data.

    >>> import tempfile, numpy as np, onnx
    >>> from onnx import helper, numpy_helper
    >>> d = Path(tempfile.mkdtemp())
    >>> w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    >>> g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
    ...     [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
    ...     [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])], [w])
    >>> onnx.save(helper.make_model(g), str(d / "m.onnx"), save_as_external_data=True,
    ...           location="m.onnx_data", size_threshold=0)
    >>> check_onnx(d)
    >>> _ = (d / "m.onnx_data").write_bytes(b"12")
    >>> check_onnx(d)
    Traceback (most recent call last):
    ...
    edgemed.integrity.CorruptFile: .../m.onnx_data: truncated at byte 2 of 64 (tensor 'w' of m.onnx runs past the end): an incomplete download or copy; fetch, copy or re-export it again
    """
    path = Path(path)
    files = sorted(path.rglob("*.onnx")) if path.is_dir() else [path]
    if path.is_dir() and not files:
        raise CorruptFile(path, "no .onnx file in this ONNX build folder")
    for f in files:
        _check_file(f)


def _check_file(path: Path) -> None:
    try:
        size = path.stat().st_size
        if size == 0:
            raise CorruptFile(path, f"empty file (0 bytes): {INCOMPLETE}")
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            graph = _model(path, buf, size)
    except OSError as e:
        raise CorruptFile(path, f"unreadable ({e.strerror or e})") from None
    for name, who in graph.needed:
        if name not in graph.defined:
            raise CorruptFile(path, f"incomplete ONNX graph: {who} needs '{name.decode(errors='replace')}', which "
                                    f"nothing in the file defines (a cut or damaged file): {INCOMPLETE}")
    for t in graph.tensors:
        if t.location == EXTERNAL:
            _check_external(path, t)


def _model(path: Path, buf, size: int) -> _Graph:
    graph, opsets, n_graphs = _Graph(), 0, 0
    try:
        for num, wire, value in _fields(buf, 0, size, top=True):
            if num == 7 and wire == 2:
                n_graphs += 1
                _graph(buf, *value, graph, top=True)
            elif num == 8 and wire == 2:
                opsets += 1
    except ShortRead as e:
        raise truncated(path, size, e.needed, "a protobuf field runs past the end") from None
    except BadValue as e:
        raise CorruptFile(path, f"unreadable ONNX protobuf at byte {e.offset:,}: {e.message} (not an ONNX "
                                "model, or a damaged one)") from None
    if n_graphs != 1 or not opsets:
        what = "graph" if n_graphs != 1 else "opset_import"
        raise CorruptFile(path, f"incomplete ONNX model: no {what} (a cut or damaged file, or not an ONNX "
                                f"model): {INCOMPLETE}")
    return graph


def _graph(buf, start: int, end: int, out: _Graph, top: bool) -> None:
    """Collect names (top-level graph only: subgraphs may use outer names) and tensors."""
    for num, wire, value in _fields(buf, start, end):
        if wire != 2:
            continue
        if num == 1:  # node
            _node(buf, *value, out, top)
        elif num == 5:  # initializer
            t = _tensor(buf, *value)
            out.tensors.append(t)
            if top:
                out.defined.add(t.name.encode())
        elif num == 15:  # sparse_initializer: values (1), indices (2)
            for n2, w2, v2 in _fields(buf, *value):
                if n2 in (1, 2) and w2 == 2:
                    t = _tensor(buf, *v2)
                    out.tensors.append(t)
                    if top and n2 == 1:
                        out.defined.add(t.name.encode())
        elif num in (11, 12) and top:  # input / output ValueInfoProto: name is field 1
            name = next((bytes(buf[v[0]:v[1]]) for n2, w2, v in _fields(buf, *value) if n2 == 1 and w2 == 2), b"")
            if num == 11:
                out.defined.add(name)
            else:
                out.needed.append((name, "graph output"))


def _node(buf, start: int, end: int, out: _Graph, top: bool) -> None:
    inputs, name, op = [], "", ""
    for num, wire, value in _fields(buf, start, end):
        if wire != 2:
            continue
        if num == 1:
            inputs.append(bytes(buf[value[0]:value[1]]))
        elif num == 2 and top:
            out.defined.add(bytes(buf[value[0]:value[1]]))
        elif num == 3:
            name = bytes(buf[value[0]:value[1]]).decode(errors="replace")
        elif num == 4:
            op = bytes(buf[value[0]:value[1]]).decode(errors="replace")
        elif num == 5:
            _attribute(buf, *value, out)
    if top:
        who = f"node '{name}' ({op})" if name else f"a {op} node"
        out.needed += [(i, who) for i in inputs if i]


def _attribute(buf, start: int, end: int, out: _Graph) -> None:
    for num, wire, value in _fields(buf, start, end):
        if wire != 2:
            continue
        if num in (5, 10):  # t, tensors
            out.tensors.append(_tensor(buf, *value))
        elif num in (6, 11):  # g, graphs: their tensors may be external too
            _graph(buf, *value, out, top=False)


def _tensor(buf, start: int, end: int) -> _Tensor:
    t = _Tensor()
    for num, wire, value in _fields(buf, start, end):
        if num == 1 and wire == 0:
            t.dims.append(value)
        elif num == 1 and wire == 2:  # packed dims
            pos = value[0]
            while pos < value[1]:
                try:
                    d, pos = _varint(buf, pos, value[1])
                except ShortRead:
                    raise BadValue(pos, "packed dims run past the end of their tensor") from None
                t.dims.append(d)
        elif num == 2 and wire == 0:
            t.dtype = value
        elif num == 8 and wire == 2:
            t.name = bytes(buf[value[0]:value[1]]).decode(errors="replace")
        elif num == 13 and wire == 2:
            kv = {n2: bytes(buf[v[0]:v[1]]).decode(errors="replace") for n2, w2, v in _fields(buf, *value) if w2 == 2}
            t.external[kv.get(1, "")] = kv.get(2, "")
        elif num == 14 and wire == 0:
            t.location = value
    return t


def _check_external(model: Path, t: _Tensor) -> None:
    where = f"tensor '{t.name}' of {model.name}"
    location = t.external.get("location", "")
    rel = Path(location)
    if not location or rel.is_absolute() or ".." in rel.parts:
        raise CorruptFile(model, f"{where} points to external data {location!r}, outside the model's folder")
    data = model.parent / rel
    try:
        offset = int(t.external.get("offset", "0") or 0)
        length = t.external.get("length")
        length = int(length) if length else _nbytes(t)
    except ValueError:
        raise CorruptFile(model, f"{where}: unreadable external-data offset/length {t.external}") from None
    if not data.is_file():
        raise CorruptFile(data, f"missing, but {where} is stored there: {INCOMPLETE}")
    size = data.stat().st_size
    if length is not None and offset + length > size:
        raise truncated(data, size, offset + length, f"{where} runs past the end")


def _nbytes(t: _Tensor) -> int | None:
    bits = DTYPE_BITS.get(t.dtype)
    if bits is None:
        return None
    n = 1
    for d in t.dims:
        n *= d
    return (n * bits + 7) // 8


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= end:
            raise ShortRead(pos + 1)
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise BadValue(pos, "a varint longer than 10 bytes")


def _fields(buf, start: int, end: int, top: bool = False):
    """Yield ``(field number, wire type, value)``; a length-delimited value is ``(begin, end)``.

    Only the outermost message can be cut by the end of the file; a nested field that overruns its
    parent is damage, not truncation.
    """
    pos = start
    while pos < end:
        at = pos
        try:
            tag, pos = _varint(buf, pos, end)
            wire, num = tag & 7, tag >> 3
            if num == 0:
                raise BadValue(at, "field number 0")
            if wire == 0:
                value, pos = _varint(buf, pos, end)
            elif wire == 1 or wire == 5:
                value, pos = None, pos + (8 if wire == 1 else 4)
            elif wire == 2:
                n, pos = _varint(buf, pos, end)
                value = (pos, pos + n)
                pos += n
            else:
                raise BadValue(at, f"invalid wire type {wire}")
            if pos > end:
                raise ShortRead(pos)
        except ShortRead as e:
            if top:
                raise
            raise BadValue(at, f"a field runs past the end of its message (to byte {e.needed:,})") from None
        yield num, wire, value
