"""Structural checks of model files, run before any runtime loads them.

A truncated GGUF makes the gguf reader raise a numpy ``ValueError`` and llama.cpp fail with "failed
to load model"; a short ONNX external-data file makes onnxruntime fail deep inside a session; a
safetensors file with a damaged header fails inside transformers. Each check here reads only the
file's own description of itself (GGUF header and tensor table, safetensors JSON header, the ONNX
protobuf's structure and external-data references), compares it with what is on disk and raises
:class:`CorruptFile`: one line naming the file and the problem (truncated at byte N of M, bad
magic, unreadable header), which the CLI prints with exit code 2. No tensor data is read, so a
check costs milliseconds (a few hundred for a large ONNX graph).

The checks are about shape, not content: a flipped byte inside tensor data is invisible to them and
is caught by the sha256 in an export manifest instead (:mod:`edgemed.export.verify`).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

from edgemed.errors import DataError, ModelError

INCOMPLETE = "an incomplete download or copy; fetch, copy or re-export it again"


class CorruptFile(DataError, ModelError):
    """A model file that is not what it claims to be: truncated, bad magic, unreadable header.

    Bad input data (exit code 2) and a model that cannot be loaded, so handlers of either catch it.

    >>> str(CorruptFile("m.gguf", "bad magic b'PK\\\\x03\\\\x04' (not a GGUF file)"))
    "m.gguf: bad magic b'PK\\\\x03\\\\x04' (not a GGUF file)"
    """

    def __init__(self, path: str | os.PathLike, problem: str):
        super().__init__(problem, path=str(path))


class ShortRead(Exception):
    """A file's own header asks for bytes past its end (the walkers turn it into ``truncated``)."""

    def __init__(self, needed: int):
        self.needed = needed


class BadValue(Exception):
    """A header holds a value no writer of that format produces, at ``offset``."""

    def __init__(self, offset: int, message: str):
        self.offset, self.message = offset, message


def truncated(path: str | os.PathLike, size: int, needed: int, where: str) -> CorruptFile:
    """The error for a file that ends before what its own header describes.

    >>> str(truncated("t.gguf", 1000, 5000, "tensor 'w' runs past the end"))
    "t.gguf: truncated at byte 1,000 of 5,000 (tensor 'w' runs past the end): an incomplete download or copy; fetch, copy or re-export it again"
    """
    return CorruptFile(path, f"truncated at byte {size:,} of {needed:,} ({where}): {INCOMPLETE}")


def check_model_file(path: str | os.PathLike) -> None:
    """Check one weight file by its suffix (``.gguf``, ``.safetensors``, ``.onnx``, zip ``.bin``);
    other files pass unchecked.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "x.gguf"; _ = p.write_bytes(b"PK\\x03\\x04" + bytes(60))
    >>> check_model_file(p)
    Traceback (most recent call last):
    ...
    edgemed.integrity.CorruptFile: .../x.gguf: bad magic b'PK\\x03\\x04' (a GGUF file starts with b'GGUF'): not a GGUF file, or its start is damaged
    """
    path = Path(path)
    suffix = path.suffix
    if suffix == ".gguf":
        from edgemed.integrity.gguf_file import check_gguf

        check_gguf(path)
    elif suffix == ".safetensors":
        from edgemed.integrity.safetensors_file import check_safetensors

        check_safetensors(path)
    elif suffix == ".onnx":
        from edgemed.integrity.onnx_file import check_onnx

        check_onnx(path)
    elif suffix in (".bin", ".pt", ".pth") and _looks_like_zip(path):
        _check_zip(path)


def check_model_folder(folder: str | os.PathLike) -> None:
    """Check every weight file of a model folder (HF checkpoint, adapter, ONNX export) and, when
    there is a ``*.safetensors.index.json``, that every shard it lists is there.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "model.safetensors.index.json").write_text('{"weight_map": {"w": "model-00001.safetensors"}}')
    >>> check_model_folder(d)
    Traceback (most recent call last):
    ...
    edgemed.integrity.CorruptFile: .../model-00001.safetensors: missing, but model.safetensors.index.json lists it: an incomplete download or copy; fetch, copy or re-export it again
    """
    folder = Path(folder)
    for index in sorted(folder.glob("*.safetensors.index.json")):
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            shards = sorted(set(weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise CorruptFile(index, f"unreadable shard index ({type(e).__name__}: {e})") from None
        for shard in shards:
            if not isinstance(shard, str) or Path(shard).is_absolute() or ".." in Path(shard).parts:
                raise CorruptFile(index, f"shard {shard!r} is not a file name inside {folder}")
            if not (folder / shard).is_file():
                raise CorruptFile(folder / shard, f"missing, but {index.name} lists it: {INCOMPLETE}")
    for path in sorted(folder.iterdir()):
        if path.is_file():
            check_model_file(path)


def check_artifact(fmt: str, path: str | os.PathLike) -> None:
    """Check a bench/export build: a GGUF file, an ONNX folder (or file), or an HF folder."""
    path = Path(path)
    if not path.exists():
        raise CorruptFile(path, "missing")
    if path.is_dir():
        check_model_folder(path)
    else:
        check_model_file(path)


def _looks_like_zip(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def _check_zip(path: Path) -> None:
    """A torch ``.bin`` (a zip archive): its central directory, at the very end, must be readable."""
    try:
        with zipfile.ZipFile(path) as z:
            z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise CorruptFile(path, f"unreadable zip archive ({e}): {INCOMPLETE}") from None
