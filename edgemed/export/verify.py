"""Verify before use: an export's files against its ``manifest.json`` (size, sha256, structure).

Every consumer of an export (``edgemed bench``, the pipeline's bench stage, ``edgemed export``
deciding whether a build can be reused, ``edgemed verify`` on a device after copying the folder)
calls :func:`verify_artifact` before loading anything. It refuses, in one line naming the file,
the expected and the actual digest and what to do:

- a path that leaves the manifest's folder (``../../etc/passwd``, an absolute path, a symlink out);
- a missing file, or one whose size or sha256 differs from the manifest (a cut copy, a flipped byte);
- a file whose structure is broken (:mod:`edgemed.integrity`), even under ``--no-verify``.

Hashing a few hundred MB takes well under a second, but a bench re-run would pay it for every
build, so a passed check is remembered under ``$EDGEMED_HOME/verified/``, keyed on the artifact's
path, the manifest's size and sha256, and each of its files' size and mtime (plus ctime and inode,
which no copy or ``touch`` can carry over): any write to a file makes the next use hash it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from edgemed.errors import DataError
from edgemed.export.manifest import MANIFEST_NAME, Artifact, Manifest, artifact_bytes, artifact_digest
from edgemed.io import cache_dir, set_aside, write_json_atomic

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when the checks change, so remembered passes are re-checked


class ArtifactMismatch(DataError):
    """A file whose size or sha256 is not what its manifest recorded."""


def artifact_file(artifact: Artifact) -> Path:
    """The artifact's path, refused when it leaves the manifest's folder (symlinks resolved).

    >>> import tempfile
    >>> from edgemed.export.manifest import Source
    >>> d = Path(tempfile.mkdtemp()); m = Manifest(d / "manifest.json", Source("s", "/m", "ab", "A", 1), {})
    >>> a = Artifact("gguf-q8_0", "gguf", "q8_0", "../../etc/passwd", 1, "ab", "passed"); m.put(a)
    >>> artifact_file(a)
    Traceback (most recent call last):
    ...
    edgemed.errors.DataError: .../manifest.json: artifacts[gguf-q8_0].path: '../../etc/passwd' points outside the manifest's folder; refused
    """
    root = artifact.manifest_dir.resolve()
    path = artifact.manifest_dir / artifact.path
    rel = Path(artifact.path)
    if (not artifact.path or rel.is_absolute() or ".." in rel.parts
            or not path.resolve().is_relative_to(root) or path.resolve() == root):
        raise DataError(f"{artifact.path!r} points outside the manifest's folder; refused",
                        path=str(_manifest_path(artifact)), field=f"artifacts[{artifact.name}].path")
    return path


def _manifest_path(artifact: Artifact) -> Path:
    return artifact.manifest_dir / MANIFEST_NAME


def _reexport(artifact: Artifact) -> str:
    return f"re-export it (`edgemed export … --out {artifact.manifest_dir}`)"


def verify_artifact(artifact: Artifact, strict: bool = True,
                    override: str | None = "--no-verify") -> str:
    """Check one artifact before it is loaded; return its actual sha256.

    ``strict=False`` (``--no-verify``) turns a size/sha256 mismatch into a warning; a file that
    is missing, outside the folder or structurally broken is refused either way.
    """
    from edgemed.integrity import check_artifact

    path = artifact_file(artifact)
    if not path.exists():
        raise DataError(f"artifact file is missing: {path}; {_reexport(artifact)}", path=str(_manifest_path(artifact)),
                        field=f"artifacts[{artifact.name}].path")
    stamp = _stamp(path, artifact.bytes, artifact.sha256)
    if stamp is not None and _remembered(path, stamp):
        return artifact.sha256
    problem, actual = mismatch(artifact, path)
    if problem:
        if strict:
            fix = _reexport(artifact) + (f", or pass {override} to use it anyway" if override else "")
            raise ArtifactMismatch(f"{problem}; {fix}", path=str(path))
        log.warning("%s: %s; used anyway (--no-verify), results are keyed on its actual sha256", path, problem)
    check_artifact(artifact.format, path)
    if not problem and stamp is not None and stamp == _stamp(path, artifact.bytes, artifact.sha256):
        _remember(path, stamp)
    return actual


def mismatch(artifact: Artifact, path: Path | None = None) -> tuple[str | None, str]:
    """``(problem or None, actual sha256)``: the file's size and digest against the manifest entry.

    >>> import tempfile
    >>> from edgemed.export.manifest import Source
    >>> d = Path(tempfile.mkdtemp()); _ = (d / "a.gguf").write_bytes(b"abc")
    >>> m = Manifest(d / "manifest.json", Source("s", "/m", "ab", "A", 1), {})
    >>> a = Artifact("gguf-q8_0", "gguf", "q8_0", "a.gguf", 3, "0" * 64, "passed"); m.put(a)
    >>> print(mismatch(a)[0])
    sha256 of gguf-q8_0 is ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad (3 bytes), but .../manifest.json expects 0000000000000000000000000000000000000000000000000000000000000000 (3 bytes): corrupted or changed since export
    """
    path = path or artifact_file(artifact)
    size, actual = artifact_bytes(path), artifact_digest(path)
    if size == artifact.bytes and actual == artifact.sha256:
        return None, actual
    why = ("truncated or replaced since export" if size != artifact.bytes
           else "corrupted or changed since export")
    return (f"sha256 of {artifact.name} is {actual} ({size:,} bytes), but {_manifest_path(artifact)} expects "
            f"{artifact.sha256} ({artifact.bytes:,} bytes): {why}"), actual


def reusable(artifact: Artifact) -> str | None:
    """Why ``edgemed export`` must not reuse this finished build (None: it may): the file is
    missing, differs from the manifest, or is structurally broken. A remembered pass skips the hash."""
    from edgemed.integrity import CorruptFile, check_artifact

    try:
        path = artifact_file(artifact)
    except DataError as e:
        return str(e)
    if not path.exists():
        return f"{path} is missing"
    stamp = _stamp(path, artifact.bytes, artifact.sha256)
    if stamp is not None and _remembered(path, stamp):
        return None
    problem, _ = mismatch(artifact, path)
    if problem:
        return problem
    try:
        check_artifact(artifact.format, path)
    except CorruptFile as e:
        return str(e)
    if stamp is not None and stamp == _stamp(path, artifact.bytes, artifact.sha256):
        _remember(path, stamp)
    return None


def verify_source(manifest: Manifest, strict: bool = True, override: str | None = "--no-verify") -> str:
    """Check the manifest's source model folder (the base-model row) against ``source.sha256``."""
    from edgemed.integrity import check_model_folder
    from edgemed.models import model_fingerprint

    src = Path(manifest.source.path)
    src = src if src.is_absolute() else manifest.dir / src
    if not (src / "config.json").is_file():
        raise DataError(f"source model folder {src} is missing (needed for the base-model row)",
                        path=str(manifest.path), field="source.path")
    expected = manifest.source.sha256
    stamp = _stamp(src, None, expected)
    if stamp is not None and _remembered(src, stamp):
        return expected
    actual = model_fingerprint(src)
    if actual != expected:
        problem = (f"model fingerprint {actual} differs from {manifest.path}'s source.sha256 {expected}: the "
                   "source model changed after the export, so it is not the model these builds came from")
        if strict:
            fix = f"re-export, or pass {override} to use it anyway" if override else "re-export"
            raise ArtifactMismatch(f"{problem}; {fix}", path=str(src))
        log.warning("%s: %s; used anyway (--no-verify)", src, problem)
    check_model_folder(src)
    if actual == expected and stamp is not None and stamp == _stamp(src, None, expected):
        _remember(src, stamp)
    return actual


