"""Heart-calibrated GGUF quants and the llama.cpp tools they need (llama-imatrix, llama-quantize,
llama-bench, built by scripts/build_llama_tools.sh from the runtime's own source).

Tiny random Llama in the default suite (wiring, manifest, keys, llama-bench rows); the default model
in the slow suite, where an importance matrix should move parity.
"""

from __future__ import annotations

import pytest

from edgemed.bench.latency import llama_bench
from edgemed.bench.config import LatencyConfig
from edgemed.bench.targets import Target
from edgemed.errors import EnvironmentFailure
from edgemed.export import llama_tools, stage
from edgemed.export.config import ExportConfig


def export(model, out, imatrix, formats="gguf:q4_0,gguf:q8_0", **kw):
    return stage.run(ExportConfig(model=str(model), out=str(out), formats=formats, imatrix=imatrix,
                                  n_prompts=1, tf_tokens=8, greedy_tokens=2, allow_degraded=True, **kw))


@pytest.fixture(scope="module")
def pair(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("imatrix")
    return export(tiny_model_dir, root / "plain", "none"), export(tiny_model_dir, root / "heart", "heart")


def test_calibrated_quants_record_their_matrix(pair):
    plain, heart = pair
    q4, q8 = heart.artifact("gguf-q4_0"), heart.artifact("gguf-q8_0")
    assert q4.imatrix["source"] == "heart" and len(q4.imatrix["text_sha256"]) == 64
    assert q8.imatrix is None  # q8_0 ignores an importance matrix
    assert plain.artifact("gguf-q4_0").imatrix is None
    # Different weights, different key: a plain export never reuses a calibrated file, or back.
    assert q4.sha256 != plain.artifact("gguf-q4_0").sha256
    assert q4.inputs_key != plain.artifact("gguf-q4_0").inputs_key
    assert q8.sha256 == plain.artifact("gguf-q8_0").sha256
    assert q4.parity.tokenizer_equal and q4.tensor_types.get("Q4_0")


def test_llama_bench_times_the_same_gguf_once(pair, tmp_path):
    _, heart = pair
    a = heart.artifact("gguf-q4_0")
    t = Target("h/" + a.name, "h", a.name, "gguf", a.quant, str(a.abspath), a.bytes, a.bytes, a.sha256, 1)
    cfg = LatencyConfig(n_prompt=16, n_gen=8, repetitions=2)
    rows = llama_bench.run(t, cfg, 2, tmp_path)
    assert sorted(r["test"] for r in rows) == ["pp16", "tg8"]
    assert all(r["avg_ts"] > 0 and r["harness"] == "llama-bench" and r["n_threads"] == 2 for r in rows)
    assert llama_bench.run(t, cfg, 2, tmp_path) == rows  # logged: not timed again
    assert llama_bench.run(t, LatencyConfig(n_prompt=16, n_gen=4, repetitions=2), 2, tmp_path) != rows
    # The report reads the kit's rows from the same log and passes over the yardstick's.
    from edgemed.bench.latency.timing import latency_rows

    assert latency_rows(t, cfg, tmp_path) == []


def test_missing_tools_say_how_to_build_them(monkeypatch, tmp_path):
    monkeypatch.setattr(llama_tools, "tools_bin_dir", lambda: tmp_path)
    with pytest.raises(EnvironmentFailure, match="build_llama_tools.sh"):
        llama_tools.tool_path("llama-imatrix")


@pytest.mark.slow
def test_heart_imatrix_improves_low_bit_parity_on_the_default_model(tmp_path):
    """On the held-out heart text the export stage measures (thousands of positions, none in the
    calibration text), each heart build agrees with fp32 more often and diverges less than the plain
    build of the same quant, at equal size. The issue's +0.03 bar for q4_k_m is judged with its
    paired confidence interval by benchmarks/gguf_imatrix.py, not here: on the 512 choosing-prompt
    positions the same gain read 0.023 on one build of llama.cpp and 0.021 on another."""
    def run(out, imatrix):
        return stage.run(ExportConfig(model="default", out=str(out), formats="gguf:q4_k_m,gguf:q4_0,gguf:q3_k_m",
                                      imatrix=imatrix, allow_degraded=True))

    plain, heart = run(tmp_path / "plain", "none"), run(tmp_path / "heart", "heart")
    names = ("gguf-q4_k_m", "gguf-q4_0", "gguf-q3_k_m")
    held = {n: (plain.artifact(n).parity.heldout, heart.artifact(n).parity.heldout) for n in names}
    assert all(p.n_positions >= 1000 for p, _ in held.values()), held
    gain = {n: h.top1 - p.top1 for n, (p, h) in held.items()}
    assert all(g > 0 for g in gain.values()), gain
    assert all(h.kld_mean < p.kld_mean for p, h in held.values()), held
    assert abs(heart.artifact("gguf-q4_k_m").bytes - plain.artifact("gguf-q4_k_m").bytes) < 4096


def test_llama_bench_is_timed_with_the_bench_workers_wait_policy(monkeypatch):
    """The bench process runs PASSIVE (it shares cores with judges); its timed workers and llama-bench
    must not: under PASSIVE a small model decodes far slower, and the yardstick would flatter the kit."""
    from edgemed.runtimes import llamacpp

    seen = {}
    monkeypatch.setattr(llama_tools, "run_tool", lambda name, args, timeout=None, env=None: seen.update(env=env) or "[]")
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setenv(llamacpp.DEFAULTED, "1")  # edgemed chose PASSIVE, not the user
    llama_bench.time_gguf("m.gguf", LatencyConfig(n_prompt=16, n_gen=4, repetitions=1), 2)
    assert "OMP_WAIT_POLICY" not in seen["env"] and seen["env"][llamacpp.KEEP_OPENMP_DEFAULT] == "1"
    monkeypatch.delenv(llamacpp.DEFAULTED)  # the user's own choice is kept
    llama_bench.time_gguf("m.gguf", LatencyConfig(n_prompt=16, n_gen=4, repetitions=1), 2)
    assert seen["env"]["OMP_WAIT_POLICY"] == "PASSIVE"


def test_a_tool_gets_the_variant_chosen_after_its_env_was_built(monkeypatch, tmp_path):
    """run_tool chooses the CPU variant before it runs the tool; an env the caller built earlier (the
    timed worker's, before any llama_cpp import) must still hand the tool that variant's libraries."""
    import subprocess

    from edgemed.runtimes import llamacpp

    monkeypatch.delenv("LLAMA_CPP_LIB_PATH", raising=False)
    env = llamacpp.timed_worker_env()  # built before the choice
    monkeypatch.setattr(llamacpp, "select_variant", lambda: monkeypatch.setenv("LLAMA_CPP_LIB_PATH", str(tmp_path)))
    monkeypatch.setattr(llama_tools, "tool_path", lambda name: tmp_path / name)
    seen = {}
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: seen.update(env=kw["env"])
                        or subprocess.CompletedProcess(cmd, 0, "[]", ""))
    llama_tools.run_tool("llama-bench", [], env=env)
    assert seen["env"]["LLAMA_CPP_LIB_PATH"] == str(tmp_path)
    assert seen["env"]["LD_LIBRARY_PATH"].split(":")[0] == str(tmp_path)
