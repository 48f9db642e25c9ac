"""ONNX builds: optimum's exporter (with past KV cache), then onnxruntime's quantizers.

- ``fp32``: ``optimum.exporters.onnx.main_export`` with task ``text-generation-with-past``, so
  decoding reuses the KV cache instead of re-reading the whole prefix each token.
- ``int8``: dynamic (weights int8, activations quantized at run time) through optimum's
  ``ORTQuantizer`` with the device profile's instruction-set preset; no calibration data needed. The MLP
  down-projections and the LM head stay fp32 (see ``INT8_KEEP_FP32``).
- ``int4``: weight-only 4-bit blocks through onnxruntime's ``MatMulNBitsQuantizer``
  (``MatMulNBits`` contrib op, CPU kernels since onnxruntime 1.17).

Each build is a folder that ``ORTModelForCausalLM.from_pretrained`` loads as is: ``model.onnx``,
``config.json``, ``generation_config.json`` and the tokenizer files with the chat template.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from edgemed.errors import EdgemedError, ModelError

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
# MatMuls left in fp32 by dynamic int8: the MLP down-projection reads activations with large
# outlier channels (the LLM.int8() finding) that per-tensor u8 activation scales crush, and the
# LM head decides the token directly. On SmolLM2-135M excluding them raised teacher-forced top-1
# agreement from 0.60 to 0.81 and cut KL from 0.61 to 0.10, for ~25% more bytes.
INT8_KEEP_FP32 = ("down_proj", "lm_head", "dense_4h_to_h", "fc2", "/w2/")
# int4 block size: 32 keeps the error of small models (hidden 576) acceptable; 128 is ~10% smaller.
INT4_BLOCK_SIZE = 32


def export_fp32(model_dir: Path, out_dir: Path) -> None:
    """HF folder → ONNX fp32 decoder with past KV cache, plus config and tokenizer files."""
    from optimum.exporters.onnx import main_export

    try:
        main_export(str(model_dir), output=out_dir, task="text-generation-with-past", device="cpu",
                    do_validation=False)  # edgemed's parity check is stricter and runs next
    except (KeyError, ValueError) as e:
        raise ModelError(f"{model_dir}: optimum cannot export this model to ONNX ({e})") from e
    if not (out_dir / ONNX_FILE).is_file():
        raise EdgemedError(f"optimum wrote no {ONNX_FILE} into {out_dir}")


def quantize_int8(fp32_dir: Path, out_dir: Path, preset: str = "avx2") -> None:
    """Dynamic int8 quantization of an fp32 ONNX folder with optimum's ORTQuantizer."""
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    import onnx

    graph = onnx.load(str(fp32_dir / ONNX_FILE), load_external_data=False).graph
    keep = [n.name for n in graph.node if n.op_type == "MatMul" and any(k in n.name for k in INT8_KEEP_FP32)]
    qconfig = getattr(AutoQuantizationConfig, preset)(is_static=False, per_channel=False,
                                                      nodes_to_exclude=keep)
    quantizer = ORTQuantizer.from_pretrained(fp32_dir, file_name=ONNX_FILE)
    quantizer.quantize(save_dir=out_dir, quantization_config=qconfig)
    # optimum names it model_quantized.onnx; the plain name lets from_pretrained(folder) find it.
    (out_dir / "model_quantized.onnx").replace(out_dir / ONNX_FILE)
    copy_side_files(fp32_dir, out_dir)


def quantize_int4(fp32_dir: Path, out_dir: Path, block_size: int = INT4_BLOCK_SIZE) -> None:
    """Weight-only int4 (MatMulNBits) quantization of an fp32 ONNX folder."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(fp32_dir / ONNX_FILE))
    config = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=True, accuracy_level=4)
    quantizer = MatMulNBitsQuantizer(model, algo_config=config)
    quantizer.process()
    if not any(n.op_type == "MatMulNBits" for n in quantizer.model.model.graph.node):
        raise EdgemedError("onnxruntime's MatMulNBits quantizer found no MatMul to quantize")
    quantizer.model.save_model_to_file(str(out_dir / ONNX_FILE), use_external_data_format=False)
    copy_side_files(fp32_dir, out_dir)


def copy_side_files(src: Path, dst: Path) -> None:
    """Copy everything but the ONNX graphs (config, generation config, tokenizer, chat template)."""
    for f in src.iterdir():
        if f.is_file() and not f.name.endswith((".onnx", ".onnx_data")) and not (dst / f.name).exists():
            shutil.copy2(f, dst / f.name)
