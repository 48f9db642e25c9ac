"""A bench bundle: the builds, their sha256, the prompts and the bench settings, in one folder for a device.

``edgemed bench pack`` writes it (``edgemed.bench.device.pack``), the user copies it to the device, where
``edgemed bench device`` reads it (``edgemed.bench.device.run``) with the slim install: nothing here
imports torch, transformers or the judges. Layout::

    BUNDLE/bundle.json        what is below, with every file's size and sha256 (this module)
    BUNDLE/prompts.jsonl      the heart prompts with their rubrics (graded back on the host)
    BUNDLE/builds/<dir>/...   one folder per build: a GGUF file, or an ONNX folder's files

``bundle_id`` hashes everything a device result depends on (each build's sha256, the prompts'
sha256, the quality and latency settings), so a results folder written from one bundle is
recognised, and one from another bundle is refused instead of mixed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgemed.bench.layout import BUNDLE
from edgemed.bench.targets import Target
from edgemed.errors import DataError
from edgemed.io import sha256_file

SCHEMA_VERSION = 1
KIND = "edgemed-bench-bundle"
TARGET_FIELDS = ("label", "group", "name", "format", "quant", "bytes", "weight_bytes", "sha256", "n_params",
                 "status", "parity", "runtime")


class BundleMismatch(DataError):
    """A bundle file whose size or sha256 is not what ``bundle.json`` recorded: a cut or damaged copy."""


def bundle_id(settings: dict[str, Any], prompts_sha256: str, builds: list[dict[str, Any]]) -> str:
    """Hash of what every device result depends on; the judge is left out (grading is the host's choice).

    >>> b = [{"label": "x/gguf-q8_0", "format": "gguf", "sha256": "ab"}]
    >>> s = {"quality": {"max_new_tokens": 8}, "latency": {"n_gen": 4}, "device": "auto", "judge": {"backend": "proxy"}}
    >>> bundle_id(s, "cd", b) == bundle_id({**s, "judge": {"backend": "openai"}}, "cd", b)
    True
    >>> bundle_id(s, "cd", b) == bundle_id({**s, "latency": {"n_gen": 8}}, "cd", b)
    False
    """
    blob = json.dumps({"quality": settings.get("quality"), "latency": settings.get("latency"),
                       "device": settings.get("device"), "prompts": prompts_sha256,
                       "builds": [[b["label"], b["format"], b["sha256"]] for b in builds]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Bundle:
    """A parsed ``bundle.json`` (``root`` is the bundle folder)."""

    root: Path
    data: dict[str, Any]

    @property
    def id(self) -> str:
        return self.data["bundle_id"]

    @property
    def settings(self) -> dict[str, Any]:
        return self.data["settings"]

    @property
    def builds(self) -> list[dict[str, Any]]:
        return self.data["builds"]

    def targets(self) -> list[Target]:
        """The builds as bench targets, their paths inside this bundle folder."""
        return [build_target(b, self.root) for b in self.builds]


def build_target(build: dict[str, Any], root: Path) -> Target:
    """A bundle build → the Target the bench runners and logs use (path made absolute under ``root``).

    >>> b = {"label": "x/gguf-q8_0", "group": "x", "name": "gguf-q8_0", "format": "gguf", "quant": "q8_0",
    ...      "path": "builds/x__gguf-q8_0/m.gguf", "bytes": 3, "weight_bytes": 3, "sha256": "ab", "n_params": 1,
    ...      "status": "passed", "parity": None, "runtime": {}, "files": []}
    >>> build_target(b, Path("/b")).path
    '/b/builds/x__gguf-q8_0/m.gguf'
    """
    return Target(path=str(root / build["path"]), **{k: build[k] for k in TARGET_FIELDS})


def safe_relative(value: Any, where: str, field: str) -> str:
    """A path from bundle.json, refused unless it is relative and stays inside the bundle.

    >>> safe_relative("../etc/passwd", "b/bundle.json", "builds[0].path")
    Traceback (most recent call last):
    ...
    edgemed.errors.DataError: b/bundle.json: builds[0].path: '../etc/passwd' points outside the bundle; refused
    """
    if (not isinstance(value, str) or not value or "\0" in value or Path(value).is_absolute()
            or ".." in Path(value).parts):
        raise DataError(f"{value!r} points outside the bundle; refused", path=where, field=field)
    return value


def load_bundle(folder: str | Path) -> Bundle:
    """Read and check ``bundle.json`` of a bundle folder (or a results folder's copy of it)."""
    root = Path(folder)
    path = root / BUNDLE if root.is_dir() or not root.suffix else root
    root = path.parent
    if not path.is_file():
        raise DataError("no bench bundle here (make one on the host with `edgemed bench pack`)", path=str(root))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"unreadable bundle file ({e})", path=str(path)) from None
    where = str(path)
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise DataError(f"not an edgemed bench bundle (kind must be {KIND!r})", path=where)
    if data.get("schema_version") != SCHEMA_VERSION:
        raise DataError(f"schema_version {data.get('schema_version')!r} is not supported (expected "
                        f"{SCHEMA_VERSION}): pack it again with this edgemed version", path=where)
    for key, kind in (("bundle_id", str), ("settings", dict), ("prompts", dict), ("builds", list)):
        if not isinstance(data.get(key), kind):
            raise DataError(f"missing or not a {kind.__name__}", path=where, field=key)
    safe_relative(data["prompts"].get("path"), where, "prompts.path")
    for i, b in enumerate(data["builds"]):
        missing = [k for k in (*TARGET_FIELDS, "path", "files") if not isinstance(b, dict) or k not in b]
        if missing:
            raise DataError(f"missing {missing}", path=where, field=f"builds[{i}]")
        safe_relative(b["path"], where, f"builds[{i}].path")
        for j, f in enumerate(b["files"]):
            safe_relative(f.get("path") if isinstance(f, dict) else None, where, f"builds[{i}].files[{j}].path")
    return Bundle(root, data)


def file_entry(root: Path, path: Path) -> dict[str, Any]:
    """One file's record in bundle.json: its path relative to the bundle, size and sha256."""
    return {"path": path.relative_to(root).as_posix(), "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def check_file(root: Path, entry: dict[str, Any]) -> None:
    """Refuse a bundle file that is missing, or whose size or sha256 differs from ``bundle.json``.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp()); _ = (root / "m.gguf").write_bytes(b"abc")
    >>> e = file_entry(root, root / "m.gguf"); check_file(root, e)
    >>> _ = (root / "m.gguf").write_bytes(b"abd"); check_file(root, e)
    Traceback (most recent call last):
    ...
    edgemed.bench.device.bundle.BundleMismatch: .../m.gguf: sha256 mismatch: the file hashes to a52d159f262b2c6d…, bundle.json expects ba7816bf8f01cfea… (3 bytes both): damaged in the copy; copy the bundle again
    """
    path = root / entry["path"]
    if not path.is_file():
        raise BundleMismatch("missing from the bundle: copy the bundle again", path=str(path))
    size = path.stat().st_size
    if size != entry["bytes"]:
        why = "truncated" if size < entry["bytes"] else "replaced or appended to"
        raise BundleMismatch(f"sha256 mismatch: the file has {size:,} bytes, bundle.json expects "
                             f"{entry['bytes']:,} (sha256 {entry['sha256'][:16]}…): {why} in the copy; copy the "
                             "bundle again", path=str(path))
    actual = sha256_file(path)
    if actual != entry["sha256"]:
        raise BundleMismatch(f"sha256 mismatch: the file hashes to {actual[:16]}…, bundle.json expects "
                             f"{entry['sha256'][:16]}… ({size:,} bytes both): damaged in the copy; copy the "
                             "bundle again", path=str(path))


def verify_bundle(bundle: Bundle, labels: list[str] | None = None) -> int:
    """Check the prompts file and every file of the builds (``labels``: only those); returns bytes hashed."""
    total = 0
    entries = [bundle.data["prompts"]] + [f for b in bundle.builds if labels is None or b["label"] in labels
                                          for f in b["files"]]
    for entry in entries:
        check_file(bundle.root, entry)
        total += entry["bytes"]
    return total
