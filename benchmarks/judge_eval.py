"""Judges measured: fit the local LLM judge's thresholds and blend on TUNE cases, then score every
judge on a held-out set that nothing was tuned on.

    .venv/bin/python benchmarks/judge_eval.py tune       # ≈ 30 min: writes the frozen calibration
    .venv/bin/python benchmarks/judge_eval.py fresh4     # ≈ 10 min: the unspent held-out set, measured once
    .venv/bin/python benchmarks/judge_eval.py timing     # ≈ 6 min: only the HealthBench-length timing, redone

Order matters and is the point: ``tune`` reads the tune cases (edgemed/judges/proxy/assets/cases.jsonl,
540) and the held-out sets already spent (SPENT_SETS: each measured once, then it became tuning data),
and writes edgemed/judges/assets/judge_calibration.json (P(yes) thresholds, proxy-blend weights, their
grouped cross-validated accuracy). A held-out stage (``heldout``, ``fresh``…) never fits anything: it
runs ``edgemed judge eval``'s code on its cases for the proxy, the LLM judge and the blend, writes
benchmarks/results/judge_eval*.json and rebuilds edgemed/judges/assets/judge_accuracy.json
(fingerprint → held-out accuracy, read by the reports); it refuses a set the calibration was fitted on.
``timing`` measures the KV-prefix saving and the cost per criterion on HealthBench-length answers.
The fitting and both package assets are ``edgemed.judges.tuning``'s; this script grades and records.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from _common import provenance  # noqa: E402  (puts the repository on sys.path)

from edgemed.data.schema import RubricItem  # noqa: E402
from edgemed.io import write_json_atomic  # noqa: E402
from edgemed.judges import evaluation as ev  # noqa: E402
from edgemed.judges.judge_model import require_judge_model  # noqa: E402
from edgemed.judges.yesno import CALIBRATION  # noqa: E402
from edgemed.judges.tuning import fit_per_sign, recorded_accuracies, write_calibration, write_recorded  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
# Held-out sets written fresh for the judge (each with a .md saying how), each used once: stage → (cases, results)
FRESH_SETS = {"fresh": ("judge_cases_fresh.jsonl", "judge_eval_fresh.json"),
              "fresh2": ("judge_cases_fresh2.jsonl", "judge_eval_fresh2.json"),
              "fresh3": ("judge_cases_fresh3.jsonl", "judge_eval_fresh3.json"),
              "fresh4": ("judge_cases_fresh4.jsonl", "judge_eval_fresh4.json")}
# Held-out sets already measured once: spent as held-out, they join the tune cases (``tune`` fits on
# them too, and the stages that measured them refuse to run against a calibration fitted on them).
SPENT_SETS = ("heldout", "fresh", "fresh2", "fresh3", "fresh4")  # fresh4 measured at a9f49b9, after the last fit


def case_file(stage: str) -> Path:
    """The case file a held-out stage reads."""
    if stage == "heldout":
        return ev.SHIPPED_HELDOUT
    return ROOT / "edgemed" / "judges" / "assets" / FRESH_SETS[stage][0]


def here() -> dict:
    """The shared provenance, with the load average taken when this script started."""
    p = provenance(__file__)
    p.pop("script")  # each results file names its stage
    return {**p, "load_average_at_start": LOAD_AT_START}


def llm_p_yes(cases, **judge_kwargs) -> tuple[list[float | None], float]:
    """Raw P(yes) per case from the local yes/no judge (criteria of one response together)."""
    from edgemed.judges.yesno import YesNoJudge

    judge = YesNoJudge(require_judge_model(), threshold=0.5, **judge_kwargs)
    try:
        _, values, seconds = ev.judge_cases(_RawJudge(judge), cases)
    finally:
        judge.close()
    return values, seconds


class _RawJudge:
    """Wraps a YesNoJudge so that judge_cases collects the raw P(yes) (kept in ``raw``) as ``met``."""

    def __init__(self, inner):
        self.inner, self.fingerprint = inner, inner.fingerprint

    def grade(self, conversation, items):
        out = self.inner.grade(conversation, items)
        from edgemed.judges.base import Judgement

        return [Judgement(None if v.met is None else json.loads(v.raw)["p_yes"]) for v in out]


def tune(args) -> None:
    """Fit the LLM judge's thresholds and the LLM+proxy blend on the tune cases and the spent held-out
    sets, one of each for positive criteria and one for pitfalls (their P(yes) behave differently), with
    scenario-grouped 5-fold CV figures, pooled and per source, for both the single and the per-sign fit.

    The proxy's P(met) is out-of-fold on its own tune cases; on the spent sets the shipped proxy
    (fitted on the tune cases only) grades them as it would any new case."""
    from edgemed.judges import build_judge
    from edgemed.judges.proxy import tuning
    from edgemed.judges.yesno import prompt_digest

    cases = ev.load_cases(tuning.default_cases_path())
    raw_cases = tuning.load_cases()
    assert [c["id"] for c in raw_cases] == [c.id for c in cases], "tune files disagree"
    # P(yes) per source survives a crash (or a second fit) in a scratch file keyed on the prompt digest
    scratch = RESULTS / ".judge_tune_p_llm.json"
    saved = json.loads(scratch.read_text()) if scratch.is_file() else {}
    saved = saved.get(prompt_digest(), {}) if "digest" not in saved else {}  # older single-set layout: ignore
    recorded = json.loads((RESULTS / "judge_tune.json").read_text()) if (RESULTS / "judge_tune.json").is_file() else {}
    sets = {"tune": (cases, raw_cases)}
    for name in SPENT_SETS:
        spent = ev.load_cases(case_file(name))
        # scenario = the set and the question (one response per question in these files), for grouped folds
        sets[name] = (spent, [{"id": f"{name}_{hashlib.sha256(c.q.encode()).hexdigest()[:10]}-{c.id}",
                               "response": c.response} for c in spent])
    p_llm, p_proxy, sources, origin = [], [], [], {}
    for name, (set_cases, _) in sets.items():
        ids = [c.id for c in set_cases]
        if saved.get(name, {}).get("ids") == ids:
            p, origin[name] = saved[name]["p"], "an earlier pass of this prompt (scratch file)"
        elif name == "tune" and args.reuse_p and recorded.get("prompt_digest") == prompt_digest() \
                and recorded.get("ids", [])[:len(ids)] == ids:
            p = recorded["p_llm"][:len(ids)]  # the recorded pass of the same prompt
            origin[name] = f"judge_tune.json of {recorded.get('commit', '?')[:7]}"
        else:
            origin[name] = "this run"
            print(f"tune: {name}: {len(set_cases)} cases; LLM judge P(yes) ...", flush=True)
            p = _collect(set_cases)
            full = json.loads(scratch.read_text()) if scratch.is_file() else {}
            full = {} if "digest" in full else full
            full.setdefault(prompt_digest(), {})[name] = {"ids": ids, "p": p}
            scratch.write_text(json.dumps(full))
        p_llm += list(p)
        sources += [name] * len(set_cases)
        if name == "tune":
            x, absent = tuning.case_features(raw_cases)
            p_proxy += tuning.cross_validated_met(x, absent, raw_cases).tolist()  # never saw its scenario
        else:
            with build_judge({"backend": "proxy", "cache_path": "off"}) as judge:
                p_proxy += [0.5 if v is None else float(v) for v in ev.judge_cases(judge, set_cases)[1]]
    all_cases = [c for set_cases, _ in sets.values() for c in set_cases]
    all_raw = [r for _, raw in sets.values() for r in raw]
    calibration, figures = fit_per_sign(np.array(p_llm), np.array(p_proxy), all_cases, all_raw, sources)
    out = {"script": "benchmarks/judge_eval.py tune", **here(), "cases": "edgemed/judges/proxy/assets/cases.jsonl",
           "tune_sets": {name: str(case_file(name).relative_to(ROOT)) for name in SPENT_SETS},
           "prompt_digest": prompt_digest(), "p_llm_source": origin, **calibration, "tune_figures": figures,
           "note": "fitted on the tune cases and on the held-out sets already spent (tune_sets), one threshold "
                   "and blend for positive criteria and one for pitfalls; frozen before any run on an unspent set"}
    write_calibration(out)
    write_json_atomic(RESULTS / "judge_tune.json", {**out, "p_llm": p_llm, "p_proxy_oof": p_proxy,
                                                   "sources": sources, "ids": [c.id for c in all_cases]})
    print(json.dumps({k: figures[k] for k in ("n", "llm_cv_threshold_per_sign", "blend_cv_per_sign", "by_source")},
                     indent=1))


def _collect(cases) -> list[float]:
    values, _ = llm_p_yes(cases)
    return [0.5 if v is None else v for v in values]


def heldout(args) -> None:
    """Every judge on the held-out cases; nothing is fitted. The LLM alone and the blend come from one
    pass of the blend judge (the same P(yes) feeds both: the LLM alone is P(yes) ≥ its threshold)."""
    from edgemed.judges import build_judge
    from edgemed.judges.base import Judgement
    from edgemed.judges.yesno import load_calibration

    fresh = args.stage in FRESH_SETS
    fitted_on = json.loads(CALIBRATION.read_text()).get("tune_sets", {})
    if args.stage in fitted_on:
        sys.exit(f"judge_eval.py {args.stage}: {CALIBRATION.name} was fitted on these cases "
                 f"({fitted_on[args.stage]}); a figure on them would be a training figure")
    cases = ev.load_cases(case_file(args.stage))
    labels = [c.met for c in cases]
    out = {"script": f"benchmarks/judge_eval.py {args.stage}", **here(),
           "cases": str(case_file(args.stage).relative_to(ROOT)), "n": len(cases),
           "calibration": json.loads(CALIBRATION.read_text())["date"],
           "load_average_at_start": LOAD_AT_START,
           "judges": [{"judge": "always not met", "fingerprint": None,
                       "accuracy": sum(not y for y in labels) / len(labels)}]}
    path = RESULTS / (FRESH_SETS[args.stage][1] if fresh else "judge_eval.json")
    if not fresh and path.is_file():  # keep the timing section a separate `timing` run wrote
        out["healthbench_length"] = json.loads(path.read_text()).get("healthbench_length")

    def record(name, fingerprint, preds, seconds, **extra):
        out["judges"].append({"judge": name, "fingerprint": fingerprint, **ev.summarize(cases, preds, seconds), **extra})
        write_json_atomic(path, out)  # after every judge: a later crash loses nothing
        print(f"  {name}: accuracy {out['judges'][-1]['accuracy']:.3f}", flush=True)

    print("heldout: proxy ...", flush=True)
    with build_judge({"backend": "proxy", "cache_path": "off"}) as judge:
        preds, _, seconds = ev.judge_cases(judge, cases)
        record("proxy", judge.fingerprint, preds, seconds)

    print("heldout: local LLM judge (P(yes)) with the proxy blend ...", flush=True)
    raws: list[dict | None] = []

    class Keep:  # keeps each verdict's raw figures; verdicts pass through unchanged
        def __init__(self, inner):
            self.inner, self.fingerprint = inner, inner.fingerprint

        def grade(self, conversation, items):
            verdicts = self.inner.grade(conversation, items)
            raws.extend(None if v.met is None else json.loads(v.raw) for v in verdicts)
            return verdicts

    cfg = {"backend": "llamacpp", "cache_path": "off", "params": {"with_proxy": True, "n_threads": args.threads}}
    with build_judge(cfg) as judge:
        blend_fp = judge.fingerprint
        _, _, seconds = ev.judge_cases(Keep(judge.inner), cases)
    # judge_cases groups cases by response; map the raw figures back to case order the same way
    order = [i for ix in _by_response(cases).values() for i in ix]
    by_case: list[dict | None] = [None] * len(cases)
    for i, r in zip(order, raws):
        by_case[i] = r
    cal = load_calibration()
    llm_fp = blend_fp.split("|proxy-v")[0]  # the LLM judge alone: the same fingerprint without the blend
    llm_preds = [None if r is None else r["p_yes"] >= (cal["threshold_pitfall"] if c.points < 0 else cal["threshold"])
                 for r, c in zip(by_case, cases)]
    blend_preds = [None if r is None else r["blend"] >= 0.5 for r in by_case]
    note = "one pass of the blend judge; seconds include the proxy"
    record("local LLM judge alone (Qwen2.5-Coder-1.5B Q4_K_M, yes/no)", llm_fp, llm_preds, seconds, timing_note=note)
    record("local LLM judge + proxy blend (the llamacpp default)", blend_fp, blend_preds, seconds, timing_note=note)
    record_stage(args)  # the shipped held-out set's figures join those of the fresh sets
    print(json.dumps({r["judge"]: round(r["accuracy"], 3) for r in out["judges"]}, indent=1))


def record_stage(args) -> None:
    """Rebuild the package's recorded accuracies (what reports print as "held-out accuracy") from every
    held-out results file: per judge fingerprint, its newest measurement on a set it was not fitted on."""
    runs = [(name, json.loads((RESULTS / name).read_text()))
            for name in ["judge_eval.json", *(results for _, results in FRESH_SETS.values())] if (RESULTS / name).is_file()]
    payload = recorded_accuracies(runs)
    write_recorded(payload)
    print(f"wrote {ev.RECORDED}: {len(payload['judges'])} judges")


def _by_response(cases) -> dict:
    from collections import defaultdict

    groups = defaultdict(list)
    for i, c in enumerate(cases):
        groups[(c.q, c.response)].append(i)
    return groups


def timing_only(args) -> None:
    path = RESULTS / "judge_eval.json"
    out = json.loads(path.read_text()) if path.is_file() else {}
    out[args.timing_key] = {**healthbench_timing(args), **here()}
    write_json_atomic(path, out)
    print(json.dumps(out[args.timing_key], indent=1))


LOAD_AT_START = None


def healthbench_timing(args) -> dict:
    """Seconds per criterion grading HealthBench heart answers (their ideal completions) with every
    rubric item, with and without reusing the KV prefix across one answer's criteria."""
    from edgemed.data.healthbench import load_healthbench
    from edgemed.data.heart import heart_subset
    from edgemed.judges.yesno import YesNoJudge

    from edgemed.data.healthbench import offline_path

    ideal = {}  # the loader keeps rubrics, not ideal completions: read them from the same file
    with open(offline_path(), encoding="utf-8") as f:  # not splitlines(): texts hold U+2028
        rows = [json.loads(line) for line in f if line.strip()]
    for row in rows:
        text = (row.get("ideal_completions_data") or {}).get("ideal_completion")
        if text:
            ideal[row["prompt_id"]] = text
    records = [r for r in heart_subset(load_healthbench(None)).records if r.prompt_id in ideal][: args.hb_records]
    jobs = [(r.prompt + [{"role": "assistant", "content": ideal[r.prompt_id]}], r.rubrics) for r in records]
    out: dict = {"n_records": len(jobs), "n_criteria": sum(len(items) for _, items in jobs),
                 "prompt_ids": [r.prompt_id for r in records]}
    # The slow reference schedule (every criterion re-reads the whole conversation, ~7x the cost)
    # grades only the first answers, and the ratios compare seconds per criterion.
    schedules = {"with_prefix_reuse": (dict(reuse_prefix=True), jobs),  # the default: one batch per answer
                 "one_criterion_per_batch": (dict(reuse_prefix=True, parallel=1), jobs),
                 "without_prefix_reuse": (dict(reuse_prefix=False, parallel=1), jobs[: args.reference_records])}
    for key, (kwargs, subset) in schedules.items():
        judge = YesNoJudge(require_judge_model(), n_threads=args.threads, **kwargs)
        judge.grade([{"role": "user", "content": "warm-up"}, {"role": "assistant", "content": "ok"}],
                    [RubricItem("Says ok.", 1)])
        warm = judge.tokens_evaluated  # the warm-up is not part of the figure
        n = sum(len(items) for _, items in subset)
        t0 = time.perf_counter()
        for conv, items in subset:
            judge.grade(conv, items)
        seconds = time.perf_counter() - t0
        tokens = judge.tokens_evaluated - warm
        out[key] = {"n_records": len(subset), "n_criteria": n, "seconds": seconds,
                    "seconds_per_criterion": seconds / n, "tokens_evaluated": tokens,
                    "tokens_per_criterion": tokens / n, "tokens_per_second": tokens / seconds, "parallel": judge.parallel,
                    "n_threads": args.threads}
        judge.close()
    from edgemed.runtimes import llamacpp as runtime

    llm = runtime.load(require_judge_model(), n_ctx=256, n_batch=8)  # weights mapped, not read: tokens and shapes
    try:
        out["tokens"] = token_split(llm, jobs)
        out["compute"] = compute_yardstick(llm, out["with_prefix_reuse"]["tokens_per_second"], args.threads)
    finally:
        llm.close()
    out["compute"].update(llama_bench_yardstick(out["with_prefix_reuse"]["tokens_per_second"], args.threads))
    per = {k: out[k]["seconds_per_criterion"] for k in schedules}
    out["saving_x"] = per["without_prefix_reuse"] / per["with_prefix_reuse"]
    out["batching_x"] = per["one_criterion_per_batch"] / per["with_prefix_reuse"]
    out["goal_seconds_per_criterion"] = 1.0
    out["goal_met"] = per["with_prefix_reuse"] <= 1.0
    from edgemed.runtimes.llamacpp import build_info

    out["llama_cpp_build"] = build_info()
    return out


