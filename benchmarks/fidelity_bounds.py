"""Fidelity bounds chosen on the choosing documents, for the gates that read the held-out text.

    .venv/bin/python benchmarks/fidelity_bounds.py      # export 13 builds + measure, ≈ 25 min on 2 cores

The export stage gates each build's top-1 agreement and mean KLD on the held-out heart text by
their 95 % intervals (``edgemed/export/parity.py``). The bounds they are gated against are chosen
here, on other text of the same kind: the choosing documents (``heldout.choosing_documents``: 24
single-turn HealthBench records outside the heart subset, physician-written ideal completions, as
teacher-forced answers in the chat template). This script never reads a held-out figure.

1. Exports the default model (SmolLM2-135M) with ``edgemed export`` to every build the kit makes:
   GGUF f16…q2_k, ONNX fp32/int8/int4 (optimum), ONNX Runtime GenAI fp32/int8/int4.
2. Measures each build against the fp32 PyTorch model on the choosing documents: llama.cpp's
   ``--kl-divergence`` statistics (``edgemed/export/fidelity.py``).
3. Proposes one bound pair per quant key (``DEFAULT_THRESHOLDS``), from the least faithful build
   of that key, by the rule below, fixed before any figure was seen:

   - top-1 bound: 1 − max(1.5 × (1 − top-1), 0.01), rounded down to 0.01: a build may lose half
     again what the default model's build loses on the choosing text before it fails (room for the
     change of topic to heart text and for another machine's kernels), and at least 1 point;
   - KLD bound: max(2 × mean KLD, 0.002), rounded up to two significant digits.

   These bounds catch a broken or degraded build (a wrong recipe, damaged weights, a runtime that
   reads the file wrongly); they do not certify a low-bit build of a 135M model as faithful, and a
   larger model, which quantizes better, clears them with room.

Writes benchmarks/results/fidelity_bounds.json; ``edgemed/export/config.py``'s DEFAULT_THRESHOLDS
copies the proposed top-1 and KL bounds, and ``tests/export/test_config.py`` checks they agree.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from _common import cached_reference, provenance, write_result  # noqa: E402  (benchmarks/ is the script's folder)

BUILDS = ("gguf:f16,gguf:q8_0,gguf:q5_k_m,gguf:q4_k_m,gguf:q4_0,gguf:q3_k_m,gguf:q2_k,"
          "onnx:fp32,onnx:int8,onnx:int4,onnx-genai:fp32,onnx-genai:int8,onnx-genai:int4")
LOSS_FACTOR = 1.5   # top-1: a build may lose this many times the choosing text's loss
KLD_FACTOR = 2.0    # mean KLD: this many times the choosing text's
MIN_LOSS = 0.01     # the top-1 bound is at most 0.99
MIN_KLD = 0.002     # the KLD bound is at least this


def proposed_bounds(top1: float, kld_mean: float) -> dict[str, float]:
    """The rule: bounds for a quant from its least faithful build's choosing-document figures.

    >>> proposed_bounds(0.9456, 0.0062)
    {'top1_agreement': 0.91, 'kl_mean': 0.013}
    >>> proposed_bounds(1.0, 0.0)
    {'top1_agreement': 0.99, 'kl_mean': 0.002}
    """
    loss = max(LOSS_FACTOR * (1.0 - top1), MIN_LOSS)
    floor = math.floor(round((1.0 - loss) * 100, 9)) / 100
    kld = max(KLD_FACTOR * kld_mean, MIN_KLD)
    digits = 1 - math.floor(math.log10(kld))  # two significant digits
    ceil = math.ceil(round(kld * 10 ** digits, 9)) / 10 ** digits
    return {"top1_agreement": round(floor, 2), "kl_mean": round(ceil, digits)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default=str(ROOT / "runs" / "fidelity_bounds"),
                    help="Scratch folder: the export and the choosing documents' fp32 reference.")
    ap.add_argument("--builds", default=BUILDS, help="Comma list of FORMAT:QUANT builds to measure.")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for export and measurement.")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "fidelity_bounds.json"))
    args = ap.parse_args(argv)
    prov = provenance(__file__)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from edgemed.export import heldout, parity
    from edgemed.export.config import ExportConfig
    from edgemed.export.manifest import load_manifest
    from edgemed.export.stage import run as export
    from edgemed.models import resolve_model

    work = Path(args.work)
    out = work / "export"
    manifest = out / "manifest.json"
    wanted = {b.replace(":", "-") for b in args.builds.split(",")}
    if not (manifest.is_file() and wanted <= {a.name for a in load_manifest(manifest).artifacts}):
        export(ExportConfig(model="default", out=str(out), formats=args.builds, allow_degraded=True,
                            threads=args.threads))
    docs = heldout.choosing_documents()
    ref = cached_reference(resolve_model("default"), work / "choosing-source.npy", args.threads, docs)
    rows = []
    for a in load_manifest(manifest).artifacts:
        if a.name not in wanted:
            continue
        path = out / a.path
        runtime = parity.open_runtime(a.format, path, args.threads, n_ctx=ref.max_len + 8)
        try:
            stats = heldout.measure(runtime, ref)
        finally:
            runtime.close()
        rows.append({"build": a.name, "format": a.format, "quant": a.quant, "bytes": a.bytes,
                     "choosing_documents": dataclasses.asdict(stats)})
        logging.info("%s: top-1 %.4f [%.4f, %.4f], KLD %.5f ± %.5f", a.name, stats.top1, stats.top1_ci_low,
                     stats.top1_ci_high, stats.kld_mean, stats.kld_mean_se)
    bounds = {}
    for quant in dict.fromkeys(r["quant"] for r in rows):
        group = [r["choosing_documents"] for r in rows if r["quant"] == quant]
        worst_top1, worst_kld = min(s["top1"] for s in group), max(s["kld_mean"] for s in group)
        bounds[quant] = {**proposed_bounds(worst_top1, worst_kld), "from_top1": worst_top1,
                         "from_kld_mean": worst_kld,
                         "builds": [r["build"] for r in rows if r["quant"] == quant]}
    write_result(args.results, {
        **prov,
        "command": "python benchmarks/fidelity_bounds.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "threads": args.threads,
        "rule": {"loss_factor": LOSS_FACTOR, "kld_factor": KLD_FACTOR, "min_loss": MIN_LOSS, "min_kld": MIN_KLD,
                 "text": "top-1 bound 1 - max(1.5 (1 - top-1), 0.01) floored to 0.01; KLD bound "
                         "max(2 KLD, 0.002) ceiled to two significant digits; from the least faithful "
                         "build of each quant key, on the choosing documents"},
        "sets": {"choosing_documents": {"docs": len(docs), "positions": ref.n_positions,
                                        "ids": [d.doc_id for d in docs]}},
        "rows": rows, "bounds": bounds})
    for quant, b in bounds.items():
        print(f"{quant:8s} top-1 ≥ {b['top1_agreement']:.2f} (from {b['from_top1']:.4f})   "
              f"KLD ≤ {b['kl_mean']:g} (from {b['from_kld_mean']:.5f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
