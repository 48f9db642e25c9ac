"""Merge a trained LoRA adapter into its base model: a plain HF folder that export reads.

    edgemed train merge runs/smollm2-heart/train/adapter runs/smollm2-heart/merge --dtype float32

The base is always loaded in full precision and the adapter folded in with peft's
``merge_and_unload``. An adapter trained on a 4-bit (QLoRA) base learned corrections to the
*quantised* weights; merged into full-precision weights it gives a slightly different model than
the one trained, so that case is warned about and recorded.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from edgemed import console
from edgemed.errors import ConfigError, ModelError
from edgemed.io import write_json_atomic
from edgemed.train.config import DTYPES

log = logging.getLogger(__name__)

MERGE_SOURCE = "edgemed_merge.json"


def find_adapter(path: str | os.PathLike) -> Path:
    """An adapter folder from itself, a checkpoint-N folder, or a train output folder.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); (d / "adapter").mkdir(); _ = (d / "adapter" / "adapter_config.json").write_text("{}")
    >>> find_adapter(d).name
    'adapter'
    """
    path = Path(path).expanduser()
    for candidate in (path, path / "adapter"):
        if (candidate / "adapter_config.json").is_file():
            return candidate
    raise ModelError(f"{path}: no LoRA adapter here (adapter_config.json missing); pass the train "
                     "stage's adapter/ or a checkpoint-N folder")


def base_of(adapter: Path) -> dict:
    """The base an adapter was trained on: spec, folder and fingerprint when the train stage
    recorded them (``edgemed_adapter.json``), else peft's ``base_model_name_or_path``."""
    source = adapter / "edgemed_adapter.json"
    if source.is_file():
        info = json.loads(source.read_text(encoding="utf-8"))
        return {**info.get("base_model", {}), "trained_in_4bit": bool(info.get("trained_in_4bit"))}
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    spec = config.get("base_model_name_or_path")
    if not spec:
        raise ModelError(f"{adapter}/adapter_config.json: base_model_name_or_path is empty; pass --base")
    return {"spec": str(spec), "trained_in_4bit": False}


def merge_adapter(adapter_dir: str | os.PathLike, out_dir: str | os.PathLike, dtype: str = "float32",
                  base: str | None = None) -> Path:
    """Fold the adapter into its base and save a standalone HF model folder at ``out_dir``.

    >>> merge_adapter("runs/x/train/adapter", "runs/x/merge", dtype="float8")
    Traceback (most recent call last):
    ...
    edgemed.errors.ConfigError: merge dtype must be one of ('float32', 'bfloat16', 'float16'), got 'float8'
    >>> merge_adapter("runs/demo/train", "runs/demo/merge")  # doctest: +SKIP
    PosixPath('runs/demo/merge')
    """
    if dtype not in DTYPES:
        raise ConfigError(f"merge dtype must be one of {DTYPES}, got {dtype!r}")
    # The log sits beside the merged folder, never in it (export fingerprints the folder).
    with console.stage("merge", Path(out_dir).parent / console.LOGS_DIR) as stage:
        stage.start(f"{adapter_dir} into its base model, {dtype}")
        out = _merge(adapter_dir, out_dir, dtype, base)
        stage.done(str(out))
    return out


def _merge(adapter_dir: str | os.PathLike, out_dir: str | os.PathLike, dtype: str, base: str | None) -> Path:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from edgemed.models import model_fingerprint, resolve_model

    adapter = find_adapter(adapter_dir)
    from edgemed.integrity import check_model_folder

    check_model_folder(adapter)  # a cut adapter_model.safetensors: one line, not a peft traceback
    trained_on = base_of(adapter)
    trained_in_4bit = trained_on["trained_in_4bit"]
    recorded = trained_on.get("path")
    spec = base or (recorded if recorded and Path(recorded).is_dir() else trained_on["spec"])
    base_path = resolve_model(spec)
    fingerprint = model_fingerprint(base_path)
    if trained_on.get("fingerprint") and trained_on["fingerprint"] != fingerprint:
        log.warning("base %s differs from the one the adapter was trained on (fingerprint %s… vs %s…); "
                    "the merged model is not the trained policy", base_path, fingerprint[:12],
                    trained_on["fingerprint"][:12])
    if trained_in_4bit:
        log.warning("this adapter was trained on a 4-bit (QLoRA) base; it is merged into %s weights, "
                    "so the merged model differs slightly from the one trained. Compare it on the "
                    "bench before shipping.", dtype)
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=getattr(torch, dtype))
    try:
        model = PeftModel.from_pretrained(model, adapter)
    except (ValueError, KeyError, RuntimeError) as e:
        raise ModelError(f"{adapter}: adapter does not fit base {base_path} ({e})") from e
    merged = model.merge_and_unload()

    out = Path(out_dir)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp, safe_serialization=True)
    # The adapter folder holds the tokenizer the policy was trained with (chat template included).
    tokenizer = AutoTokenizer.from_pretrained(
        adapter if (adapter / "tokenizer_config.json").is_file() else base_path)
    tokenizer.save_pretrained(tmp)
    write_json_atomic(tmp / MERGE_SOURCE, {
        "stage": "merge", "adapter": str(adapter),
        "base_model": {"spec": trained_on["spec"], "path": str(base_path), "fingerprint": fingerprint},
        "trained_on": trained_on, "dtype": dtype, "trained_in_4bit": trained_in_4bit,
        "adapter_sha256": _adapter_digest(adapter)})
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, out)
    log.info("merged %s into %s → %s", adapter, base_path, out)
    return out


def _adapter_digest(adapter: Path) -> str | None:
    from edgemed.io import sha256_file

    weights = adapter / "adapter_model.safetensors"
    return sha256_file(weights) if weights.is_file() else None
