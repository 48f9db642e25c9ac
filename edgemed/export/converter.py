"""llama.cpp's own HF → GGUF converter, matched to the installed llama-cpp-python.

``convert_hf_to_gguf.py`` is not in the llama-cpp-python wheel, only in its sdist (with its
``conversion/`` package and the vendored ``gguf-py``). Using that exact copy means the GGUF layout,
tokenizer metadata and pre-tokenizer hashes are the ones the installed runtime was built to read.
The sdist is fetched once with pip — by ``make install``, so an export run touches no network —
and kept beside the package it matches, under ``<venv>/share/edgemed/tools/llama-cpp-python-<ver>``
(``$EDGEMED_HOME/tools`` when the environment is read-only).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from edgemed.errors import EdgemedError, EnvironmentFailure
from edgemed.io import absolute, env_share_dir

log = logging.getLogger(__name__)

# The parts of vendor/llama.cpp the converter imports; nothing else of the 60 MB sdist is kept.
KEEP = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion/", "gguf-py/", "LICENSE")


def llama_cpp_version() -> str:
    """Installed llama-cpp-python version; the converter must come from the same release."""
    try:
        return version("llama_cpp_python")
    except PackageNotFoundError:
        raise EnvironmentFailure("GGUF export needs llama-cpp-python (pip install llama-cpp-python==0.3.36)") from None


def tools_dir() -> Path:
    """Where converters live: in the Python environment that holds the matching llama-cpp-python."""
    return env_share_dir("tools")


def converter_dir() -> Path:
    """Folder holding ``convert_hf_to_gguf.py`` for the installed llama-cpp-python, fetched if needed."""
    ver = llama_cpp_version()
    target = tools_dir() / f"llama-cpp-python-{ver}"
    if (target / "convert_hf_to_gguf.py").is_file():
        return target
    log.info("fetching llama.cpp's converter from the llama-cpp-python %s sdist (once)", ver)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             "--disable-pip-version-check", f"llama-cpp-python=={ver}", "-d", tmp],
            capture_output=True, text=True)
        sdists = list(Path(tmp).glob("*.tar.gz"))
        if proc.returncode != 0 or not sdists:
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise EnvironmentFailure(f"cannot fetch the llama-cpp-python {ver} sdist for its GGUF converter "
                                     f"(offline and not cached in {target}): {last[0]}")
        staged = Path(tmp) / "converter"
        _extract_converter(sdists[0], staged)
        _move_into(staged, target)
    return target


def _move_into(staged: Path, target: Path, marker: str = "convert_hf_to_gguf.py") -> None:
    """Move the extracted converter into ``target`` entry by entry. The folder may already hold other
    things of the same release (llama.cpp's tools in ``bin/``), so it is never replaced whole; the
    marker file goes last, so a half-finished move is never taken for an installed converter. An entry
    another process moved in first is kept (theirs is identical)."""
    target.mkdir(parents=True, exist_ok=True)
    entries = sorted(staged.iterdir(), key=lambda e: e.name == marker)
    for entry in entries:
        dest = target / entry.name
        if dest.exists():
            continue
        try:
            os.replace(entry, dest)
        except OSError:
            if not dest.exists():
                raise


def _extract_converter(sdist: Path, dest: Path) -> None:
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if len(parts) < 4 or parts[1:3] != ["vendor", "llama.cpp"]:
                continue
            rel = "/".join(parts[3:])
            if member.isfile() and any(rel == k or (k.endswith("/") and rel.startswith(k)) for k in KEEP):
                member.name = rel
                tar.extract(member, dest, filter="data")
    if not (dest / "convert_hf_to_gguf.py").is_file():
        raise EnvironmentFailure(f"{sdist.name}: no vendor/llama.cpp/convert_hf_to_gguf.py inside")


@functools.cache
def supported_architectures() -> frozenset[str]:
    """Model classes (``config.json`` architectures) the converter knows (asked once per process)."""
    out = _run_converter(["--print-supported-models"], check=True)
    return frozenset(line.strip()[2:] for line in out.splitlines() if line.strip().startswith("- "))


def convert(model_dir: Path, outfile: Path, outtype: str = "f32") -> None:
    """Run ``convert_hf_to_gguf.py`` on a HF folder; its errors become one-line EdgemedErrors."""
    # The converter runs with cwd=its own folder: relative paths would resolve there.
    _run_converter([absolute(model_dir), "--outtype", outtype, "--outfile", absolute(outfile)], check=True)


def convert_lora(adapter_dir: Path, base_dir: Path, outfile: Path, outtype: str = "f16") -> None:
    """Run llama.cpp's ``convert_lora_to_gguf.py`` (same release as the runtime) on a peft adapter;
    ``base_dir`` is the HF base it was trained on (the converter reads its config and tensor names)."""
    _run_converter([absolute(adapter_dir), "--base", absolute(base_dir), "--outtype", outtype,
                    "--outfile", absolute(outfile)], check=True, script="convert_lora_to_gguf.py")


def _run_converter(args: list[str], check: bool, script: str = "convert_hf_to_gguf.py") -> str:
    tools = converter_dir()
    if not (tools / script).is_file():  # a cache extracted before the script was kept
        raise EnvironmentFailure(f"{tools / script} is missing; refetch the converter with "
                                 "`python -m edgemed.export.converter --refresh`")
    # The vendored gguf-py is the converter's own; the installed gguf package may be older/newer.
    env = {k: v for k, v in os.environ.items() if k != "NO_LOCAL_GGUF"}
    proc = subprocess.run([sys.executable, str(tools / script), *args],
                          capture_output=True, text=True, cwd=tools, env=env)
    if check and proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        reason = next((ln for ln in reversed(lines) if "Error" in ln or "error" in ln), lines[-1] if lines else "")
        raise EdgemedError(f"llama.cpp converter failed on {args[0]}: {reason.strip()}")
    return proc.stdout + proc.stderr


def remove_cached_converter() -> None:
    """Drop the cached converter (e.g. after upgrading llama-cpp-python by hand); the llama.cpp tools
    built beside it (``bin/``) stay."""
    target = tools_dir() / f"llama-cpp-python-{llama_cpp_version()}"
    (target / "convert_hf_to_gguf.py").unlink(missing_ok=True)  # the marker first: never half-installed
    for name in KEEP:
        path = target / name.rstrip("/")
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


if __name__ == "__main__":  # `python -m edgemed.export.converter [--refresh]`: fetch it now (make install does)
    if "--refresh" in sys.argv[1:]:
        remove_cached_converter()
    print(converter_dir())
