"""Heart imatrix and llama-bench yardstick on the default model (SmolLM2-135M), in one run.

    .venv/bin/python benchmarks/gguf_imatrix.py          # ≈ 10 min on 2 idle cores

1. Converts the default model to f32 GGUF once, computes the heart importance matrix with
   llama-imatrix (``edgemed.export.imatrix``: packaged heart rubric Q&A, never the parity prompts),
   and builds each quant in ``QUANTS`` twice: plain (llama.cpp's quantizer through the Python API,
   as ``edgemed export`` does) and with the matrix (``llama-quantize --imatrix``).
2. Parity of every build against fp32 PyTorch with the export stage's own check on the held-out
   heart prompts (8 × 64 teacher-forced tokens: top-1, KL; 32 greedy tokens).
3. Decode speed of each build through the kit's llama.cpp runner (tg, llama-bench's method) and
   through llama-bench itself on the same file, right after: the harness overhead; plus the copy
   bandwidth and each build's roofline fraction.

Writes benchmarks/results/gguf_imatrix.json. One run on a possibly shared machine: compare the
ratios inside it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from _common import provenance  # noqa: E402  (benchmarks/ is the script's folder)
QUANTS = ("q4_k_m", "q4_0", "q3_k_m", "q2_k")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default=str(ROOT / "runs" / "gguf_imatrix"), help="Scratch folder for the GGUFs.")
    ap.add_argument("--quants", default=",".join(QUANTS), help="Comma list of GGUF quants to compare.")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for every step.")
    ap.add_argument("--n-prompt", type=int, default=128, help="Prefill test length (pp<n>).")
    ap.add_argument("--n-gen", type=int, default=64, help="Decode test length (tg<n>).")
    ap.add_argument("--repetitions", type=int, default=3, help="Timed repetitions per test.")
    ap.add_argument("--reference-cache", default=None,
                    help="Pickled parity.Reference to reuse (the PyTorch side is deterministic).")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "gguf_imatrix.json"))
    args = ap.parse_args(argv)
    prov = provenance(__file__)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Timed alone, like a bench worker: OpenMP's own wait policy both for the kit's runner (in this
    # process, set before torch or llama.cpp load OpenMP) and for llama-bench (its child, given
    # timed_worker_env), never the PASSIVE policy edgemed sets for processes that share cores.
    from edgemed.runtimes.llamacpp import KEEP_OPENMP_DEFAULT  # stdlib only: loads no OpenMP

    os.environ.setdefault(KEEP_OPENMP_DEFAULT, "1")

    from transformers import AutoTokenizer

    from edgemed.bench.latency import llama_bench
    from edgemed.bench.config import LatencyConfig
    from edgemed.bench.latency.machine import machine_info, memory_bandwidth, roofline_fraction
    from edgemed.bench.runners.llamacpp_runner import LlamaCppRunner
    from edgemed.bench.targets import Target
    from edgemed.export import gguf, imatrix, parity
    from edgemed.export.config import DEFAULT_THRESHOLDS
    from edgemed.io import write_json_atomic
    from edgemed.models import resolve_model

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    model = resolve_model("default")
    f32 = work / "f32.gguf"
    if not f32.is_file():
        gguf.convert_hf(model, f32)
    ref_file = Path(args.reference_cache) if args.reference_cache else work / "torch-reference.pkl"
    if ref_file.is_file():
        ref = pickle.loads(ref_file.read_bytes())
    else:
        ref = parity.torch_reference(model, 64, 32, args.threads, len(parity.HEART_PROMPTS))
        ref_file.write_bytes(pickle.dumps(ref))
    matrix = work / "imatrix-heart.gguf"
    text = imatrix.calibration_text("heart", AutoTokenizer.from_pretrained(model))
    record = json.loads((work / "imatrix.json").read_text()) if matrix.is_file() else None
    if record is None:
        record = imatrix.compute(f32, text, matrix, args.threads)
        (work / "imatrix.json").write_text(json.dumps(record))

    bw = memory_bandwidth(args.threads)
    cfg = LatencyConfig(n_prompt=args.n_prompt, n_gen=args.n_gen, repetitions=args.repetitions)
    rows = []
    for quant in args.quants.split(","):
        for calibrated in (False, True):
            path = work / f"{quant}{'-heart' if calibrated else ''}.gguf"
            if not path.is_file():
                if calibrated:
                    imatrix.quantize(f32, path, quant, matrix, args.threads)
                else:
                    gguf.quantize(f32, path, quant, args.threads)
            runtime = parity.LlamaCppRuntime(path, args.threads, ref.max_len + 8)
            figures = parity.measure(runtime, ref, DEFAULT_THRESHOLDS[quant])
            runtime.close()
            size = path.stat().st_size
            target = Target(f"{quant}/{calibrated}", "x", path.stem, "gguf", quant, str(path), size, size, "", 0)
            with LlamaCppRunner(target, threads=args.threads, device="cpu") as runner:
                runner.decode(args.n_gen)  # warm-up
                kit = [args.n_gen / runner.decode(args.n_gen) for _ in range(args.repetitions)]
            lb = {r["test"]: r for r in llama_bench.parse(llama_bench.time_gguf(str(path), cfg, args.threads),
                                                         target, "")}
            kit_tg = sum(kit) / len(kit)
            lb_tg = lb[f"tg{args.n_gen}"]["avg_ts"]
            row = {"quant": quant, "imatrix": calibrated, "bytes": size, "tensor_types": gguf.tensor_types(path),
                   "top1_agreement": figures.top1_agreement, "kl_mean": figures.kl_mean,
                   "greedy_match_len_mean": figures.greedy_match_len_mean,
                   "kit_tg_tok_s": round(kit_tg, 2), "llama_bench_tg_tok_s": round(lb_tg, 2),
                   "llama_bench_pp_tok_s": round(lb[f"pp{args.n_prompt}"]["avg_ts"], 2),
                   "harness_tg_ratio": llama_bench.harness_ratio(kit_tg, lb_tg),
                   "kit_roofline_fraction": round(roofline_fraction(kit_tg, bw, size), 3),
                   "llama_bench_roofline_fraction": round(roofline_fraction(lb_tg, bw, size), 3)}
            logging.info("%s", json.dumps(row))
            rows.append(row)
    gains = {}
    for quant in args.quants.split(","):
        plain, heart = (next(r for r in rows if r["quant"] == quant and r["imatrix"] is c) for c in (False, True))
        gains[quant] = {"top1_gain": round(heart["top1_agreement"] - plain["top1_agreement"], 4),
                        "kl_change": round(heart["kl_mean"] - plain["kl_mean"], 4)}
    write_json_atomic(args.results, {
        **prov,
        "command": "python benchmarks/gguf_imatrix.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {**prov["machine"], "bandwidth_bytes_s": bw}, "threads": args.threads,
        "imatrix": {**record, "pairs": len(imatrix.heart_pairs())},
        "parity": {"prompts": len(ref.prompt_ids), "tf_tokens": 64, "greedy_tokens": ref.greedy_tokens},
        "timing": {"n_prompt": args.n_prompt, "n_gen": args.n_gen, "repetitions": args.repetitions,
                   "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default")},
        "rows": rows, "imatrix_gain": gains})
    return 0


if __name__ == "__main__":
    sys.exit(main())