def token_split(llm, jobs) -> dict:
    """Where a criterion's tokens come from (``llm``: the judge GGUF's llama_cpp.Llama, for its
    tokenizer): the rules (once per process), each answer's conversation (once per answer, shared by
    its criteria) and each criterion's own suffix."""
    from edgemed.judges.yesno import RULES, prompt_parts

    def n(text):
        return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    rules = n(f"<|im_start|>system\n{RULES}<|im_end|>\n")
    prefixes = [n(prompt_parts(conv, items[0])[0]) - rules for conv, items in jobs]
    suffixes = [n(prompt_parts(conv, item)[1]) for conv, items in jobs for item in items]
    criteria = [n(item.criterion.strip()) for _, items in jobs for item in items]
    n_criteria = len(suffixes)
    return {"rules": rules, "conversation_per_answer_mean": sum(prefixes) / len(prefixes),
            "suffix_per_criterion_mean": sum(suffixes) / n_criteria,
            # the criterion's own words, and what the prompt wraps around them (label, end of turn, reply header)
            "criterion_text_per_criterion_mean": sum(criteria) / n_criteria,
            "wrapper_per_criterion_mean": (sum(suffixes) - sum(criteria)) / n_criteria,
            "conversation_per_criterion": sum(prefixes) / n_criteria,
            "share_of_conversation": sum(prefixes) / (sum(prefixes) + sum(suffixes))}