# --- the remembered passes ------------------------------------------------------------------------

def _stamp(path: Path, size: int | None, sha256: str) -> dict[str, Any] | None:
    """What a remembered pass is keyed on; None when the files cannot be listed."""
    try:
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        stats = [[p.relative_to(path).as_posix() if p != path else ".", st.st_size, st.st_mtime_ns,
                  st.st_ctime_ns, st.st_ino] for p in files for st in [p.stat()]]
    except OSError:
        return None
    return {"version": CACHE_VERSION, "path": str(path.resolve()), "bytes": size, "sha256": sha256,
            "files": stats}


def _cache_file(path: Path) -> Path:
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    return cache_dir("verified") / f"{key}.json"


def _remembered(path: Path, stamp: dict[str, Any]) -> bool:
    cache = _cache_file(path)
    try:
        return json.loads(cache.read_text(encoding="utf-8")) == stamp
    except OSError:
        return False
    except ValueError as e:  # damaged: only a cache, so set it aside; the files are hashed again
        with contextlib.suppress(OSError):
            set_aside(cache, "verification cache", e)
        return False


def _remember(path: Path, stamp: dict[str, Any]) -> None:
    try:
        write_json_atomic(_cache_file(path), stamp)
    except OSError as e:  # a read-only cache only costs the next run a re-hash
        log.debug("cannot remember the verification of %s (%s)", path, e)
