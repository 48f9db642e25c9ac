"""TrainConfig → the libraries' own config objects: trl.GRPOConfig, peft.LoraConfig, a 4-bit BitsAndBytesConfig.

The mapping is one place so the recipe reads as steps, and so a reader can see exactly which
edgemed field becomes which trl/peft argument.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgemed.errors import ConfigError
from edgemed.train.config import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuantPlan:
    """Whether the base loads in 4-bit, on which bitsandbytes backend, and why (all land in the manifest)."""

    load_in_4bit: bool
    reason: str
    backend: str | None = None  # "cuda" (bitsandbytes' CUDA kernels) or "cpu" (its CPU backend)


def bnb_cpu_backend() -> bool:
    """True when the installed bitsandbytes ships its CPU library (``libbitsandbytes_cpu``), so
    4-bit NF4 layers load and train without CUDA (the same code path, slower kernels)."""
    spec = importlib.util.find_spec("bitsandbytes")
    if spec is None or not spec.submodule_search_locations:
        return False
    return any(any(Path(d).glob("libbitsandbytes_cpu.*")) for d in spec.submodule_search_locations)


def plan_quantization(cfg: TrainConfig, cuda: bool | None = None, bnb: bool | None = None,
                      bnb_cpu: bool | None = None) -> QuantPlan:
    """4-bit with bitsandbytes on CUDA, or on its CPU backend; otherwise plain LoRA, or an error if required.

    >>> from edgemed.train.config import TrainConfig
    >>> cfg = TrainConfig(); cfg.model.load_in_4bit = True
    >>> plan_quantization(cfg, cuda=False, bnb=False).load_in_4bit
    False
    >>> plan_quantization(cfg, cuda=False, bnb=True, bnb_cpu=True).backend
    'cpu'
    >>> plan_quantization(cfg, cuda=True, bnb=True).backend
    'cuda'
    >>> cfg.model.require_4bit = True
    >>> plan_quantization(cfg, cuda=False, bnb=True, bnb_cpu=False)
    Traceback (most recent call last):
    ...
    edgemed.errors.ConfigError: model.require_4bit: 4-bit QLoRA needs bitsandbytes with a CUDA GPU or its CPU backend (pip install 'edgemed[all]'); missing: a CUDA GPU and bitsandbytes' CPU backend
    """
    if not cfg.model.load_in_4bit:
        return QuantPlan(False, "load_in_4bit is off")
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    if bnb is None:
        bnb = importlib.util.find_spec("bitsandbytes") is not None
    if cuda and bnb:
        return QuantPlan(True, "CUDA and bitsandbytes available", "cuda")
    if bnb_cpu is None:
        bnb_cpu = bool(bnb) and bnb_cpu_backend()
    if bnb and bnb_cpu:
        return QuantPlan(True, "no CUDA GPU: bitsandbytes' CPU backend (same NF4 layers, CPU kernels)", "cpu")
    missing = "bitsandbytes" if not bnb else "a CUDA GPU and bitsandbytes' CPU backend"
    message = (f"4-bit QLoRA needs bitsandbytes with a CUDA GPU or its CPU backend "
               f"(pip install 'edgemed[all]'); missing: {missing}")
    if cfg.model.require_4bit:
        raise ConfigError(f"model.require_4bit: {message}")
    log.warning("%s. Falling back to plain LoRA on a %s base (set model.require_4bit: true to "
                "fail instead).", message, cfg.model.dtype)
    return QuantPlan(False, f"fallback to plain LoRA: {message}")


def bnb_config(cfg: TrainConfig, backend: str = "cuda"):
    """QLoRA's NF4 + double quantisation. On CUDA it computes in ``model.dtype`` (float32 there is
    raised to bfloat16, the GPU's fast type); on the CPU backend in ``model.dtype`` as given.

    >>> from edgemed.train.config import TrainConfig
    >>> cfg = TrainConfig()
    >>> c = bnb_config(cfg, "cpu"); c.load_in_4bit, c.bnb_4bit_quant_type, c.bnb_4bit_use_double_quant
    (True, 'nf4', True)
    >>> str(c.bnb_4bit_compute_dtype), str(bnb_config(cfg, "cuda").bnb_4bit_compute_dtype)
    ('torch.float32', 'torch.bfloat16')
    """
    from transformers import BitsAndBytesConfig

    compute = cfg.model.dtype if (cfg.model.dtype != "float32" or backend == "cpu") else "bfloat16"
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute)


def lora_config(cfg: TrainConfig):
    """peft.LoraConfig for a causal LM from the lora section.

    >>> from edgemed.train.config import TrainConfig
    >>> lc = lora_config(TrainConfig())
    >>> lc.r, lc.lora_alpha, sorted(lc.target_modules)[:2]
    (16, 32, ['down_proj', 'gate_proj'])
    """
    from peft import LoraConfig

    lo = cfg.lora
    try:
        return LoraConfig(r=lo.r, lora_alpha=lo.alpha, lora_dropout=lo.dropout,
                          target_modules=lo.target_modules, bias="none", task_type="CAUSAL_LM", **lo.extra)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"lora.extra: rejected by peft.LoraConfig: {e}") from e


def grpo_args(cfg: TrainConfig, quant: QuantPlan, cuda: bool | None = None):
    """trl.GRPOConfig: the named fields, then ``grpo.extra`` passed through.

    >>> from edgemed.train.config import TrainConfig
    >>> cfg = TrainConfig(output_dir="/tmp/x"); cfg.grpo.extra = {"epsilon_high": 0.28}
    >>> a = grpo_args(cfg, QuantPlan(False, ""), cuda=False)
    >>> a.use_cpu, a.bf16, a.num_generations, a.epsilon_high, a.report_to
    (True, False, 6, 0.28, [])
    """
    from trl import GRPOConfig

    kwargs = grpo_kwargs(cfg, quant, cuda)
    try:
        return GRPOConfig(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"grpo: rejected by trl.GRPOConfig: {e}") from e


def grpo_kwargs(cfg: TrainConfig, quant: QuantPlan, cuda: bool | None = None) -> dict[str, Any]:
    """The keyword arguments ``grpo_args`` gives trl.GRPOConfig (plain data: a CPU-only test can
    check what a CUDA run would get, which GRPOConfig itself refuses to build without a GPU).

    >>> from edgemed.train.config import TrainConfig
    >>> cfg = TrainConfig(output_dir="/tmp/x"); cfg.model.dtype = "bfloat16"
    >>> kw = grpo_kwargs(cfg, QuantPlan(True, "", "cuda"), cuda=True)
    >>> kw["bf16"], kw["use_cpu"], kw["model_init_kwargs"]
    (True, False, {'dtype': 'bfloat16'})
    """
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    g = cfg.grpo
    model_init: dict[str, Any] = {"dtype": cfg.model.dtype}
    if cfg.model.attn_implementation:
        model_init["attn_implementation"] = cfg.model.attn_implementation
    kwargs: dict[str, Any] = dict(
        output_dir=cfg.output_dir, seed=cfg.seed, max_steps=g.max_steps,
        num_generations=g.num_generations, per_device_train_batch_size=g.per_device_train_batch_size,
        gradient_accumulation_steps=g.gradient_accumulation_steps,
        max_completion_length=g.max_completion_length, temperature=g.temperature, top_p=g.top_p,
        learning_rate=g.learning_rate, lr_scheduler_type=g.lr_scheduler_type, warmup_steps=g.warmup_steps,
        beta=g.beta, loss_type=g.loss_type, scale_rewards=g.scale_rewards,
        multi_objective_aggregation=g.multi_objective_aggregation,
        mask_truncated_completions=g.mask_truncated_completions,
        gradient_checkpointing=g.gradient_checkpointing, logging_steps=g.logging_steps,
        save_strategy="steps", save_steps=g.save_steps, save_total_limit=g.save_total_limit,
        log_completions=g.log_completions, use_vllm=g.use_vllm, vllm_mode=g.vllm_mode,
        vllm_gpu_memory_utilization=g.vllm_gpu_memory_utilization,
        model_init_kwargs=model_init,
        # Our own JSONL log and plot replace experiment trackers; users can opt in via grpo.extra.
        report_to=[],
        # The terminal shows edgemed's step bar (train.trainlog.StepProgress); trl's per-step dicts
        # go to the stage log (edgemed.console), not a second bar.
        disable_tqdm=True,
        # bf16 mixed precision only where the hardware has it; trl's default bf16 fails on CPU.
        use_cpu=not cuda, bf16=bool(cuda and cfg.model.dtype == "bfloat16"),
        fp16=bool(cuda and cfg.model.dtype == "float16"),
    )
    if g.vllm_server_base_url:
        kwargs["vllm_server_base_url"] = g.vllm_server_base_url
    if quant.load_in_4bit and g.gradient_checkpointing:
        kwargs["gradient_checkpointing_kwargs"] = {"use_reentrant": False}
    kwargs.update(g.extra)
    return kwargs
