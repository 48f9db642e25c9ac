"""``manifest.json``: what the export stage built, from what, with which tools, and how faithful it is.

The bench stage reads this file and nothing else of the export stage, so it is validated here, at
the door, with errors naming the file and the field. Paths inside it are relative to the manifest's
folder, so an export directory can be copied to a device and still resolve.

Layout (schema_version 1)::

    {"schema_version": 1, "created": "2026-11-22T00:10:00+00:00",
     "source": {"spec", "path", "sha256", "architecture", "n_params"},
     "tools": {"llama_cpp_python": "0.3.36", ...},
     "artifacts": [{"name": "gguf-q4_k_m", "format": "gguf", "quant": "q4_k_m",
                    "path": "gguf-q4_k_m/model.gguf", "bytes": ..., "sha256": ...,
                    "status": "passed", "parity": {...}, "runtime": {...},
                    "tensor_types": {"q4_K": 120, ...}, "modelfile": "gguf-q4_k_m/Modelfile",
                    "quant_note": "q4_k_m holds ... llama.cpp fell back",  # only when it did
                    "inputs_key": "...", "build_seconds": 12.3}]}
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgemed.errors import DataError
from edgemed.export.fidelity import Statistics
from edgemed.export.quant_note import quant_note
from edgemed.io import sha256_file, write_json_atomic

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
# The quant names each format accepts; anything else is rejected where it enters (config, CLI).
QUANTS: dict[str, tuple[str, ...]] = {
    "gguf": ("f16", "q8_0", "q4_k_m", "q5_k_m", "q4_0", "q3_k_m", "q2_k"),
    "onnx": ("fp32", "int8", "int4"),
    # onnxruntime-genai's model builder + per-layer MatMulNBits (edgemed/export/onnx_genai.py).
    "onnx-genai": ("fp32", "int8", "int4"),
    # A base GGUF of this quant + a LoRA adapter GGUF, run together (edgemed/export/lora.py).
    "gguf-lora": ("f16", "q8_0", "q4_k_m", "q5_k_m", "q4_0", "q3_k_m", "q2_k"),
}
# passed: every bound met; undecided: some bound's interval straddles it (kept, with a warning);
# failed: a bound missed (kept, marked; the export exits 3 unless --allow-degraded).
STATUSES = ("passed", "undecided", "failed")


@dataclass
class Source:
    """The model the artifacts were built from; ``sha256`` keys every re-run decision."""

    spec: str
    path: str
    sha256: str
    architecture: str
    n_params: int


@dataclass
class Parity:
    """How faithful one artifact is to the PyTorch source.

    ``top1_agreement``, ``kl_mean`` and ``greedy_match_len_mean`` are measured on the fixed heart
    prompts, the set recipes and thresholds were chosen on; ``heldout`` holds llama.cpp's statistics
    on the held-out heart text (``heldout.py``), which the top-1 and KL bounds are judged on;
    ``gates`` says, per bound, which statistic, its 95 % interval and the verdict (met, missed,
    undecided). ``passed`` is true when every bound is met.
    """

    tokenizer_equal: bool
    top1_agreement: float
    kl_mean: float
    greedy_match_len_mean: float
    n_prompts: int
    thresholds: dict[str, float]
    passed: bool
    heldout: Statistics | None = None
    gates: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def deciding_gates(self) -> dict[str, dict[str, Any]]:
        """The gates that decide the status (not the informational figures recorded beside them)."""
        return {k: g for k, g in self.gates.items() if not g.get("informational")}


@dataclass
class Artifact:
    """One built file (GGUF) or folder (ONNX, loadable by ``ORTModelForCausalLM``).

    >>> a = Artifact("gguf-q8_0", "gguf", "q8_0", "gguf-q8_0/model.gguf", 1, "ab", "passed")
    >>> a.manifest_dir = Path("/exports/smol")
    >>> str(a.abspath)
    '/exports/smol/gguf-q8_0/model.gguf'
    """

    name: str
    format: str
    quant: str
    path: str
    bytes: int
    sha256: str
    status: str
    parity: Parity | None = None
    runtime: dict[str, Any] = field(default_factory=dict)
    tensor_types: dict[str, int] = field(default_factory=dict)
    modelfile: str | None = None
    # GGUF builds whose tensors are not all of the quant's own types (llama.cpp fell back): one line.
    quant_note: str | None = None
    # GGUF quants made with an importance matrix: its calibration source and text hash; else None.
    imatrix: dict[str, Any] | None = None
    # gguf-lora builds: the adapter (source, sha256, outtype) and its comparison with the merged GGUF.
    lora: dict[str, Any] | None = None
    inputs_key: str = ""  # hash of everything the build depends on: equal key → skip the rebuild
    build_seconds: float = 0.0
    manifest_dir: Path = field(default=Path("."), repr=False, compare=False)

    @property
    def abspath(self) -> Path:
        return self.manifest_dir / self.path

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def usable(self) -> bool:
        """Passed, or undecided (not shown unfaithful): what the bench takes by default."""
        return self.status != "failed"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("manifest_dir")
        for optional in ("modelfile", "quant_note", "imatrix", "lora"):
            if d[optional] is None:
                d.pop(optional)
        return d


@dataclass
class Manifest:
    """The parsed ``manifest.json``; ``path`` is the file itself."""

    path: Path
    source: Source
    tools: dict[str, str]
    artifacts: list[Artifact] = field(default_factory=list)
    created: str = ""
    schema_version: int = SCHEMA_VERSION

    @property
    def dir(self) -> Path:
        return self.path.parent

    def artifact(self, name: str) -> Artifact | None:
        """The artifact called ``name``, or None."""
        return next((a for a in self.artifacts if a.name == name), None)

    def put(self, artifact: Artifact) -> None:
        """Add ``artifact``, replacing one of the same name (order of first appearance kept)."""
        artifact.manifest_dir = self.dir
        for i, a in enumerate(self.artifacts):
            if a.name == artifact.name:
                self.artifacts[i] = artifact
                return
        self.artifacts.append(artifact)

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, "created": self.created,
                "source": asdict(self.source), "tools": dict(self.tools),
                "artifacts": [a.to_dict() for a in self.artifacts]}

    def write(self) -> Path:
        """Write atomically (stamping ``created``), so a reader never sees half a manifest."""
        self.created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        return write_json_atomic(self.path, self.to_dict())


def artifact_digest(path: str | os.PathLike) -> str:
    """sha256 of a file, or of a folder: over its sorted relative paths and their files' sha256.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); _ = (d / "a").write_text("x"); _ = (d / "b").write_text("y")
    >>> digest = artifact_digest(d)
    >>> _ = (d / "b").write_text("z"); artifact_digest(d) != digest
    True
    """
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(path).as_posix()}\0{sha256_file(f)}\n".encode())
    return h.hexdigest()


def artifact_bytes(path: str | os.PathLike) -> int:
    """Size of a file, or the total of a folder's files."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def load_manifest(path: str | os.PathLike) -> Manifest:
    """Read and validate ``manifest.json`` (or the folder holding it).

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> m = Manifest(d / "manifest.json", Source("default", "/m", "ab", "LlamaForCausalLM", 1), {})
    >>> _ = m.write(); load_manifest(d).source.architecture
    'LlamaForCausalLM'
    >>> _ = (d / "manifest.json").write_text('{"schema_version": 1}')
    >>> load_manifest(d)
    Traceback (most recent call last):
    ...
    edgemed.errors.DataError: .../manifest.json: source: missing
    """
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        raise DataError("no export manifest here (run `edgemed export` first)", path=str(path))
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"not valid JSON ({e})", path=str(path)) from None
    return _parse(raw, path)


