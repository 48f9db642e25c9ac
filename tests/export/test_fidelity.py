"""llama.cpp's KL-divergence statistics (``fidelity.py``) on hand-made arrays, the gates that read
their intervals, and the like-for-like gate of a LoRA build."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgemed.export import fidelity
from edgemed.export.fidelity import PositionFigures, Statistics
from edgemed.export.manifest import Parity
from edgemed.export.parity import judge


def probs(*rows) -> np.ndarray:
    return np.log(np.array(rows, dtype=np.float64))


def test_identical_builds_have_zero_divergence_and_agree_everywhere():
    ref = np.random.default_rng(0).normal(size=(300, 50))
    f = fidelity.position_figures(ref, ref + 3.0, np.arange(300) % 50)  # a constant shift: same softmax
    assert np.allclose(f.kld, 0.0, atol=1e-12) and np.allclose(f.dp, 0.0, atol=1e-12) and f.same_top.all()


def test_per_position_figures_follow_llama_cpp_definitions():
    ref = probs([0.5, 0.25, 0.25], [0.9, 0.05, 0.05])
    build = probs([0.25, 0.5, 0.25], [0.9, 0.05, 0.05])
    f = fidelity.position_figures(ref, build, np.array([2, 0]))
    # KLD = Σ p_ref·ln(p_ref/p_build): 0.5·ln 2 + 0.25·ln 0.5 = 0.25·ln 2
    assert f.kld[0] == pytest.approx(0.25 * math.log(2)) and f.kld[1] == pytest.approx(0.0, abs=1e-12)
    # Δp is on the text's actual next token (index 2, then 0), not on either model's top token
    assert f.dp.tolist() == pytest.approx([0.0, 0.0], abs=1e-12)
    assert f.same_top.tolist() == [False, True]
    f = fidelity.position_figures(ref, build, np.array([0, 0]))
    assert f.dp[0] == pytest.approx(-0.25)  # the build gives the text's token 0.25 less


def test_logits_and_log_probs_give_the_same_figures():
    rng = np.random.default_rng(1)
    ref, build = rng.normal(size=(40, 30)), rng.normal(size=(40, 30))
    tokens = rng.integers(0, 30, 40)
    a = fidelity.position_figures(ref, build, tokens)
    b = fidelity.position_figures(fidelity.log_softmax(ref), fidelity.log_softmax(build), tokens)
    assert np.allclose(a.kld, b.kld) and np.allclose(a.dp, b.dp) and (a.same_top == b.same_top).all()


def test_chunked_rows_match_one_pass():
    rng = np.random.default_rng(2)
    n = fidelity.ROWS_PER_CHUNK * 2 + 7
    ref, build = rng.normal(size=(n, 20)), rng.normal(size=(n, 20))
    f = fidelity.position_figures(ref, build, np.zeros(n, dtype=int))
    lp, lq = fidelity.log_softmax(ref), fidelity.log_softmax(build)
    assert np.allclose(f.kld, (np.exp(lp) * (lp - lq)).sum(-1))


def test_float16_reference_moves_figures_by_its_rounding_only():
    # the held-out reference is stored as float16 probabilities: figures stay within its rounding
    rng = np.random.default_rng(5)
    ref = rng.normal(0, 3, size=(200, 1000))
    build = ref + rng.normal(0, 0.1, size=ref.shape)  # a quantised build: small logit noise
    tokens = rng.integers(0, 1000, 200)
    exact = fidelity.position_figures(ref, build, tokens)
    half = fidelity.compare(fidelity.prepare(ref, tokens, dtype=np.float16), build, tokens)
    assert np.allclose(half.kld, exact.kld, rtol=5e-3, atol=1e-6)
    assert np.allclose(half.dp, exact.dp, atol=1e-3) and (half.same_top == exact.same_top).all()
    assert fidelity.compare(fidelity.prepare(ref, tokens, dtype=np.float16), ref, tokens).kld.max() < 1e-5


def test_a_different_vocabulary_is_refused():
    with pytest.raises(ValueError, match="vocabulary"):
        fidelity.position_figures(np.zeros((2, 5)), np.zeros((2, 6)), np.zeros(2, dtype=int))


def test_mean_and_standard_error_are_llama_cpps():
    x = np.random.default_rng(3).exponential(0.01, size=1000)
    mean, se = fidelity.mean_and_se(x)
    # llama.cpp: f = Σx/n; df = Σx²/n − f²; se = √(df/(n−1))
    assert mean == pytest.approx(x.sum() / 1000)
    assert se == pytest.approx(math.sqrt(((x ** 2).sum() / 1000 - mean ** 2) / 999))
    assert fidelity.mean_and_se(x[:10])[1] == 0.0  # "count > 10" or no uncertainty at all


def test_percentiles_interpolate_as_llama_cpp_does():
    values = np.random.default_rng(4).normal(size=777)

    def llama_cpp(v, fraction):  # its lambda, written out
        v = sorted(v)
        p = fraction * (len(v) - 1)
        i = int(p)
        return (1 - (p - i)) * v[i] + (p - i) * v[min(i + 1, len(v) - 1)]

    for fraction in (0.001, 0.01, 0.5, 0.99, 0.999):
        assert fidelity.percentile(values, fraction) == pytest.approx(llama_cpp(values, fraction))


def test_wilson_interval_textbook_values_and_edges():
    low, high = fidelity.wilson_interval(50, 100)
    assert (round(low, 4), round(high, 4)) == (0.4038, 0.5962)
    low, high = fidelity.wilson_interval(4096, 4096)
    assert high == pytest.approx(1.0) and 0.999 < low < 1.0  # inside [0, 1], unlike p ± 1.96·se
    low, high = fidelity.wilson_interval(3500, 4096)
    assert low < 3500 / 4096 < high and high - low < 0.022


def test_summary_of_hand_made_positions():
    kld = np.concatenate([np.full(990, 0.001), np.full(10, 1.0)])
    dp = np.concatenate([np.full(500, -0.02), np.full(500, 0.01)])
    same = np.arange(1000) % 10 != 0
    s = fidelity.summarize(PositionFigures(kld, dp, same))
    assert s.n_positions == 1000
    assert s.kld_mean == pytest.approx(0.01099) and s.kld_median == pytest.approx(0.001)
    assert s.kld_p99 == pytest.approx(0.001 + 0.01 * 0.999, rel=1e-6)  # interpolated at 0.99·999 = 989.01
    assert s.kld_p999 == pytest.approx(1.0) and s.kld_max == 1.0
    assert s.dp_mean == pytest.approx(-0.005) and s.dp_p01 == pytest.approx(-0.02)
    assert s.same_top_p == s.top1 == 0.9
    assert s.same_top_p_se == pytest.approx(math.sqrt(0.9 * 0.1 / 999))
    assert (s.top1_ci_low, s.top1_ci_high) == fidelity.wilson_interval(900, 1000)
    assert Statistics.from_dict(vars(s)) == s


def test_gates_are_met_missed_or_undecided_by_the_interval():
    def stats(top1: float, kld: float, n: int = 4096) -> Statistics:
        k = round(top1 * n)
        return fidelity.summarize(PositionFigures(np.resize([0.5 * kld, 1.5 * kld], n), np.zeros(n),
                                                  np.arange(n) < k))

    bounds = {"top1_agreement": 0.85, "kl_mean": 0.15}
    verdict = {k: g["verdict"] for k, g in fidelity.gates(stats(0.90, 0.05), bounds).items()}
    assert verdict == {"top1_agreement": "met", "kl_mean": "met"}
    assert fidelity.gates(stats(0.80, 0.05), bounds)["top1_agreement"]["verdict"] == "missed"
    # 0.854 on 4096 positions: the interval [0.843, 0.864] straddles 0.85
    g = fidelity.gates(stats(0.854, 0.05), bounds)["top1_agreement"]
    assert g["verdict"] == "undecided" and g["low"] < 0.85 < g["high"] and g["statistic"] == "top1"
    assert fidelity.gates(stats(0.90, 0.30), bounds)["kl_mean"]["verdict"] == "missed"


def test_held_out_interval_decides_and_choosing_prompts_only_inform():
    # top-1 and KL gate on the held-out text by interval (here undecided: 0.852 on 4,096 positions
    # straddles 0.85); the choosing prompts' figure is recorded beside it and decides nothing
    n = 4096
    held = fidelity.summarize(PositionFigures(np.full(n, 0.01), np.zeros(n), np.arange(n) < round(0.852 * n)))
    p = Parity(True, 0.70, 0.01, 9.0, 8, {}, False, held)
    assert judge(p, {"top1_agreement": 0.85, "kl_mean": 0.15, "greedy_match_len_mean": 4}) == "undecided"
    assert p.gates["top1_agreement (held-out)"]["verdict"] == "undecided" and not p.passed
    informational = p.gates["top1_agreement (choosing prompts, informational)"]
    assert informational["verdict"] == "missed" and informational["informational"]
    assert p.gates["greedy_match_len_mean"]["verdict"] == "met"  # greedy: plain, on the choosing prompts
    assert judge(p, {"top1_agreement": 0.80}) == "passed"        # the choosing prompts' 0.70 is ignored
    assert judge(p, {"top1_agreement": 0.90}) == "failed"        # held-out interval wholly below
    assert judge(p, {"greedy_match_len_mean": 12}) == "failed"
    p.tokenizer_equal = False
    assert judge(p, {"top1_agreement": 0.80}) == "failed"
    p.heldout, p.tokenizer_equal = None, True                    # no held-out figures: plain bounds
    assert judge(p, {"top1_agreement": 0.80}) == "failed" and "top1_agreement" in p.gates


# --- the LoRA gate: like with like, within noise ------------------------------------------------------

def held_out(top1: float, kld: float, n: int = 4096, seed: int = 0) -> Statistics:
    """Statistics of a build with this top-1 and mean KLD on n positions (KLD spread like a real build's)."""
    rng = np.random.default_rng(seed)
    values = rng.exponential(kld, size=n)
    return fidelity.summarize(PositionFigures(values * kld / values.mean(), rng.normal(0, 0.01, n),
                                              rng.permutation(np.arange(n) < round(top1 * n))))


def test_faithful_q8_0_lora_build_passes_against_fp32_and_the_merged_build():
    # issue 27's q8_0 LoRA build: top-1 0.961 / KL 0.0050 against fp32, the merged q8_0 0.969 / 0.0053
    lora, merged = held_out(0.961, 0.0050, seed=1), held_out(0.969, 0.0053, seed=2)
    comparison = fidelity.within_noise(lora, merged)
    assert comparison["verdict"] == "met" and comparison["top1_diff"] == pytest.approx(-0.008, abs=1e-3)
    p = Parity(True, 0.961, 0.005, 19.0, 8, {}, False, lora)
    assert judge(p, {"top1_agreement": 0.95, "kl_mean": 0.05, "greedy_match_len_mean": 8},
                 comparison["verdict"]) == "passed"


def test_lora_build_a_few_positions_off_the_merged_one_is_within_noise():
    # issue 27's q5_k_m: 0.8457 against the merged build's 0.8574, six positions in 512 on the old set
    lora, merged = held_out(0.8457, 0.06, seed=3), held_out(0.8574, 0.055, seed=4)
    assert fidelity.within_noise(lora, merged)["verdict"] == "met"


def test_lora_build_that_loses_more_than_rounding_explains_fails():
    merged = held_out(0.969, 0.0053, seed=5)
    assert fidelity.within_noise(held_out(0.90, 0.0053, seed=6), merged)["verdict"] == "missed"
    assert fidelity.within_noise(held_out(0.969, 0.02, seed=7), merged)["verdict"] == "missed"
    # a build that loses less than the merged one is never held against it
    assert fidelity.within_noise(merged, held_out(0.90, 0.02, seed=6))["verdict"] == "met"
    p = Parity(True, 0.97, 0.005, 19.0, 8, {}, False, held_out(0.969, 0.0053, seed=8))
    assert judge(p, {"top1_agreement": 0.95, "kl_mean": 0.05}, "missed") == "failed"
