"""ONNX Runtime GenAI builds: onnxruntime-genai's model builder, then mixed-precision weight blocks.

- The builder (``python -m onnxruntime_genai.models.builder``) writes one fused decoder graph
  (GroupQueryAttention, fused QKV, rotary caches, a shared KV buffer) plus ``genai_config.json``;
  the onnxruntime-genai runtime runs it with its own generation loop, no Python per op. It knows
  a fixed list of decoder families (Llama, Qwen, Phi, Gemma, Mistral, …); optimum's exporter
  (``onnx.py``) stays the generic path for everything else.
- We always ask it for fp32 with untied embeddings (``shared_embeddings=false``), then quantize
  ``MatMul`` weights ourselves with onnxruntime's ``MatMulNBitsQuantizer``, so each layer gets its
  own bit width (``RECIPES``). The builder's own int4 (``-p int4``) quantizes the LM head to 4 bits
  too, and its ways out fail on tied-embedding models: ``int4_nodes_to_exclude=/lm_head/MatMul``
  gives a graph that does not load, ``exclude_lm_head`` drops the logits output.

Each build is a folder ``onnxruntime_genai.Model(folder)`` loads as is: ``model.onnx``,
``model.onnx.data``, ``genai_config.json`` and the tokenizer files with the chat template.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from edgemed.errors import EdgemedError, EnvironmentFailure, ModelError

log = logging.getLogger(__name__)

# Pinned on purpose (also in pyproject): 0.18's builder fails to import with transformers 4.57.6;
# 0.12.2 works with the current pins (it needs onnxruntime >= 1.24.1).
GENAI_VERSION = "0.12.2"
ONNX_FILE, DATA_FILE, CONFIG_FILE = "model.onnx", "model.onnx.data", "genai_config.json"
# The builder's decoder families (onnxruntime_genai/models/builder.py, 0.12.2), by HF architecture.
SUPPORTED_ARCHITECTURES = frozenset({
    "ChatGLMModel", "Ernie4_5_ForCausalLM", "GemmaForCausalLM", "Gemma2ForCausalLM", "Gemma3ForCausalLM",
    "GptOssForCausalLM", "GraniteForCausalLM", "InternLM2ForCausalLM", "LlamaForCausalLM",
    "MistralForCausalLM", "NemotronForCausalLM", "OlmoForCausalLM", "PhiForCausalLM", "Phi3ForCausalLM",
    "Phi3SmallForCausalLM", "PhiMoEForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM",
    "SmolLM3ForCausalLM"})
# quant → how each MatMul is stored: default bits, block size, and higher-precision overrides by
# node-name fragment (``None`` = kept fp32). Block 32, accuracy level 4 (int8 compute); symmetric
# unless ``"symmetric": False`` (a uint4 zero point per block, as GGUF's Q4_1 keeps a minimum).
RECIPES: dict[str, dict] = {
    "fp32": {},
    "int8": {"bits": 8, "block_size": 32, "keep": {}},
    # Only the MLP up projections in 4 bits, every block asymmetric (SmolLM2-135M's fp32 weights are
    # themselves a dequantized Q4_1, asymmetric blocks): the smallest mix of benchmarks/
    # genai_frontier.py whose top-1 stays >= 0.85 at its 95 % lower bound on the choosing documents,
    # chosen there and then met on the held-out set (genai_frontier.json). gate+up in 4 bits, the
    # earlier choice, sat at 0.846 [0.837, 0.855] on held-out text: undecided.
    "int4": {"bits": 4, "block_size": 32, "symmetric": False,
             "keep": {"/lm_head/": 8, "/mlp/down_proj/": 8, "/mlp/gate_proj/": 8, "/attn/": 8}},
}


def require_genai() -> str:
    """The installed onnxruntime-genai version; a one-line error when it is missing.

    >>> require_genai() == GENAI_VERSION
    True
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("onnxruntime-genai")
    except PackageNotFoundError:
        raise EnvironmentFailure(f"onnx-genai builds need onnxruntime-genai "
                                 f"(pip install onnxruntime-genai=={GENAI_VERSION})") from None


