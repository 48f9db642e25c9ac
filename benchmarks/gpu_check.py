"""The QLoRA GRPO path on a CUDA GPU, offline, in minutes: benchmarks/gpu_check.sh runs this.

    bash benchmarks/gpu_check.sh                 # the check; writes benchmarks/results/gpu_check.json
    bash benchmarks/gpu_check.sh --dry-run       # wheels list + arguments only (what the CPU tests run)

Needs Python with torch (CUDA), transformers (4.57 or 5.x), peft and accelerate; nothing is
downloaded. trl and bitsandbytes, when missing, are installed from the wheels listed in
benchmarks/gpu_wheels.txt (kept in benchmarks/.gpu_wheels/, gitignored) into a private folder.

For each model size (``tiny``: the tests' 2-layer Qwen3; ``qwen3-0.6b-shape``: 28 layers, 1024
wide, random, built on the spot) it trains GRPO steps the way ``edgemed train`` does with
``qwen3_heart_grpo_qlora``: the config is loaded and mapped by edgemed.train.library_configs
(4-bit plan, BitsAndBytesConfig, LoraConfig, GRPOConfig) and trained by edgemed's TimedGRPOTrainer.
Two things differ, both said in the results: prompts are the fixed parity heart prompts (the
packaged data's eval-leak guard needs HealthBench, not on that machine) and the reward is a
keyword count (the judges need model files, not on that machine). If trl cannot be imported
(it needs datasets and pandas), a hand-written GRPO step (group sampling, group-normalised
advantages, policy-gradient loss) on the same peft/bitsandbytes model replaces GRPOTrainer.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from _common import provenance  # noqa: E402  (puts the repository on sys.path)
WHEELS_LIST = ROOT / "benchmarks" / "gpu_wheels.txt"
WHEELS_DIR = ROOT / "benchmarks" / ".gpu_wheels"
RESULTS = ROOT / "benchmarks" / "results" / "gpu_check.json"
CARRY_LIMIT = 64 * 2**20  # what may travel with the working tree to the GPU machine
SIZES = {"tiny": dict(hidden_size=64, layers=2),
         "qwen3-0.6b-shape": dict(hidden_size=1024, layers=28, heads=16, kv_heads=8, intermediate=3072)}
KEYWORDS = ("heart", "chest", "pain", "doctor", "emergency", "blood", "pressure", "call")


def read_wheel_list(path: Path = WHEELS_LIST) -> list[dict]:
    """``name bytes sha256`` per line (``#`` comments) → dicts."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, size, digest = line.split()
            rows.append({"name": name, "bytes": int(size), "sha256": digest})
    return rows


def check_wheels(rows: list[dict], folder: Path = WHEELS_DIR, need_files: bool = True) -> list[str]:
    """Problems with the wheels: over the carry limit, or (``need_files``) missing or not as listed."""
    problems = []
    total = sum(r["bytes"] for r in rows)
    if total > CARRY_LIMIT:
        problems.append(f"wheels total {total:,} bytes, over the {CARRY_LIMIT:,}-byte carry limit")
    for r in rows:
        f = folder / r["name"]
        if not f.is_file():
            if need_files:
                problems.append(f"{f}: missing (fetch it: pip download {r['name'].split('-')[0]}=="
                                f"{r['name'].split('-')[1]} --no-deps -d {folder})")
            continue
        if f.stat().st_size != r["bytes"] or hashlib.sha256(f.read_bytes()).hexdigest() != r["sha256"]:
            problems.append(f"{f}: size or sha256 differs from {WHEELS_LIST.name}")
    return problems


def importable(module: str) -> str | None:
    """None when ``module`` imports, else the one-line reason."""
    try:
        importlib.import_module(module)
        return None
    except Exception as e:  # an ImportError, or a broken native library inside the import
        return f"{type(e).__name__}: {e}".splitlines()[0]


def install_missing(rows: list[dict], site: Path) -> dict[str, str]:
    """pip-install (offline, no deps) the listed wheels whose module does not import yet."""
    done = {}
    for r in rows:
        module = r["name"].split("-")[0].replace("-", "_")
        if importable(module) is None:
            done[module] = "already installed"
            continue
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--quiet",
                               "--target", str(site), str(WHEELS_DIR / r["name"])], capture_output=True, text=True)
        done[module] = "installed from wheel" if proc.returncode == 0 else f"pip failed: {proc.stderr[-300:]}"
    if str(site) not in sys.path:
        sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    return done