def compute_yardstick(llm, tokens_per_second: float, threads: int) -> dict:
    """The judge's (``llm``) prompt processing as arithmetic (2 FLOP per matrix weight per token; the token
    embedding table is a lookup, and logits are computed for one token per criterion only) beside
    what this machine's fp32 GEMM reaches (torch, ``threads`` threads, 2048², best of 5). A yardstick
    for a compute-bound step, as the bench's decode roofline is for a memory-bound one; llama.cpp's
    Q4_K kernels multiply in int8, so they can pass the fp32 figure."""
    import llama_cpp
    import torch

    model = llm._model.model
    n_params = int(llama_cpp.llama_model_n_params(model))
    embedding = int(llama_cpp.llama_model_n_embd(model)) * llm.n_vocab()
    torch.set_num_threads(threads)
    a = torch.randn(2048, 2048, generator=torch.Generator().manual_seed(0))
    a @ a  # warm-up
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t0)
    gemm = 2 * 2048 ** 3 / best / 1e9
    judge = 2 * (n_params - embedding) * tokens_per_second / 1e9
    return {"n_params": n_params, "embedding_params": embedding, "judge_gflop_s": judge, "fp32_gemm_gflop_s": gemm,
            "judge_over_fp32_gemm": judge / gemm, "threads": threads}


