"""Parity: how closely an exported artifact reproduces the PyTorch model on fixed heart prompts.

For each prompt (chat template applied by the source tokenizer) the PyTorch model writes a greedy
continuation of ``tf_tokens`` tokens; its logits at each step are the reference. Every artifact then

- tokenizes the same texts (chat prompts plus tricky strings: numbers, units, unicode) → ``tokenizer_equal``;
- reads prompt + reference continuation under teacher forcing → next-token ``top1_agreement`` and
  ``kl_mean`` = mean KL(p_torch ‖ p_artifact) over all continuation positions;
- writes its own greedy continuation → ``greedy_match_len_mean``, the mean length of the common
  prefix with the reference (``greedy_tokens`` at most).

EOS is masked during both greedy runs so every prompt contributes the same number of positions.
Teacher forcing feeds every runtime the same token ids, so tokenizer and model are judged apart.

These prompts are part of the *choosing* set: recipes were picked on them. With a held-out
reference (``heldout.py``) the same runtime is also measured on held-out heart text, and the top-1
and KL bounds (chosen on the choosing documents, ``benchmarks/fidelity_bounds.py``) are judged
there, by each statistic's 95 % interval (``judge``); the greedy bound stays a plain bound on these
prompts (it needs generation, and catches a broken build).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from edgemed.export import fidelity
from edgemed.export.manifest import Parity

log = logging.getLogger(__name__)

# Fixed, varied heart questions: symptoms, numbers, drugs, devices. Fixed here (not drawn from a
# data set) so parity figures stay comparable across runs and data updates.
HEART_PROMPTS = (
    "I'm 58 and get a tight, squeezing chest pain when I walk uphill that goes away when I rest. "
    "What could this be and what should I do?",
    "My blood pressure readings this week were 152/96, 148/94 and 155/99. Is that hypertension?",
    "What is the difference between atrial fibrillation and normal heart palpitations?",
    "I take warfarin for a mechanical heart valve. Can I take ibuprofen for my back pain?",
    "How does heart failure with reduced ejection fraction differ from preserved ejection fraction?",
    "My ECG report says 'left bundle branch block, new'. What does that mean?",
    "What lifestyle changes lower LDL cholesterol, and when are statins recommended?",
    "My father is sweaty, short of breath and has pain spreading to his left arm. What do we do right now?",
)
# Extra strings for the tokenizer check: digit splitting, units, arrows, whitespace, non-Latin text.
TOKENIZER_PROBES = (
    "BP 150/95 mmHg, HR 112 bpm, LDL 3.4 mmol/L (131 mg/dL); ST↑ in V1–V4.",
    "  two leading spaces\n\ttab and newline\r\n",
    "Ünïcödé café – 心臓病 ❤️ naïve façade",
)


@dataclass
class Reference:
    """The PyTorch model's behaviour on the heart prompts (computed once per export run)."""

    texts: list[str]               # chat-rendered prompts
    prompt_ids: list[list[int]]
    continuation: list[list[int]]  # torch greedy, EOS masked, tf_tokens long
    logits: list[np.ndarray]       # [len(continuation), vocab] raw logits predicting each token
    token_ids: dict[str, list[int]]  # text → source tokenizer ids (with special tokens)
    eos_ids: list[int]
    greedy_tokens: int

    @property
    def max_len(self) -> int:
        """Longest sequence a runtime sees (sizes llama.cpp's context and logits buffer)."""
        return max(len(p) + len(c) for p, c in zip(self.prompt_ids, self.continuation))


class Runtime(Protocol):
    """What parity needs from an artifact's runtime (llama.cpp or onnxruntime)."""

    def tokenize(self, text: str) -> list[int]: ...
    def logits(self, ids: list[int]) -> np.ndarray: ...
    def greedy(self, prompt_ids: list[int], n: int, banned: list[int]) -> list[int]: ...
    def close(self) -> None: ...


