"""What qwen3_heart_grpo_qlora gives trl, peft and bitsandbytes on a CUDA machine, checked without
a GPU and without loading the 14B model: the parts the CPU test (test_qwen3.py) cannot run the same
way — bfloat16 compute, the CUDA 4-bit plan, vLLM generation."""

from __future__ import annotations

import pytest

from edgemed.train.config import load_train_config
from edgemed.train.library_configs import QuantPlan, bnb_config, grpo_kwargs, lora_config, plan_quantization


@pytest.fixture
def cfg():
    return load_train_config("qwen3_heart_grpo_qlora")


def test_cuda_plan_and_bitsandbytes_config(cfg):
    plan = plan_quantization(cfg, cuda=True, bnb=True)
    assert (plan.load_in_4bit, plan.backend) == (True, "cuda")
    bnb = bnb_config(cfg, plan.backend)
    assert (bnb.load_in_4bit, bnb.bnb_4bit_quant_type, bnb.bnb_4bit_use_double_quant) == (True, "nf4", True)
    assert str(bnb.bnb_4bit_compute_dtype) == "torch.bfloat16"
    assert cfg.model.spec == "Qwen/Qwen3-14B-Base"


def test_peft_lora_config(cfg):
    lc = lora_config(cfg)
    assert (lc.r, lc.lora_alpha, lc.lora_dropout, lc.bias, str(lc.task_type)) == (16, 32, 0.0, "none", "CAUSAL_LM")
    assert sorted(lc.target_modules) == sorted(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                "up_proj", "down_proj"])


def test_trl_grpo_arguments_on_cuda(cfg):
    kw = grpo_kwargs(cfg, plan_quantization(cfg, cuda=True, bnb=True), cuda=True)
    assert (kw["bf16"], kw["fp16"], kw["use_cpu"]) == (True, False, False)
    assert kw["model_init_kwargs"] == {"dtype": "bfloat16"}
    assert kw["gradient_checkpointing"] is True
    assert kw["gradient_checkpointing_kwargs"] == {"use_reentrant": False}  # required with 4-bit + peft
    assert (kw["num_generations"], kw["per_device_train_batch_size"], kw["gradient_accumulation_steps"]) == (6, 6, 4)
    assert (kw["max_completion_length"], kw["learning_rate"], kw["beta"], kw["loss_type"]) == (1024, 5e-6, 0.0, "dapo")
    assert (kw["temperature"], kw["scale_rewards"], kw["max_steps"], kw["use_vllm"]) == (1.0, "group", 1000, False)
    # Every key is one trl 1.16's GRPOConfig accepts (built here in its CPU form: bf16 needs a GPU).
    from trl import GRPOConfig

    args = GRPOConfig(**{**kw, "bf16": False, "use_cpu": True})
    assert args.num_generations == 6 and args.gradient_checkpointing_kwargs == {"use_reentrant": False}


def test_vllm_colocate_and_server(cfg):
    on = load_train_config("qwen3_heart_grpo_qlora", {"grpo.use_vllm": True})
    kw = grpo_kwargs(on, QuantPlan(True, "", "cuda"), cuda=True)
    assert (kw["use_vllm"], kw["vllm_mode"], kw["vllm_gpu_memory_utilization"]) == (True, "colocate", 0.3)
    server = load_train_config("qwen3_heart_grpo_qlora", {
        "grpo.use_vllm": True, "grpo.vllm_mode": "server", "grpo.vllm_server_base_url": "http://127.0.0.1:8001"})
    kw = grpo_kwargs(server, QuantPlan(True, "", "cuda"), cuda=True)
    assert (kw["vllm_mode"], kw["vllm_server_base_url"]) == ("server", "http://127.0.0.1:8001")


def test_cpu_runs_the_same_plan_with_cpu_kernels(cfg):
    """The CPU test differs from a GPU run only in the kernels and the compute dtype."""
    cpu = plan_quantization(cfg, cuda=False, bnb=True, bnb_cpu=True)
    assert (cpu.load_in_4bit, cpu.backend) == (True, "cpu")
    gpu_kw = grpo_kwargs(cfg, plan_quantization(cfg, cuda=True, bnb=True), cuda=True)
    cpu_kw = grpo_kwargs(cfg, cpu, cuda=False)
    differ = {k for k in gpu_kw if gpu_kw[k] != cpu_kw[k]}
    assert differ == {"bf16", "use_cpu"}
