"""Heart imatrix and llama-bench yardstick on the default model (SmolLM2-135M), in one run.

    .venv/bin/python benchmarks/gguf_imatrix.py          # ≈ 20 min on 2 idle cores (estimate, below)

Run time: ≈ 10 min before the document sets were added; each of the 8 builds now also reads ≈ 17k
tokens of documents with every position's logits (≈ 1 min more a build), and a first run computes
the two fp32 document references (≈ 3 min; cached in --work after). Estimated from a contended
partial run (q4_0 only, on 2 cores shared with another job at higher priority: 12 min a build).

Choose on one set, report on another: the importance matrix is judged on the held-out set.

1. Converts the default model to f32 GGUF once, computes the heart importance matrix with
   llama-imatrix (``edgemed.export.imatrix``: packaged heart rubric Q&A, never the parity prompts),
   and builds each quant in ``QUANTS`` twice: plain (llama.cpp's quantizer through the Python API,
   as ``edgemed export`` does) and with the matrix (``llama-quantize --imatrix``).
2. Fidelity of every build against fp32 PyTorch on three texts (``sets`` in the results file):
   the choosing prompts (``parity.HEART_PROMPTS``, 8 × 64 teacher-forced tokens: ``top1_agreement``,
   ``kl_mean``; 32 greedy tokens: ``greedy_match_len_mean``, the export stage's own check), and
   llama.cpp's ``--kl-divergence`` statistics (``fidelity.Statistics``) on the choosing documents
   (``heldout.choosing_documents()``: 24 non-heart HealthBench answers) and on the held-out set
   (``heldout.heldout_documents()``: 23 heart documents), each a teacher-forced answer in the chat
   template. The fp32 references are cached in ``--work`` (two .npy memory maps of ≈ 600 MB).
   ``imatrix_gain`` per quant: imatrix build minus plain build on the same positions, top-1 (as
   0/1) and KLD, mean with a paired 95 % interval (``fidelity.paired_difference``) on the held-out
   set (the verdict) and on the choosing documents; the choosing prompts' unpaired difference and
   both builds' bytes beside it.
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
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from _common import FIDELITY_SETS, fidelity_references, fidelity_sets, provenance  # noqa: E402
QUANTS = ("q5_k_m", "q4_k_m", "q4_0", "q3_k_m", "q2_k")  # f16 and q8_0 take no importance matrix


def paired_gain(build, other) -> dict:
    """Top-1 gain and KLD change of ``build`` over ``other`` (``fidelity.PositionFigures`` on the same
    positions), each a mean with its paired 95 % interval, rounded.

    >>> import numpy as np
    >>> from edgemed.export.fidelity import PositionFigures
    >>> a = PositionFigures(np.full(100, 0.1), np.zeros(100), np.arange(100) % 4 != 0)
    >>> b = PositionFigures(np.full(100, 0.2), np.zeros(100), np.arange(100) % 2 == 0)
    >>> g = paired_gain(a, b)
    >>> g["top1_gain"], g["kld_change"], g["positions"]
    ({'mean': 0.25, 'low': 0.0867, 'high': 0.4133}, {'mean': -0.1, 'low': -0.1, 'high': -0.1}, 100)
    """
    from edgemed.export.fidelity import paired_difference

    def r(d: dict) -> dict:
        return {k: round(d[k], 4) + 0.0 for k in ("mean", "low", "high")}

    return {"top1_gain": r(paired_difference(build.same_top, other.same_top)),
            "kld_change": r(paired_difference(build.kld, other.kld)), "positions": len(build.kld)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default=str(ROOT / "runs" / "gguf_imatrix"), help="Scratch folder for the GGUFs.")
    ap.add_argument("--quants", default=",".join(QUANTS), help="Comma list of GGUF quants to compare.")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for every step.")
    ap.add_argument("--n-prompt", type=int, default=128, help="Prefill test length (pp<n>).")
    ap.add_argument("--n-gen", type=int, default=64, help="Decode test length (tg<n>).")
    ap.add_argument("--repetitions", type=int, default=3, help="Timed repetitions per test.")
    ap.add_argument("--reference-cache", default=None,
                    help="Pickled parity.Reference to reuse (the PyTorch side is deterministic); the "
                         "document sets' references are cached in --work.")
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
    from edgemed.export import fidelity, gguf, heldout, imatrix, parity
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
    refs = fidelity_references(model, work, args.threads)
    n_ctx = max(ref.max_len, *(r.max_len for r in refs.values())) + 8
    matrix = work / "imatrix-heart.gguf"
    text = imatrix.calibration_text("heart", AutoTokenizer.from_pretrained(model))
    record = json.loads((work / "imatrix.json").read_text()) if matrix.is_file() else None
    if record is None:
        record = imatrix.compute(f32, text, matrix, args.threads)
        (work / "imatrix.json").write_text(json.dumps(record))

    bw = memory_bandwidth(args.threads)
    cfg = LatencyConfig(n_prompt=args.n_prompt, n_gen=args.n_gen, repetitions=args.repetitions)
    rows, positions = [], {}
    for quant in args.quants.split(","):
        for calibrated in (False, True):
            path = work / f"{quant}{'-heart' if calibrated else ''}.gguf"
            if not path.is_file():
                if calibrated:
                    imatrix.quantize(f32, path, quant, matrix, args.threads)
                else:
                    gguf.quantize(f32, path, quant, args.threads)
            runtime = parity.LlamaCppRuntime(path, args.threads, n_ctx)
            figures = parity.measure(runtime, ref, DEFAULT_THRESHOLDS[quant])
            positions[quant, calibrated] = {s: heldout.position_figures(runtime, refs[s]) for s in FIDELITY_SETS}
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
                   **{s: asdict(fidelity.summarize(positions[quant, calibrated][s]).rounded()) for s in FIDELITY_SETS},
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
        gains[quant] = {**{s: paired_gain(positions[quant, True][s], positions[quant, False][s])
                           for s in FIDELITY_SETS},
                        "choosing_prompts": {"top1_gain": round(heart["top1_agreement"] - plain["top1_agreement"], 4),
                                             "kl_change": round(heart["kl_mean"] - plain["kl_mean"], 4)},
                        "bytes": {"plain": plain["bytes"], "imatrix": heart["bytes"],
                                  "equal": plain["bytes"] == heart["bytes"]}}
    write_json_atomic(args.results, {
        **prov,
        "command": "python benchmarks/gguf_imatrix.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {**prov["machine"], "bandwidth_bytes_s": bw}, "threads": args.threads,
        "imatrix": {**record, "pairs": len(imatrix.heart_pairs())},
        "parity": {"prompts": len(ref.prompt_ids), "tf_tokens": 64, "greedy_tokens": ref.greedy_tokens},
        "sets": fidelity_sets(refs, ref),
        "gain_method": "imatrix build minus plain build on the same positions: mean of the per-position "
                       "differences (same_top as 0/1 → top1_gain; kld → kld_change) ± 1.96·sd/√n; "
                       "'heldout' is the verdict, 'choosing_documents' and 'choosing_prompts' (unpaired, "
                       "no interval) are the choosing set's view",
        "timing": {"n_prompt": args.n_prompt, "n_gen": args.n_gen, "repetitions": args.repetitions,
                   "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default")},
        "rows": rows, "imatrix_gain": gains})
    return 0


if __name__ == "__main__":
    sys.exit(main())