# --- validation: every check names the field it looked at -------------------------------------

def _parse(raw: Any, path: Path) -> Manifest:
    def need(obj: Any, key: str, types: type | tuple[type, ...], where: str) -> Any:
        if not isinstance(obj, dict) or key not in obj:
            raise DataError("missing", path=str(path), field=f"{where}{key}")
        value = obj[key]
        if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            raise DataError(f"expected {types}, got bool", path=str(path), field=f"{where}{key}")
        if not isinstance(value, types):
            raise DataError(f"expected {getattr(types, '__name__', types)}, got "
                            f"{type(value).__name__}", path=str(path), field=f"{where}{key}")
        return value

    version = need(raw, "schema_version", int, "")
    if version != SCHEMA_VERSION:
        raise DataError(f"schema_version {version} is not supported (expected {SCHEMA_VERSION})",
                        path=str(path), field="schema_version")
    src = need(raw, "source", dict, "")
    source = Source(spec=need(src, "spec", str, "source."), path=need(src, "path", str, "source."),
                    sha256=need(src, "sha256", str, "source."),
                    architecture=need(src, "architecture", str, "source."),
                    n_params=need(src, "n_params", int, "source."))
    manifest = Manifest(path=path, source=source, tools=dict(raw.get("tools") or {}),
                        created=str(raw.get("created", "")))
    for i, a in enumerate(need(raw, "artifacts", list, "")):
        where = f"artifacts[{i}]."
        fmt = need(a, "format", str, where)
        quant = need(a, "quant", str, where)
        if fmt not in QUANTS:
            raise DataError(f"unknown format {fmt!r} (known: {', '.join(QUANTS)})",
                            path=str(path), field=where + "format")
        if quant not in QUANTS[fmt]:
            raise DataError(f"unknown {fmt} quant {quant!r} (known: {', '.join(QUANTS[fmt])})",
                            path=str(path), field=where + "quant")
        status = need(a, "status", str, where)
        if status not in STATUSES:
            raise DataError(f"status must be one of {STATUSES}", path=str(path), field=where + "status")
        rel = need(a, "path", str, where)
        modelfile = a.get("modelfile")
        for key, value in (("path", rel), ("modelfile", modelfile)):
            if value is None and key == "modelfile":
                continue
            if (not isinstance(value, str) or not value.strip() or "\0" in value
                    or Path(value).is_absolute() or ".." in Path(value).parts):
                raise DataError(f"{value!r} points outside the manifest's folder (paths must be relative "
                                "to it, without '..'); refused", path=str(path), field=where + key)
        parity = None
        if a.get("parity") is not None:
            p, pw = need(a, "parity", dict, where), where + "parity."
            parity = Parity(tokenizer_equal=need(p, "tokenizer_equal", bool, pw),
                            top1_agreement=float(need(p, "top1_agreement", (int, float), pw)),
                            kl_mean=float(need(p, "kl_mean", (int, float), pw)),
                            greedy_match_len_mean=float(need(p, "greedy_match_len_mean", (int, float), pw)),
                            n_prompts=need(p, "n_prompts", int, pw),
                            thresholds=dict(need(p, "thresholds", dict, pw)),
                            passed=need(p, "passed", bool, pw),
                            gates=dict(p.get("gates") or {}))
            if p.get("heldout") is not None:
                try:
                    parity.heldout = Statistics.from_dict(need(p, "heldout", dict, pw))
                except (KeyError, TypeError) as e:
                    raise DataError("missing or not a number", path=str(path),
                                    field=f"{pw}heldout.{e.args[0]}") from None
        tensor_types = dict(a.get("tensor_types") or {})
        note = a.get("quant_note") if isinstance(a.get("quant_note"), str) else None
        if note is None and fmt.startswith("gguf"):  # written before builds carried their note
            note = quant_note(quant, tensor_types)
        manifest.put(Artifact(
            name=need(a, "name", str, where), format=fmt, quant=quant, path=rel,
            bytes=need(a, "bytes", int, where), sha256=need(a, "sha256", str, where), status=status,
            parity=parity, runtime=dict(a.get("runtime") or {}),
            tensor_types=tensor_types, modelfile=modelfile, quant_note=note,
            imatrix=a.get("imatrix") if isinstance(a.get("imatrix"), dict) else None,
            lora=a.get("lora") if isinstance(a.get("lora"), dict) else None,
            inputs_key=str(a.get("inputs_key", "")), build_seconds=float(a.get("build_seconds", 0.0))))
    return manifest
