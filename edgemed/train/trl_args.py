"""TrainConfig → the library objects: trl.GRPOConfig, peft.LoraConfig, a 4-bit BitsAndBytesConfig.

The mapping is one place so the recipe reads as steps, and so a reader can see exactly which
edgemed field becomes which trl/peft argument.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from typing import Any

from edgemed.errors import ConfigError
from edgemed.train.config import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuantPlan:
    """Whether the base loads in 4-bit, and why (the reason lands in the manifest)."""

    load_in_4bit: bool
    reason: str


def plan_quantization(cfg: TrainConfig, cuda: bool | None = None, bnb: bool | None = None) -> QuantPlan:
    """4-bit only with CUDA and bitsandbytes; otherwise plain LoRA, or an error if required.

    >>> from edgemed.train.config import TrainConfig
    >>> cfg = TrainConfig(); cfg.model.load_in_4bit = True
    >>> plan_quantization(cfg, cuda=False, bnb=False).load_in_4bit
    False
    >>> cfg.model.require_4bit = True
    >>> plan_quantization(cfg, cuda=False, bnb=True)
    Traceback (most recent call last):
    ...
    edgemed.errors.ConfigError: model.require_4bit: 4-bit QLoRA needs a CUDA GPU and bitsandbytes (pip install 'edgemed[cuda]'); missing: a CUDA GPU
    """
    if not cfg.model.load_in_4bit:
        return QuantPlan(False, "load_in_4bit is off")
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    if bnb is None:
        bnb = importlib.util.find_spec("bitsandbytes") is not None
    if cuda and bnb:
        return QuantPlan(True, "CUDA and bitsandbytes available")
    missing = ", ".join(m for m, ok in (("a CUDA GPU", cuda), ("bitsandbytes", bnb)) if not ok)
    message = (f"4-bit QLoRA needs a CUDA GPU and bitsandbytes (pip install 'edgemed[cuda]'); "
               f"missing: {missing}")
    if cfg.model.require_4bit:
        raise ConfigError(f"model.require_4bit: {message}")
    log.warning("%s. Falling back to plain LoRA on a %s base (set model.require_4bit: true to "
                "fail instead).", message, cfg.model.dtype)
    return QuantPlan(False, f"fallback to plain LoRA: {message}")


def bnb_config(cfg: TrainConfig):
    """QLoRA's NF4 + double quantisation, computing in the configured dtype (bf16 on GPU)."""
    from transformers import BitsAndBytesConfig

    compute = cfg.model.dtype if cfg.model.dtype != "float32" else "bfloat16"
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
        # bf16 mixed precision only where the hardware has it; trl's default bf16 fails on CPU.
        use_cpu=not cuda, bf16=bool(cuda and cfg.model.dtype == "bfloat16"),
        fp16=bool(cuda and cfg.model.dtype == "float16"),
    )
    if g.vllm_server_base_url:
        kwargs["vllm_server_base_url"] = g.vllm_server_base_url
    if quant.load_in_4bit and g.gradient_checkpointing:
        kwargs["gradient_checkpointing_kwargs"] = {"use_reentrant": False}
    kwargs.update(g.extra)
    try:
        return GRPOConfig(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"grpo: rejected by trl.GRPOConfig: {e}") from e