def llama_bench_yardstick(tokens_per_second: float, threads: int, repetitions: int = 3) -> dict:
    """llama.cpp's own prompt-processing rate for the judge GGUF on this machine (``llama-bench``, the
    same libraries the judge loaded, ``threads`` threads, batch 512; a 512-token prompt on an empty
    cache and after 512 cached tokens, as the judge's batches sit after the rules and the conversation),
    and the judge's rate as a fraction of it: near 1 means the judge is bound by the model's arithmetic
    on this CPU, not by how it batches, and only fewer tokens (or a faster build) make it faster."""
    from edgemed.bench.config import LatencyConfig
    from edgemed.bench.latency.llama_bench import command
    from edgemed.export.llama_tools import run_tool
    from edgemed.runtimes.llamacpp import timed_worker_env

    cfg = LatencyConfig(n_prompt=512, n_gen=0, repetitions=repetitions)  # the bench's yardstick command, plus depths
    args = command(str(require_judge_model()), cfg, threads) + ["-d", "0,512"]
    rows = json.loads(run_tool("llama-bench", args, env=timed_worker_env()))
    rates = {f"pp512_at_depth_{r.get('n_depth', 0)}": r["avg_ts"] for r in rows}
    best = max(rates.values())
    return {"llama_bench_tokens_per_second": rates, "llama_bench_repetitions": repetitions,
            "judge_over_llama_bench_pp512": tokens_per_second / best}