def make_tokenizer(out: Path) -> Path:
    """A small byte-level BPE trained here on the heart prompts + Qwen3's chat template and tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from edgemed.export.parity import HEART_PROMPTS

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=2048, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(HEART_PROMPTS) * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|im_end|>",
                                   model_input_names=["input_ids", "attention_mask"])
    fast.save_pretrained(out)
    return out


def build_model(size: str, work: Path) -> Path:
    from tests.tiny_qwen3 import build_tiny_qwen3

    return build_tiny_qwen3(work / size, make_tokenizer(work / "tokenizer"), **SIZES[size])


def keyword_reward(prompts, completions, **kwargs) -> list[float]:
    """Heart keywords in each completion (a judge-free stand-in with real spread)."""
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return [float(sum(t.lower().count(k) for k in KEYWORDS)) for t in texts]


def cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def train_config(model_dir: Path, out: Path, steps: int, completion: int):
    from edgemed.train.config import load_train_config

    cpu = {} if cuda() else {"model.dtype": "float32"}  # --cpu smoke runs: CPU kernels compute in fp32
    return load_train_config("qwen3_heart_grpo_qlora", {**cpu,
        "model.spec": str(model_dir), "output_dir": str(out), "judge.backend": "proxy",
        "grpo.max_steps": steps, "grpo.max_completion_length": completion, "grpo.save_steps": steps + 1,
        "grpo.gradient_accumulation_steps": 1})


def run_trl(model_dir: Path, out: Path, steps: int, completion: int) -> dict:
    """GRPO the way the recipe does: edgemed's config mapping, TimedGRPOTrainer, trl's QLoRA path."""
    from datasets import Dataset
    from transformers import AutoTokenizer

    from edgemed.export.parity import HEART_PROMPTS
    from edgemed.train.library_configs import bnb_config, grpo_args, lora_config, plan_quantization
    from edgemed.train.recipe import count_4bit_layers
    from edgemed.train.trainlog import STEP, TimedGRPOTrainer, TrainingLog, read_training_log

    cfg = train_config(model_dir, out, steps, completion)
    cfg.model.require_4bit = False  # no bitsandbytes: say so in the results, train LoRA bf16
    plan = plan_quantization(cfg)
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    kwargs = {"quantization_config": bnb_config(cfg, plan.backend)} if plan.load_in_4bit else {}
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": p}]} for p in HEART_PROMPTS])
    trainer = TimedGRPOTrainer(model=str(model_dir), reward_funcs=[keyword_reward], args=grpo_args(cfg, plan),
                               train_dataset=data, processing_class=tok, peft_config=lora_config(cfg),
                               callbacks=[TrainingLog(out / "train_log.jsonl")], **kwargs)
    trainer.train()
    rows = read_training_log(out / "train_log.jsonl")
    return {"path": "trl GRPOTrainer (edgemed TimedGRPOTrainer)", "quantization": plan.reason,
            "linear4bit_layers": count_4bit_layers(trainer.model), "step_s": [r.get(STEP) for r in rows],
            "reward_mean": [r.get("reward") for r in rows]}


def run_manual(model_dir: Path, out: Path, steps: int, completion: int) -> dict:
    """GRPO steps without trl: same model loading (4-bit when bitsandbytes works), same LoRA."""
    import torch
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from edgemed.export.parity import HEART_PROMPTS
    from edgemed.train.library_configs import bnb_config, lora_config, plan_quantization
    from edgemed.train.recipe import count_4bit_layers

    cfg = train_config(model_dir, out, steps, completion)
    cfg.model.require_4bit = False
    plan = plan_quantization(cfg)
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    dev = 0 if cuda() else "cpu"
    load = {"dtype": getattr(torch, cfg.model.dtype), "device_map": {"": dev}}
    if plan.load_in_4bit:
        load["quantization_config"] = bnb_config(cfg, plan.backend)
    model = AutoModelForCausalLM.from_pretrained(model_dir, **load)
    if plan.load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    model = get_peft_model(model, lora_config(cfg))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.grpo.learning_rate)
    g, times, rewards = cfg.grpo.num_generations, [], []
    for step in range(steps):
        sync()
        start = time.perf_counter()
        prompt = tok.apply_chat_template([{"role": "user", "content": HEART_PROMPTS[step % len(HEART_PROMPTS)]}],
                                         tokenize=False, add_generation_prompt=True)
        ids = tok([prompt] * g, return_tensors="pt").to(dev)
        with torch.no_grad():
            seqs = model.generate(**ids, do_sample=True, temperature=1.0, max_new_tokens=completion,
                                  pad_token_id=tok.pad_token_id)
        comp = seqs[:, ids.input_ids.shape[1]:]
        r = torch.tensor(keyword_reward(None, tok.batch_decode(comp, skip_special_tokens=True)), device=dev)
        adv = (r - r.mean()) / (r.std() + 1e-4)
        logits = model(seqs).logits[:, ids.input_ids.shape[1] - 1:-1].float()
        logp = torch.log_softmax(logits, -1).gather(-1, comp.unsqueeze(-1)).squeeze(-1)
        loss = -(adv.unsqueeze(1) * logp).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        sync()
        times.append(time.perf_counter() - start)
        rewards.append(r.mean().item())
    return {"path": "hand-written GRPO step (no trl)", "quantization": plan.reason,
            "linear4bit_layers": count_4bit_layers(model), "step_s": times, "reward_mean": rewards}


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def check_size(size: str, work: Path, steps: int, completion: int, use_trl: bool) -> dict:
    import torch

    if cuda():
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    model_dir = build_model(size, work)
    run = run_trl if use_trl else run_manual
    try:
        result = run(model_dir, work / f"{size}-train", steps, completion)
    except Exception as e:  # one size failing must not lose the others' figures
        return {"size": size, "error": f"{type(e).__name__}: {e}"[:500]}
    steady = [s for s in result["step_s"][1:] if s] or [s for s in result["step_s"] if s]
    return {"size": size, **SIZES[size], **result,
            "kernels_4bit_cuda": cuda() and result["linear4bit_layers"] > 0,
            "step_s_steady_mean": round(sum(steady) / len(steady), 3) if steady else None,
            "peak_gpu_mem_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda() else None,
            "wall_s": round(time.perf_counter() - started, 1)}


def environment() -> dict:
    import torch

    versions = {}
    for name in ("torch", "transformers", "peft", "accelerate", "trl", "bitsandbytes", "datasets", "onnxruntime"):
        try:
            versions[name] = importlib.import_module(name).__version__
        except Exception as e:
            versions[name] = f"unavailable ({type(e).__name__})"
    return {"python": sys.version.split()[0], "versions": versions, "cuda": torch.cuda.is_available(),
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="QLoRA GRPO on a CUDA GPU: step time, peak memory, 4-bit kernels.")
    p.add_argument("--dry-run", action="store_true",
                   help="Check the wheels list and the arguments, then stop: what a CPU-only test can run.")
    p.add_argument("--sizes", default="tiny,qwen3-0.6b-shape",
                   help=f"Comma list of model sizes to build and train ({', '.join(SIZES)}).")
    p.add_argument("--steps", type=int, default=4, help="GRPO steps per size; the first is warm-up.")
    p.add_argument("--completion", type=int, default=64, help="Tokens per completion (generation time).")
    p.add_argument("--out", default=str(RESULTS), help="Results JSON.")
    p.add_argument("--cpu", action="store_true",
                   help="Run without a GPU (bitsandbytes' CPU backend, float32): a smoke test of this script.")
    p.add_argument("--no-trl", action="store_true",
                   help="Use the hand-written GRPO step even when trl imports (what a machine without "
                        "datasets/pandas runs).")
    args = p.parse_args(argv)
    args.sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in args.sizes if s not in SIZES]
    if unknown or not args.sizes:
        p.error(f"--sizes: unknown {unknown or 'empty'} (known: {', '.join(SIZES)})")
    if not 2 <= args.steps <= 50 or not 8 <= args.completion <= 1024:
        p.error("--steps must be 2..50 and --completion 8..1024")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = read_wheel_list()
    problems = check_wheels(rows, need_files=not args.dry_run)
    if args.dry_run:
        print(json.dumps({"dry_run": True, "wheels": rows, "problems": problems, "sizes": args.sizes,
                          "steps": args.steps, "out": args.out}, indent=1))
        return 1 if problems else 0
    import torch

    if not torch.cuda.is_available() and not args.cpu:
        print("error: no CUDA GPU visible (torch.cuda.is_available() is False)", file=sys.stderr)
        return 4
    installs = install_missing(rows, Path(tempfile.gettempdir()) / "edgemed-gpu-site") if not problems else {}
    trl_problem = "not used (--no-trl)" if args.no_trl else importable("trl")
    report = {**provenance(__file__), "environment": environment(), "wheel_problems": problems, "installs": installs,
              "bitsandbytes": importable("bitsandbytes") or "imports", "trl": trl_problem or "imports",
              "runs": []}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            report["runs"].append(check_size(size, Path(tmp), args.steps, args.completion, trl_problem is None))
            print(json.dumps(report["runs"][-1]), flush=True)
            # written after every size, atomically: the 8-minute timeout keeps what finished
            out.with_suffix(".partial").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
            os.replace(out.with_suffix(".partial"), out)
    print(f"wrote {args.out}")
    return 0 if all("error" not in r for r in report["runs"]) else 1


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
