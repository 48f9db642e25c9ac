"""LoRA adapters as edge artifacts: ``edgemed export --adapter ADAPTER_DIR --model BASE``.

A ``gguf-lora-QUANT`` build is a folder an edge runtime loads as one model::

    gguf-lora-q8_0/
      base.gguf      the base model's q8_0 GGUF (hard link to gguf-q8_0/…, same bytes)
      adapter.gguf   the adapter, converted by llama.cpp's own convert_lora_to_gguf.py
      Modelfile      FROM ./base.gguf + ADAPTER ./adapter.gguf (``ollama create … -f``)

Several adapters can then share one base on the device. Parity: base + adapter in llama.cpp is
measured against the merged model in PyTorch fp32 (the usual figures, the held-out statistics and
the quant's thresholds), and so is the merged model converted to a GGUF of the same quant. The
adapter build must be as faithful to fp32 as that merged build, within noise (``fidelity.within_noise``
on the held-out text): two roundings of the same weights are compared by what each loses against
fp32, never by how often they agree with each other (they disagree about as much as each does with
fp32).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

from edgemed.errors import ConfigError

log = logging.getLogger(__name__)

BASE_FILE, ADAPTER_FILE = "base.gguf", "adapter.gguf"
# The adapter's tensors are small (rank x width); f16 halves them with no measurable effect.
ADAPTER_OUTTYPE = "f16"


def lora_files(folder: str | os.PathLike) -> tuple[Path, Path]:
    """The base and adapter GGUFs of a ``gguf-lora`` build folder.

    >>> [p.name for p in lora_files("exports/x/gguf-lora-q8_0")]
    ['base.gguf', 'adapter.gguf']
    """
    folder = Path(folder)
    return folder / BASE_FILE, folder / ADAPTER_FILE


def with_lora_builds(builds: list, adapter: str | None) -> list:
    """The build list of an adapter export: every GGUF quant gets its ``gguf-lora`` twin (after it),
    and a ``gguf-lora`` build asked for alone gets the base build it needs (before it).

    >>> from edgemed.export.config import parse_builds
    >>> [b.name for b in with_lora_builds(parse_builds("gguf:q8_0,onnx:fp32"), "a/")]
    ['gguf-q8_0', 'gguf-lora-q8_0', 'onnx-fp32']
    >>> [b.name for b in with_lora_builds(parse_builds("gguf-lora:q4_0"), "a/")]
    ['gguf-q4_0', 'gguf-lora-q4_0']
    >>> with_lora_builds(parse_builds("gguf-lora:q4_0"), None)
    Traceback (most recent call last):
    ...
    edgemed.errors.ConfigError: gguf-lora builds need --adapter ADAPTER_DIR (the LoRA adapter to apply)
    """
    from edgemed.export.config import BuildSpec

    if adapter is None:
        if any(b.format == "gguf-lora" for b in builds):
            raise ConfigError("gguf-lora builds need --adapter ADAPTER_DIR (the LoRA adapter to apply)")
        return builds
    out: list = []
    for b in builds:
        if b.format in ("gguf", "gguf-lora"):
            out += [BuildSpec("gguf", b.quant), BuildSpec("gguf-lora", b.quant)]
        else:
            out.append(b)
    return list(dict.fromkeys(out))


def adapter_base_spec(adapter_dir: str | os.PathLike) -> str:
    """The base an adapter was trained on (its recorded folder when it still exists, else its spec),
    so ``--model`` may be left out."""
    from edgemed.train.merge import base_of, find_adapter

    info = base_of(find_adapter(adapter_dir))
    recorded = info.get("path")
    return recorded if recorded and Path(recorded).is_dir() else info["spec"]


def adapter_fingerprint(adapter_dir: str | os.PathLike) -> str:
    """sha256 over the adapter's config and weights: an adapter change rebuilds its gguf-lora builds."""
    from edgemed.io import sha256_file
    from edgemed.train.merge import find_adapter

    adapter = find_adapter(adapter_dir)
    h = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"):
        if (adapter / name).is_file():
            h.update(f"{name}\0{sha256_file(adapter / name)}\n".encode())
    return h.hexdigest()


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (no second copy of the base on disk), copying across filesystems."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