def torch_reference(model_dir: Path, tf_tokens: int = 64, greedy_tokens: int = 32,
                    threads: int = 2, n_prompts: int = len(HEART_PROMPTS)) -> Reference:
    """Run the fp32 PyTorch model on ``HEART_PROMPTS``: token ids, greedy continuations, logits."""
    import torch

    from edgemed.models import load_model

    torch.set_num_threads(threads)
    model, tok = load_model(str(model_dir), dtype="float32")
    eos_ids = _eos_ids(tok, model)
    texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                     add_generation_prompt=True) for p in HEART_PROMPTS[:n_prompts]]
    ref = Reference(texts, [], [], [], {}, eos_ids, greedy_tokens)
    for text in (*texts, *TOKENIZER_PROBES):
        ref.token_ids[text] = tok(text, add_special_tokens=True).input_ids
    n = max(tf_tokens, greedy_tokens)
    ref.prompt_ids = [tok(t, add_special_tokens=False).input_ids for t in texts]
    # All prompts in one left-padded batch: n decode steps instead of n × prompts.
    width = max(map(len, ref.prompt_ids))
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos_ids[0]
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in ref.prompt_ids])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in ref.prompt_ids])
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=n,
                             min_new_tokens=n, eos_token_id=eos_ids, pad_token_id=pad,
                             output_logits=True, return_dict_in_generate=True)
    steps = torch.stack(out.logits[:tf_tokens], dim=1).float()  # [prompts, tf_tokens, vocab]
    for i in range(len(texts)):
        ref.continuation.append(out.sequences[i, width:].tolist())
        ref.logits.append(steps[i].numpy())
    return ref


def measure(runtime: Runtime, ref: Reference, thresholds: dict[str, float], heldout_ref=None) -> Parity:
    """Parity figures of one runtime against the reference, and the verdict under ``thresholds``;
    with ``heldout_ref`` (a ``heldout.Reference``) also llama.cpp's statistics on the held-out text,
    which the top-1 and KL bounds are then judged on."""
    tokenizer_equal = all(runtime.tokenize(t) == ids for t, ids in ref.token_ids.items())
    agree, kls, matches = [], [], []
    for ids, cont, ref_logits in zip(ref.prompt_ids, ref.continuation, ref.logits):
        t = len(ref_logits)
        got = runtime.logits(ids + cont[:t - 1])[len(ids) - 1:len(ids) - 1 + t]
        f = fidelity.position_figures(ref_logits, got, np.asarray(cont[:t]))
        agree.append(f.same_top)
        kls.append(f.kld)
        mine = runtime.greedy(ids, ref.greedy_tokens, ref.eos_ids)
        matches.append(common_prefix_len(mine, cont[:ref.greedy_tokens]))
    figures = {"top1_agreement": float(np.concatenate(agree).mean()),
               "kl_mean": float(np.concatenate(kls).mean()),
               "greedy_match_len_mean": float(np.mean(matches))}
    held = None
    if heldout_ref is not None:
        from edgemed.export import heldout

        held = heldout.measure(runtime, heldout_ref)
    p = Parity(tokenizer_equal=tokenizer_equal, n_prompts=len(ref.prompt_ids), thresholds={}, passed=False,
               heldout=held, **{k: round(v, 6) for k, v in figures.items()})
    judge(p, thresholds)
    return p


def judge(p: Parity, thresholds: dict[str, float], lora_verdict: str | None = None) -> str:
    """Apply ``thresholds`` to the figures in ``p`` (recording ``p.gates`` and ``p.passed``) and
    return the artifact's status: ``passed``, ``undecided`` or ``failed``.

    A bound that a held-out statistic answers (top-1, KL) is met, missed or undecided by that
    statistic's 95 % interval there (the choosing prompts' figure is recorded, informational); the
    others (greedy match), and every bound of a manifest without held-out figures, are plain bounds
    on the choosing prompts. A different tokenizer fails; ``lora_verdict`` is a gguf-lora
    build's comparison with the merged build of its quant.

    >>> p = Parity(True, 0.97, 0.01, 20.0, 8, {}, False)
    >>> judge(p, {"top1_agreement": 0.95, "greedy_match_len_mean": 8}), p.gates["top1_agreement"]["verdict"]
    ('passed', 'met')
    >>> judge(p, {"greedy_match_len_mean": 24}), judge(p, {}, lora_verdict="missed")
    ('failed', 'failed')
    """
    p.thresholds = dict(thresholds)
    # Top-1 and KL bounds were chosen on the choosing documents (benchmarks/fidelity_bounds.py) and
    # gate on the held-out text, by interval. The choosing prompts' figures are recorded beside them,
    # informational: gating on the text a recipe was picked on would check it on its own data.
    held = fidelity.gates(p.heldout, thresholds) if p.heldout is not None else {}
    plain = {"top1_agreement": p.top1_agreement, "kl_mean": p.kl_mean,
             "greedy_match_len_mean": p.greedy_match_len_mean}
    p.gates, verdicts = {}, ["met" if p.tokenizer_equal else "missed"]
    for key, gate in held.items():
        p.gates[f"{key} (held-out)"] = gate
        verdicts.append(gate["verdict"])
    for key, bound in thresholds.items():
        at_least = key != "kl_mean"
        gate = {"statistic": f"{key} (choosing prompts)", "bound": float(bound), "at_least": at_least,
                "low": plain[key], "high": plain[key],
                "verdict": fidelity.judge(plain[key], plain[key], bound, at_least)}
        if key in held:  # answered on held-out text: this one only informs
            p.gates[f"{key} (choosing prompts, informational)"] = {**gate, "informational": True}
        else:            # the greedy bound (needs generation), or a manifest without held-out figures
            p.gates[key] = gate
            verdicts.append(gate["verdict"])
    status = fidelity.overall(verdicts + ([lora_verdict] if lora_verdict else []))
    p.passed = status == "passed"
    return status