def export_fp32(model_dir: Path, out_dir: Path) -> None:
    """HF folder → the builder's fp32 decoder (untied LM head) with genai_config and tokenizer."""
    require_genai()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent) as cache:
        cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-m", str(model_dir),
               "-i", str(model_dir), "-o", str(out_dir), "-p", "fp32", "-e", "cpu", "-c", cache,
               "--extra_options", "shared_embeddings=false"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not (out_dir / ONNX_FILE).is_file():
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        raise ModelError(f"{model_dir}: onnxruntime-genai's model builder failed: "
                         f"{lines[-1] if lines else 'no output'}")


def node_bits(names: list[str], recipe: dict) -> dict[str, int | None]:
    """Bit width per MatMul node: the recipe's default, or its override for a matching name.

    >>> node_bits(["/model/layers.0/mlp/down_proj/MatMul", "/lm_head/MatMul",
    ...            "/model/layers.0/mlp/up_proj/MatMul"], RECIPES["int4"])
    {'/model/layers.0/mlp/down_proj/MatMul': 8, '/lm_head/MatMul': 8, '/model/layers.0/mlp/up_proj/MatMul': 4}
    >>> node_bits(["/lm_head/MatMul"], {"bits": 4, "keep": {"/lm_head/": None}})
    {'/lm_head/MatMul': None}
    """
    out: dict[str, int | None] = {}
    for name in names:
        hit = [bits for frag, bits in recipe.get("keep", {}).items() if frag in name]
        out[name] = hit[0] if hit else recipe["bits"]
    return out


def quantize(fp32_dir: Path, out_dir: Path, quant: str) -> dict[str, int]:
    """Quantize the builder's fp32 folder into ``out_dir`` following ``RECIPES[quant]``.

    Returns how many MatMuls ended up at each precision (``{"int4": 150, "int8": 31}``), which
    the manifest records like a GGUF's tensor types.
    """
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (MatMulNBitsQuantizer,
                                                                 RTNWeightOnlyQuantConfig)

    recipe = RECIPES[quant]
    out_dir.mkdir(parents=True, exist_ok=True)
    if not recipe:
        for f in fp32_dir.iterdir():
            shutil.copy2(f, out_dir / f.name)
        return matmul_types(out_dir)
    model = onnx.load(str(fp32_dir / ONNX_FILE))
    bits = node_bits(_weight_matmuls(model.graph), recipe)
    # Every node's width spelled out: the RTN config ignores the quantizer's own ``bits``.
    custom = {n: {"bits": b} for n, b in bits.items() if b is not None}
    quantizer = MatMulNBitsQuantizer(
        model, bits=recipe["bits"], block_size=recipe["block_size"],
        is_symmetric=recipe.get("symmetric", True), accuracy_level=recipe.get("accuracy_level", 4),
        nodes_to_exclude=[n for n, b in bits.items() if b is None],
        algo_config=RTNWeightOnlyQuantConfig(customized_weight_config=custom))
    quantizer.process()
    graph = quantizer.model.model.graph
    if not any(n.op_type == "MatMulNBits" for n in graph.node):
        raise EdgemedError("onnxruntime's MatMulNBits quantizer found no MatMul to quantize")
    quantizer.model.save_model_to_file(str(out_dir / ONNX_FILE), use_external_data_format=True)
    for f in fp32_dir.iterdir():
        if f.is_file() and not f.name.startswith(ONNX_FILE) and not (out_dir / f.name).exists():
            shutil.copy2(f, out_dir / f.name)
    return _graph_types(graph)


def _weight_matmuls(graph) -> list[str]:
    """Names of the MatMuls whose second input is a stored weight (not two activations, as in attention)."""
    inits = {i.name for i in graph.initializer}
    return [n.name for n in graph.node if n.op_type == "MatMul" and len(n.input) > 1 and n.input[1] in inits]


def _graph_types(graph) -> dict[str, int]:
    """Weight MatMuls per precision in a graph: ``MatMulNBits`` by its ``bits``, plain ones as fp32."""
    plain = len(_weight_matmuls(graph))
    counts: dict[str, int] = {"fp32": plain} if plain else {}
    for n in graph.node:
        if n.op_type == "MatMulNBits":
            key = f"int{next(a.i for a in n.attribute if a.name == 'bits')}"
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def matmul_types(folder: Path) -> dict[str, int]:
    """How many weight MatMuls a build stores at each precision, read back from its graph
    (``{"int4": 60, "int8": 91}``, as ``quantize`` returns it), for a build already on disk."""
    import onnx

    return _graph_types(onnx.load(str(folder / ONNX_FILE), load_external_data=False).graph)
