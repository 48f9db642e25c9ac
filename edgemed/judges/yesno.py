"""The local LLM judge: one yes/no question per criterion to a GGUF in llama.cpp, P(yes) from logits.

Why not the JSON grader (``criterion.py``)? On a 1.5B model, asking for an explanation first and a
JSON verdict after measured worse and about 7x slower than a plain question read off one token's
logits (docs/judges.md). This judge therefore:

1. writes the prompt as raw ChatML text (the format of the shipped Qwen2.5 judge) with the grading
   rules first, the conversation next and the criterion LAST, so the KV cache holds
   ``rules + conversation`` and each further criterion of the same answer costs only its own tokens;
2. evaluates the prompt (reusing the longest prefix already in the cache) and reads the logits of
   the next token: P(yes) = Σ p(yes-tokens) / (Σ p(yes-tokens) + Σ p(no-tokens));
3. returns met = 1/0 against a threshold calibrated on the tune cases (``assets/judge_calibration.json``),
   or, with ``use_logprobs``, the probability shifted so that the threshold sits at 0.5.

With ``with_proxy``, the offline proxy judge grades the same criterion too and a logistic blend
``sigmoid(bias + w_llm·logit P(yes) + w_proxy·logit P_proxy)`` (weights fitted on the tune cases,
same file) decides: the LLM reads paraphrases well, the proxy notices when a claim is simply absent.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import weakref
from pathlib import Path
from typing import Sequence

import numpy as np

from edgemed.data.schema import RubricItem
from edgemed.errors import ConfigError, ModelError
from edgemed.judges.base import Judgement

CALIBRATION = Path(__file__).parent / "assets" / "judge_calibration.json"

RULES = """You are a careful medical grader. You will read a conversation between a user and an AI assistant, then one rubric criterion. Decide whether the assistant's final response meets the criterion.
- Judge only what the response says, not whether the criterion is medically true. Answer yes only if the response itself clearly says or does what the criterion describes; if the response never addresses it, answer no. Mentioning the topic is not enough.
- If the response says something different (another dose, another drug, another action) or advises against it, answer no.
- If the criterion asks for several things, all of them must be present; missing one means no. Lists introduced by "such as" or "e.g." are examples: one of them is enough.
- Some criteria describe a mistake or harmful advice. For those, answer yes if the response makes that mistake, no if it avoids it.
After the conversation comes the criterion. Reply with one word: yes or no."""

QUESTION = ""
EXAMPLES = ""


def render_conversation(conversation: list[dict[str, str]]) -> str:
    """HealthBench's rendering: ``role: content`` blocks separated by blank lines.

    >>> render_conversation([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}])
    'user: Hi\\n\\nassistant: Hello'
    """
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in conversation)


def prompt_parts(conversation: list[dict[str, str]], item: RubricItem) -> tuple[str, str]:
    """(prefix shared by every criterion of this answer, suffix for this criterion), ChatML text."""
    prefix = (f"<|im_start|>system\n{RULES}<|im_end|>\n{EXAMPLES}<|im_start|>user\n"
              f"<conversation>\n{render_conversation(conversation)}\n</conversation>\n\n")
    question = f"\n{QUESTION}" if QUESTION else ""
    suffix = f"Criterion: {item.criterion.strip()}{question}<|im_end|>\n<|im_start|>assistant\n"
    return prefix, suffix


def prompt_digest() -> str:
    """Short hash of the prompt text: part of the fingerprint, so a prompt change misses the cache."""
    return hashlib.sha256((RULES + QUESTION).encode()).hexdigest()[:10]


def load_calibration(path: Path = CALIBRATION) -> dict:
    """The frozen thresholds and blend weights, for positive criteria and for pitfalls (a calibration
    without pitfall entries uses the positive ones for both; none at all: threshold 0.5, no blend).

    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "cal.json"
    >>> _ = f.write_text('{"threshold": 0.6, "blend": {"bias": 1}}')
    >>> c = load_calibration(f); c["threshold_pitfall"], c["blend_pitfall"]
    (0.6, {'bias': 1})
    >>> load_calibration(f.with_name("missing.json"))["threshold"]
    0.5
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raw = {}
    threshold = float(raw.get("threshold", 0.5))
    return {"threshold": threshold, "blend": raw.get("blend"),
            "threshold_pitfall": float(raw.get("threshold_pitfall", threshold)),
            "blend_pitfall": raw.get("blend_pitfall") or raw.get("blend")}