def common_prefix_len(a: list[int], b: list[int]) -> int:
    """Number of leading tokens two sequences share.

    >>> common_prefix_len([1, 2, 3, 9], [1, 2, 4])
    2
    """
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _eos_ids(tok, model) -> list[int]:
    ids = model.generation_config.eos_token_id
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if tok.eos_token_id is not None and tok.eos_token_id not in ids:
        ids.append(tok.eos_token_id)
    return ids


# --- runtimes ------------------------------------------------------------------------------------

class LlamaCppRuntime:
    """A GGUF in llama.cpp, opened by ``edgemed.runtimes.llamacpp`` (CPU) as the bench does."""

    def __init__(self, path: Path, threads: int = 2, n_ctx: int = 512, lora_path: Path | None = None):
        from edgemed.runtimes import llamacpp as runtime

        # logits_all: llama-cpp-python only keeps every position's logits (teacher forcing) then.
        # lora_path: a LoRA GGUF applied on top of the base at load time (a gguf-lora build).
        extra = {"lora_path": str(lora_path)} if lora_path else {}
        self.llm = runtime.load(path, n_ctx=n_ctx, n_batch=n_ctx, logits_all=True, n_threads=threads,
                                n_gpu_layers=0, **extra)

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)

    def logits(self, ids: list[int]) -> np.ndarray:
        self.llm.reset()
        self.llm.eval(ids)
        return np.array(self.llm.scores[:len(ids)], dtype=np.float32)

    def greedy(self, prompt_ids: list[int], n: int, banned: list[int]) -> list[int]:
        self.llm.reset()
        self.llm.eval(prompt_ids)
        out: list[int] = []
        for _ in range(n):
            row = np.array(self.llm.scores[self.llm.n_tokens - 1], dtype=np.float32)
            row[banned] = -np.inf
            out.append(int(row.argmax()))
            self.llm.eval([out[-1]])
        return out

    def close(self) -> None:
        self.llm.close()


class OnnxRuntime:
    """An ONNX folder in ONNX Runtime, opened by ``edgemed.runtimes.onnxruntime`` (CPU) as the bench does."""

    def __init__(self, folder: Path, threads: int = 2):
        from edgemed.runtimes import onnxruntime as runtime

        loaded = runtime.load(folder, threads, device="cpu")
        self.model, self.tok = loaded.model, loaded.tokenizer

    def tokenize(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=True).input_ids

    def logits(self, ids: list[int]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long))
        return out.logits[0].float().numpy()

    def greedy(self, prompt_ids: list[int], n: int, banned: list[int]) -> list[int]:
        import torch

        ids = torch.tensor([prompt_ids])
        out = self.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                  max_new_tokens=n, min_new_tokens=n, eos_token_id=banned,
                                  pad_token_id=banned[0])
        return out[0, len(prompt_ids):].tolist()

    def close(self) -> None:
        self.model = None


class GenAIRuntime:
    """An onnx-genai folder in onnxruntime-genai, opened by ``edgemed.runtimes.genai`` as the bench does.

    Token ids come from the folder's own tokenizer files (the ones the bench's chat uses); logits
    from the runtime's prompt pass, greedy tokens from its KV-cached steps.
    """

    def __init__(self, folder: Path, threads: int = 2):
        from tokenizers import Tokenizer

        from edgemed.runtimes import genai

        self.genai = genai
        self.m = genai.load(folder, threads)
        self.tok = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))

    def tokenize(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=True).ids

    def logits(self, ids: list[int]) -> np.ndarray:
        return self.genai.prompt_logits(self.m, ids)

    def greedy(self, prompt_ids: list[int], n: int, banned: list[int]) -> list[int]:
        return self.genai.greedy(self.m, prompt_ids, n, banned)

    def close(self) -> None:
        self.m = None


def open_runtime(fmt: str, path: Path, threads: int = 2, n_ctx: int = 512) -> Runtime:
    """The parity runtime for an artifact of format ``fmt``."""
    if fmt == "onnx-genai":
        return GenAIRuntime(path, threads)
    return LlamaCppRuntime(path, threads, n_ctx) if fmt == "gguf" else OnnxRuntime(path, threads)