def main() -> int:
    import os

    global LOAD_AT_START
    LOAD_AT_START = os.getloadavg()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", choices=["tune", "heldout", *FRESH_SETS, "timing", "record"],
                    help="tune: fit on tune cases; heldout: measure on the shipped held-out cases, fit nothing; "
                         "fresh, fresh2, fresh3: the same on a set written fresh for the judge (judge_eval_<set>.json); "
                         "timing: redo the cost figure on an idle machine and update judge_eval.json; "
                         "record: rebuild the package's recorded accuracies from those files.")
    ap.add_argument("--threads", type=int, default=2, help="llama.cpp threads (2 = this machine's cores).")
    ap.add_argument("--hb-records", type=int, default=5, help="HealthBench heart answers for the timing test "
                    "(the goal is read on at least 5).")
    ap.add_argument("--reference-records", type=int, default=1,
                    help="timing: answers the slow no-prefix-reuse reference grades (it only sets a ratio).")
    ap.add_argument("--timing-key", default="healthbench_length",
                    help="timing: the judge_eval.json key to write, so that another llama.cpp build (put first on "
                         "PYTHONPATH) is recorded beside the installed one instead of over it.")
    ap.add_argument("--reuse-p", action="store_true",
                    help="tune: reuse the tune cases' P(yes) recorded in judge_tune.json for the same prompt "
                         "instead of grading the 540 tune cases again (only the fit changes).")
    args = ap.parse_args()
    {"tune": tune, "heldout": heldout, "timing": timing_only, "record": record_stage,
     **{k: heldout for k in FRESH_SETS}}[args.stage](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