class AdapterInputs:
    """What the gguf-lora builds of one export share, made once and lazily under ``root``: the
    adapter GGUF, the merged HF model, its PyTorch parity reference and its GGUFs per quant."""

    def __init__(self, adapter: str, base_dir: Path, root: Path, parity_options: dict,
                 heldout_docs: int | None = None):
        from edgemed.train.merge import find_adapter

        self.adapter, self.base_dir, self.root = find_adapter(adapter), Path(base_dir), root
        self.parity_options, self.heldout_docs = parity_options, heldout_docs
        self._ref = self._heldout = None

    def adapter_gguf(self) -> Path:
        from edgemed.export import converter

        out = self.root / f"adapter-{ADAPTER_OUTTYPE}.gguf"
        if not out.is_file():
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(".partial")
            log.info("adapter: llama.cpp's convert_lora_to_gguf.py on %s", self.adapter)
            converter.convert_lora(self.adapter, self.base_dir, tmp, ADAPTER_OUTTYPE)
            os.replace(tmp, out)
        return out

    def merged(self) -> Path:
        from edgemed.train.merge import merge_adapter

        out = self.root / "merged"
        if not (out / "config.json").is_file():
            merge_adapter(self.adapter, out, dtype="float32", base=str(self.base_dir))
        return out

    def reference(self):
        from edgemed.export import parity

        if self._ref is None:
            log.info("parity reference for the adapter builds: the merged model in PyTorch fp32")
            self._ref = parity.torch_reference(self.merged(), **self.parity_options)
        return self._ref

    def heldout_reference(self):
        from edgemed.export import heldout

        if self._heldout is None:
            self._heldout = heldout.torch_reference(self.merged(), self.root / "heldout-merged.npy",
                                                    self.parity_options.get("threads", 2), self.heldout_docs)
        return self._heldout

    def merged_gguf(self, quant: str, threads: int) -> Path:
        from edgemed.export import gguf

        f32 = self.root / "merged-f32.gguf"
        if not f32.is_file():
            self.root.mkdir(parents=True, exist_ok=True)
            gguf.convert_hf(self.merged(), f32.with_suffix(".partial"))
            os.replace(f32.with_suffix(".partial"), f32)
        out = self.root / f"merged-{quant}.gguf"
        if not out.is_file():
            gguf.quantize(f32, out, quant, threads)
        return out


def build(inputs: AdapterInputs, base_gguf: Path, quant: str, staging: Path, threads: int,
          thresholds: dict[str, float], modelfile_text) -> tuple[dict, object]:
    """Assemble one gguf-lora folder in ``staging`` and measure it; returns (artifact extras, parity).

    ``modelfile_text(base_name, adapter_name)`` renders the Modelfile (chat template, stops, n_ctx).
    The extras' ``lora.merged_gguf`` holds the merged build's held-out figures and the verdict of
    the comparison (``merged_verdict`` reads it).
    """
    from edgemed.export import fidelity, gguf, heldout, parity

    base, adapter = lora_files(staging)
    link_or_copy(base_gguf, base)
    shutil.copy2(inputs.adapter_gguf(), adapter)
    (staging / "Modelfile").write_text(modelfile_text(BASE_FILE, ADAPTER_FILE), encoding="utf-8")
    ref, held = inputs.reference(), inputs.heldout_reference()
    n_ctx = max(ref.max_len, held.max_len) + 8
    with_adapter = parity.LlamaCppRuntime(base, threads, n_ctx, lora_path=adapter)
    try:
        figures = parity.measure(with_adapter, ref, thresholds, held)
    finally:
        with_adapter.close()
    merged = parity.LlamaCppRuntime(inputs.merged_gguf(quant, threads), threads, n_ctx)
    try:
        merged_stats = heldout.measure(merged, held)
    finally:
        merged.close()
    comparison = fidelity.within_noise(figures.heldout, merged_stats)
    log.info("gguf-lora-%s against the merged %s GGUF, both against fp32 on held-out text: top-1 %.3f vs "
             "%.3f, KLD %.4f vs %.4f: %s", quant, quant, figures.heldout.top1, merged_stats.top1,
             figures.heldout.kld_mean, merged_stats.kld_mean,
             "within noise" if comparison["verdict"] == "met" else "worse beyond noise")
    extra = {"tensor_types": gguf.tensor_types(base), "lora": {
        "adapter": str(inputs.adapter), "adapter_sha256": adapter_fingerprint(inputs.adapter),
        "adapter_outtype": ADAPTER_OUTTYPE, "base_artifact": f"gguf-{quant}",
        "merged_gguf": {"top1": merged_stats.top1, "top1_ci_low": merged_stats.top1_ci_low,
                        "top1_ci_high": merged_stats.top1_ci_high, "kld_mean": merged_stats.kld_mean,
                        "kld_mean_se": merged_stats.kld_mean_se, **comparison}}}
    return extra, figures


def merged_verdict(lora: dict | None) -> str | None:
    """A gguf-lora build's comparison with the merged build of its quant (``met``/``missed``), or
    None for any other build.

    >>> merged_verdict(None), merged_verdict({"merged_gguf": {"verdict": "met"}})
    (None, 'met')
    """
    if not lora:
        return None
    return (lora.get("merged_gguf") or {}).get("verdict", "missed")
