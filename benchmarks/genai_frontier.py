"""ONNX Runtime GenAI frontier: which layers to keep at 8 bits for a fast, faithful int4 build.

    .venv/bin/python benchmarks/genai_frontier.py        # every recipe, ≈ 12 min on 2 idle cores (+ the builder once)
    .venv/bin/python benchmarks/genai_frontier.py --recipes int4-mlp-only-asym,int8-all

Builds the default model (SmolLM2-135M) once with onnxruntime-genai's model builder (fp32, untied
LM head), quantizes it with each recipe in ``RECIPES`` below (``edgemed.export.onnx_genai.quantize``,
the export stage's own code), and measures for each, against the fp32 PyTorch model:

- on the choosing prompts, the export stage's own check (8 heart prompts × 64 teacher-forced
  tokens: ``top1_agreement``, ``kl_mean``; ``greedy_match_len_mean`` over 32 greedy tokens);
- llama.cpp's ``--kl-divergence`` statistics (``fidelity.Statistics``) on the choosing documents
  (``choosing_documents``: 24 non-heart HealthBench answers) and on the held-out set (``heldout``:
  23 heart documents), each a teacher-forced answer in the chat template (references cached in
  ``--work``);
- size, and decode speed in the onnxruntime-genai runtime (64 tokens after a 128-token prompt,
  median of 3).

**The choice** (``choice`` in the results file, rule ``CHOICE_RULE``) reads the choosing set only:
the smallest (bytes) int4 recipe whose choosing-documents top-1 Wilson 95 % lower bound
(``top1_ci_low``) is ≥ 0.85; if none reaches it, the int4 recipe with the highest choosing-documents
top-1 (``"floor_met": false`` and a note say so). The held-out set then reports whether the chosen recipe, and the export default
(``onnx_genai.RECIPES["int4"]``), keep top-1 ≥ 0.85 there (``heldout_check``: the Wilson 95 %
interval against the floor: met, missed or undecided). This script reports; it changes no default.

Run time: ≈ 2 min for the 10 recipes before the document sets were added; each recipe now also
reads ≈ 17k tokens of documents (≈ 1 min more a recipe), and a first run computes the two fp32
document references (≈ 3 min; cached in --work after). Estimated from a contended partial run (3
recipes on 2 cores shared with another job at higher priority: ≈ 4 min a recipe).

Writes benchmarks/results/genai_frontier.json (a partial re-run replaces its recipes' rows and
keeps the rest; the choice is made again over all rows). Speeds are from one run on a possibly
shared machine: compare them with each other, not across files.
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from _common import FIDELITY_SETS, fidelity_references, fidelity_sets, provenance  # noqa: E402
TOP1_FLOOR = 0.85
CHOICE_RULE = (f"the smallest (bytes) int4 recipe whose choosing-documents top-1 Wilson 95 % lower bound "
               f"(top1_ci_low) is >= {TOP1_FLOOR}; if none reaches it, the int4 recipe with the highest "
               f"choosing-documents top-1. Choosing-set figures only: the held-out set is not read.")
# name → recipe (see edgemed/export/onnx_genai.py); "keep" maps node-name fragments to bits.
RECIPES = {
    "fp32": {},
    "int4-all": {"bits": 4, "block_size": 32, "keep": {}},
    "int4-head8": {"bits": 4, "block_size": 32, "keep": {"/lm_head/": 8}},
    "int4-head8-down8": {"bits": 4, "block_size": 32, "keep": {"/lm_head/": 8, "/mlp/down_proj/": 8}},
    "int4-mlp-only": {"bits": 4, "block_size": 32, "keep": {"/lm_head/": 8, "/mlp/down_proj/": 8,
                                                            "/attn/": 8}},
    "int8-all": {"bits": 8, "block_size": 32, "keep": {}},
    # Asymmetric blocks (a zero point each): the default model's weights are a dequantized Q4_1,
    # whose blocks are asymmetric (scale and minimum).
    "int4-all-asym": {"bits": 4, "block_size": 32, "symmetric": False, "keep": {}},
    "int4-head8-asym": {"bits": 4, "block_size": 32, "symmetric": False, "keep": {"/lm_head/": 8}},
    "int4-head8-down8-asym": {"bits": 4, "block_size": 32, "symmetric": False,
                              "keep": {"/lm_head/": 8, "/mlp/down_proj/": 8}},
    "int4-mlp-only-asym": {"bits": 4, "block_size": 32, "symmetric": False,
                           "keep": {"/lm_head/": 8, "/mlp/down_proj/": 8, "/attn/": 8}},
    # Added after the held-out run left int4-mlp-only-asym undecided against 0.85 (issue 27: "or a
    # recipe that gets there"): fewer 4-bit weights, or smaller blocks; chosen by the same rule.
    "int4-up-only-asym": {"bits": 4, "block_size": 32, "symmetric": False,
                          "keep": {"/lm_head/": 8, "/mlp/down_proj/": 8, "/mlp/gate_proj/": 8, "/attn/": 8}},
    "int4-mlp-only-asym-b16": {"bits": 4, "block_size": 16, "symmetric": False,
                               "keep": {"/lm_head/": 8, "/mlp/down_proj/": 8, "/attn/": 8}},
    "int4-up-only-asym-b16": {"bits": 4, "block_size": 16, "symmetric": False,
                              "keep": {"/lm_head/": 8, "/mlp/down_proj/": 8, "/mlp/gate_proj/": 8,
                                       "/attn/": 8}},
}


def decode_rate(folder: Path, threads: int, n_prompt: int = 128, n_gen: int = 64, reps: int = 3) -> float:
    from edgemed.bench.runners.base import timing_tokens
    from edgemed.runtimes import genai

    m = genai.load(folder, threads)
    prompt = timing_tokens(n_prompt, m.vocab_size)
    rates = []
    for _ in range(reps + 1):  # the first is a warm-up
        gen = genai._generator(m, n_prompt + n_gen, n_prompt + n_gen)
        gen.append_tokens(prompt)
        t0 = time.perf_counter()
        for _ in range(n_gen):
            gen.generate_next_token()
        rates.append(n_gen / (time.perf_counter() - t0))
    return statistics.median(rates[1:])


def choose(rows: list[dict], floor: float = TOP1_FLOOR) -> dict:
    """``CHOICE_RULE`` over result rows (int4 recipes: ``spec["bits"] == 4``), from their
    ``choosing_documents`` statistics only; rows without them (an older file's) are left out.

    >>> def row(name, size, top1, low):
    ...     return {"recipe": name, "spec": {"bits": 4}, "bytes": size,
    ...             "choosing_documents": {"top1": top1, "top1_ci_low": low}}
    >>> rows = [row("a", 100, 0.80, 0.79), row("b", 200, 0.87, 0.86), row("c", 150, 0.86, 0.851),
    ...         {"recipe": "int8", "spec": {"bits": 8}, "bytes": 300,
    ...          "choosing_documents": {"top1": 0.99, "top1_ci_low": 0.98}}]
    >>> c = choose(rows); c["chosen"], c["floor_met"], c["candidates"]
    ('c', True, ['a', 'b', 'c'])
    >>> c = choose(rows[:1]); c["chosen"], c["floor_met"]
    ('a', False)
    >>> choose([])["chosen"] is None
    True
    """
    int4 = [r for r in rows if (r.get("spec") or {}).get("bits") == 4 and "choosing_documents" in r]
    passing = [r for r in int4 if r["choosing_documents"]["top1_ci_low"] >= floor]
    if passing:
        pick, note = min(passing, key=lambda r: (r["bytes"], r["recipe"])), f"smallest with top1_ci_low >= {floor}"
    elif int4:
        pick = max(int4, key=lambda r: (r["choosing_documents"]["top1"], -r["bytes"]))
        note = f"no int4 recipe reaches top1_ci_low >= {floor} on the choosing documents: the highest top-1"
    else:
        pick, note = None, "no int4 recipe with choosing-documents figures in this file"
    return {"rule": CHOICE_RULE, "set": "choosing_documents", "floor": floor,
            "chosen": pick["recipe"] if pick else None, "floor_met": bool(passing), "note": note,
            "candidates": [r["recipe"] for r in int4]}


def heldout_check(row: dict | None, floor: float = TOP1_FLOOR) -> dict | None:
    """One row's held-out top-1 interval against ``floor``: met, missed or undecided.

    >>> heldout_check({"recipe": "x", "heldout": {"top1": 0.9, "top1_ci_low": 0.88, "top1_ci_high": 0.91}})
    {'recipe': 'x', 'top1': 0.9, 'top1_ci_low': 0.88, 'top1_ci_high': 0.91, 'verdict': 'met'}
    """
    if row is None or "heldout" not in row:
        return None
    from edgemed.export.fidelity import judge

    h = row["heldout"]
    return {"recipe": row["recipe"], "top1": h["top1"], "top1_ci_low": h["top1_ci_low"],
            "top1_ci_high": h["top1_ci_high"],
            "verdict": judge(h["top1_ci_low"], h["top1_ci_high"], floor, at_least=True)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default=str(ROOT / "runs" / "genai_frontier"),
                    help="Scratch folder for the builder's fp32 graph and the quantized builds.")
    ap.add_argument("--recipes", default=",".join(RECIPES), help="Comma list of recipe names to run.")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for parity and timing.")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "genai_frontier.json"))
    args = ap.parse_args(argv)
    prov = provenance(__file__)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from edgemed.export import heldout, onnx_genai, parity
    from edgemed.export.config import DEFAULT_THRESHOLDS
    from edgemed.io import write_json_atomic
    from edgemed.models import resolve_model

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    model = resolve_model("default")
    base = work / "fp32-base"
    t0 = time.monotonic()
    if not (base / onnx_genai.ONNX_FILE).is_file():
        onnx_genai.export_fp32(model, base)
    builder_s = round(time.monotonic() - t0, 1)
    ref_file = work / "torch-reference.pkl"  # the PyTorch side is deterministic: computed once
    if ref_file.is_file():
        ref = pickle.loads(ref_file.read_bytes())
    else:
        ref = parity.torch_reference(model, 64, 32, args.threads, len(parity.HEART_PROMPTS))
        ref_file.write_bytes(pickle.dumps(ref))
    refs = fidelity_references(model, work, args.threads)
    rows = []
    for name in args.recipes.split(","):
        recipe = RECIPES[name]
        out = work / name
        t0, quant_s = time.monotonic(), None  # None: built by an earlier run, reused
        if not (out / onnx_genai.ONNX_FILE).is_file():
            onnx_genai.RECIPES["_bench"] = recipe
            onnx_genai.quantize(base, out, "_bench")
            quant_s = round(time.monotonic() - t0, 1)
        types = onnx_genai.matmul_types(out)
        runtime = parity.GenAIRuntime(out, args.threads)
        figures = parity.measure(runtime, ref, DEFAULT_THRESHOLDS["int4" if recipe else "fp32"])
        docs = {s: asdict(heldout.measure(runtime, refs[s])) for s in FIDELITY_SETS}
        runtime.close()
        size = sum(f.stat().st_size for f in out.iterdir() if f.name.startswith(onnx_genai.ONNX_FILE))
        row = {"recipe": name, "spec": recipe, "matmul_types": types, "bytes": size,
               "top1_agreement": figures.top1_agreement, "kl_mean": figures.kl_mean,
               "greedy_match_len_mean": figures.greedy_match_len_mean, **docs,
               "decode_tok_s": round(decode_rate(out, args.threads), 2), "quantize_seconds": quant_s}
        logging.info("%s", json.dumps(row))
        rows.append(row)
    old = json.loads(Path(args.results).read_text()) if Path(args.results).is_file() else {}
    done = {r["recipe"] for r in rows}  # a partial re-run replaces its recipes' rows, keeps the rest
    rows = [r for r in old.get("rows", []) if r["recipe"] not in done] + rows
    choice = choose(rows)
    default = next((r["recipe"] for r in rows if r.get("spec") == onnx_genai.RECIPES["int4"]), None)
    check = {"floor": TOP1_FLOOR, "statistic": "heldout top1 Wilson 95 % interval",
             "chosen": heldout_check(next((r for r in rows if r["recipe"] == choice["chosen"]), None)),
             "export_default": heldout_check(next((r for r in rows if r["recipe"] == default), None)),
             "export_default_recipe": default}
    logging.info("choice: %s; held-out check: %s", json.dumps(choice), json.dumps(check))
    write_json_atomic(args.results, {
        **prov,
        "command": "python benchmarks/genai_frontier.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "onnxruntime_genai": onnx_genai.require_genai(), "threads": args.threads,
        "builder_seconds": builder_s, "parity": {"prompts": len(ref.prompt_ids), "tf_tokens": 64},
        "sets": fidelity_sets(refs, ref), "choice": choice, "heldout_check": check,
        "timing": {"n_prompt": 128, "n_gen": 64, "repetitions": 3}, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