def logit(p: float) -> float:
    """>>> round(logit(0.5), 6)
    0.0
    """
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def blend(p_llm: float, p_proxy: float, weights: dict) -> float:
    """The blended probability that the criterion is met.

    >>> round(blend(0.9, 0.5, {"bias": 0.0, "w_llm": 1.0, "w_proxy": 1.0}), 3)
    0.9
    """
    z = weights["bias"] + weights["w_llm"] * logit(p_llm) + weights["w_proxy"] * logit(p_proxy)
    return 1 / (1 + math.exp(-z))


def shift_probability(p: float, threshold: float) -> float:
    """Move ``p`` on the logit scale so that ``threshold`` maps to 0.5 (continuous verdicts).

    >>> round(shift_probability(0.3, 0.3), 6), round(shift_probability(0.9, 0.5), 6)
    (0.5, 0.9)
    """
    z = logit(p) - logit(threshold)
    return 1 / (1 + math.exp(-z))


class YesNoJudge:
    """Criterion judge over a GGUF in this process; see the module docstring.

    >>> judge = YesNoJudge(require_judge_model())  # doctest: +SKIP
    >>> judge.grade(conversation, items)            # doctest: +SKIP
    """

    concurrency = 1  # one llama.cpp context; one answer's criteria are batched inside it instead

    def __init__(self, model_path: str | Path, n_ctx: int = 4096, n_threads: int | None = None,
                 threshold: float | None = None, use_logprobs: bool = False, n_batch: int = 512,
                 with_proxy: bool = False, reuse_prefix: bool = True, parallel: int = 16):
        from edgemed.runtimes import llamacpp as runtime

        path = Path(model_path)
        if not path.is_file():
            raise ConfigError(f"judge.model: GGUF file not found: {path}")
        from edgemed.runtimes.shared_prefix import SharedPrefixScorer

        if parallel < 1:
            raise ConfigError(f"judge.params.parallel: must be >= 1, got {parallel}")
        try:
            # The Llama object serves the tokenizer and the weights; grading runs in the scorer's own
            # context (several sequences, one unified KV cache), so this one stays minimal.
            self._llm = runtime.load(path, n_ctx=256, n_batch=256, n_threads=n_threads,
                                     n_threads_batch=n_threads, logits_all=False)
            self._scorer = SharedPrefixScorer(self._llm, n_ctx=n_ctx, n_batch=n_batch, n_seq=parallel,
                                              n_threads=n_threads)
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"{path}: llama.cpp cannot load this GGUF ({e})") from e
        self._finalizer = weakref.finalize(self, _close, self._scorer, self._llm)
        self._lock = threading.Lock()
        self.yes_ids, self.no_ids = self._answer_ids(("yes", "Yes", " yes", " Yes", "YES"),
                                                     ("no", "No", " no", " No", "NO"))
        calibration = load_calibration()
        self.threshold = calibration["threshold"] if threshold is None else float(threshold)
        # pitfalls ("is the mistake present?") get their own threshold and blend, fitted on tune cases
        self.threshold_pitfall = calibration["threshold_pitfall"] if threshold is None else float(threshold)
        self.use_logprobs = use_logprobs
        self.reuse_prefix = reuse_prefix
        self.blend_weights = None
        self.proxy = None
        mode = ""
        # llama.cpp's logits are not bit-identical across batch splits (P(yes) moves slightly; the
        # default suite bounds it): the batched schedule is part of a verdict's identity.
        sched = "|sched=shared-batch" if parallel > 1 else ""
        if with_proxy:
            from edgemed.judges.proxy import PROXY_VERSION, ProxyJudge

            if not calibration["blend"]:
                raise ModelError(f"{CALIBRATION}: no blend weights for with_proxy (run benchmarks/judge_eval.py tune)")
            self.proxy, self.blend_weights = ProxyJudge(), calibration["blend"]
            self.blend_pitfall = calibration["blend_pitfall"]
            mode = "|proxy-v{}|blend={}".format(PROXY_VERSION, ",".join(
                f"{self.blend_weights[k]:.4f}" for k in ("bias", "w_llm", "w_proxy")))
            if self.blend_pitfall != self.blend_weights:
                mode += "|blend-pitfall=" + ",".join(f"{self.blend_pitfall[k]:.4f}" for k in ("bias", "w_llm", "w_proxy"))
        pit = f"|tp={self.threshold_pitfall:.4f}" if self.threshold_pitfall != self.threshold else ""
        self.fingerprint = (f"yesno|{path.name}|{path.stat().st_size}|{prompt_digest()}"
                            f"|t={self.threshold:.4f}{pit}|lp={int(use_logprobs)}{sched}{mode}")
        self.parallel = parallel

    def _answer_ids(self, yes: Sequence[str], no: Sequence[str]) -> tuple[list[int], list[int]]:
        def first_ids(words):
            ids = {self._llm.tokenize(w.encode(), add_bos=False, special=False)[0] for w in words}
            return sorted(ids)
        return first_ids(yes), first_ids(no)

    @property
    def prefix_tokens_reused(self) -> int:
        """Prompt tokens served from the KV cache instead of evaluated (rules + conversation, mostly)."""
        return self._scorer.tokens_reused

    @property
    def tokens_evaluated(self) -> int:
        return self._scorer.tokens_evaluated

    def p_yes_many(self, conversation: list[dict[str, str]], items: Sequence[RubricItem]) -> list[float | Exception]:
        """P(yes) for each criterion of one answer: their prompts share the answer's prefix, so the
        prefix is evaluated once (or reused from the cache) and the criteria go ``parallel`` at a
        time into one llama.cpp batch (``edgemed.runtimes.shared_prefix``). An exception object
        stands in for a criterion whose prompt could not be evaluated."""
        rows = []
        for item in items:
            prefix, suffix = prompt_parts(conversation, item)
            rows.append(self._llm.tokenize((prefix + suffix).encode("utf-8"), add_bos=False, special=True))
        columns = self.yes_ids + self.no_ids
        if self.reuse_prefix:
            values = self._scorer.last_logits(rows, columns=columns)
        else:  # every prompt whole, one at a time: the baseline the timing benchmark compares with
            values = []
            for row in rows:
                self._scorer.forget()
                values += self._scorer.last_logits([row], columns=columns)
        out: list[float | Exception] = []
        for value in values:
            if isinstance(value, Exception):
                out.append(value)
                continue
            probs = np.exp(value - value.max())
            out.append(float(probs[:len(self.yes_ids)].sum() / probs.sum()))
        return out

    def p_yes(self, conversation: list[dict[str, str]], item: RubricItem) -> float:
        """P(yes) for one criterion (``ValueError`` when its prompt exceeds the context)."""
        [value] = self.p_yes_many(conversation, [item])
        if isinstance(value, Exception):
            raise value
        return value

    def grade(self, conversation: list[dict[str, str]], items: Sequence[RubricItem]) -> list[Judgement]:
        proxy = self.proxy.grade(conversation, items) if self.proxy is not None else [None] * len(items)
        out = []
        with self._lock:
            try:
                p_values = self.p_yes_many(conversation, items)
            except RuntimeError as e:  # llama_decode failed: the whole answer's verdicts are unknown
                p_values = [e] * len(items)
            for item, pv, p in zip(items, proxy, p_values):
                if isinstance(p, Exception):
                    out.append(Judgement(met=None, explanation=f"judge failed: {p}"))
                    continue
                if pv is not None:
                    if pv.met is None:
                        out.append(Judgement(met=None, explanation=f"judge failed: {pv.explanation}"))
                        continue
                    q = blend(p, pv.met, self.blend_pitfall if item.points < 0 else self.blend_weights)
                    met = q if self.use_logprobs else float(q >= 0.5)
                    out.append(Judgement(met=met, explanation=f"P(yes)={p:.3f} proxy={pv.met:.3f} blend={q:.3f}",
                                         raw=json.dumps({"p_yes": round(p, 6), "p_proxy": pv.met, "blend": round(q, 6)})))
                    continue
                t = self.threshold_pitfall if item.points < 0 else self.threshold
                met = shift_probability(p, t) if self.use_logprobs else float(p >= t)
                out.append(Judgement(met=met, explanation=f"P(yes)={p:.3f}", raw=json.dumps({"p_yes": round(p, 6)})))
        return out

    def close(self) -> None:
        self._finalizer()


def _close(scorer, llm) -> None:
    scorer.close()
    llm.close()
