"""TrainConfig: the GRPO recipe's settings, one dataclass per YAML section, and how one is loaded.

Every field carries a one-line ``help`` saying why it exists. The fields that matter for rubric
GRPO are named here; anything else trl's ``GRPOConfig`` or peft's ``LoraConfig`` accept goes
through the ``extra`` dicts untouched, so the config never falls behind the libraries.

Loading is pure (YAML through ``edgemed.config_reader`` → overrides → cross-field checks): no
model, judge or data is touched, so a typo fails in milliseconds naming the file and the key.
How these fields become trl/peft objects: ``edgemed.train.library_configs``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgemed.config_reader import MISSING_KEY, find_config, from_mapping, packaged_names, read_mapping, set_dotted
from edgemed.errors import ConfigError
from edgemed.io import absolute
from edgemed.judges.config import JudgeConfig
from edgemed.train.processes import global_batch, launched_processes

PAPER_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
DTYPES = ("float32", "bfloat16", "float16")
SCALE_REWARDS = ("group", "batch", "none")
LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo")
VLLM_MODES = ("colocate", "server")


def _f(default: Any = None, help: str = "", factory: Any = None) -> Any:
    """A dataclass field with its one-line help (trl's convention)."""
    if factory is not None:
        return field(default_factory=factory, metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class ModelSection:
    """Which base model, in which precision."""

    spec: str = _f("default", "Model spec: 'default' (the shipped SmolLM2-135M-Instruct), a local HF "
                              "folder or a hub id; resolved by edgemed.models.resolve_model.")
    dtype: str = _f("float32", "Weights dtype for training; float32 on CPU (no fast bf16 kernels there), "
                               "bfloat16 on recent GPUs halves memory.")
    load_in_4bit: bool = _f(False, "QLoRA: load the frozen base in 4-bit NF4 (bitsandbytes, CUDA) so a "
                                   "larger model fits one GPU; falls back to plain LoRA elsewhere.")
    require_4bit: bool = _f(False, "Fail instead of falling back to plain LoRA when 4-bit loading is "
                                   "impossible, so a GPU run never silently trains in full precision.")
    attn_implementation: str | None = _f(None, "transformers attention backend (sdpa, eager, "
                                               "flash_attention_2); None lets transformers pick.")


@dataclass
class LoraSection:
    """The LoRA adapter (peft.LoraConfig)."""

    r: int = _f(16, "Adapter rank; the paper used 16.")
    alpha: int = _f(32, "LoRA scaling numerator (update scaled by alpha/r); the paper used 32.")
    dropout: float = _f(0.05, "Dropout on the adapter input; small regularisation for tiny datasets.")
    target_modules: list[str] | str = _f(None, "Linear layers to adapt; the paper's q,k,v,o,gate,up,down "
                                               "by default, or 'all-linear'.", factory=lambda: list(PAPER_TARGETS))
    extra: dict[str, Any] = _f(None, "Any other peft.LoraConfig argument (use_rslora, use_dora, "
                                     "layers_to_transform, ...), passed through.", factory=dict)


@dataclass
class DataSection:
    """Which prompts GRPO trains on, and the guard against evaluation leaks."""

    source: str = _f("edgemed-heart", "Rubric set: 'edgemed-heart' (the packaged heart set in RaR-Medicine "
                                      "format), a JSONL/parquet path or a datasets id.")
    split: str | None = _f("train", "Keep only records of this split, so validation/test prompts are "
                                    "never trained on; null keeps all (for sources without splits).")
    system_prompt: str | None = _f("default", "System message put before each prompt: 'default' (edgemed's "
                                              "heart-assistant prompt), 'brief' (the same, asking for at most "
                                              "five sentences: small CPU models otherwise overrun the token cap), "
                                              "any text, or null for none.")
    min_rubric_items: int = _f(4, "Drop prompts with fewer rubric items; the paper kept > 3, since short "
                                  "rubrics give coarse, low-variance rewards.")
    max_prompts: int | None = _f(None, "Use at most this many prompts (after filtering, in a seeded "
                                       "shuffle); handy for smoke runs.")
    max_prompt_chars: int | None = _f(None, "Drop prompts whose turns hold more characters than this: GRPO's "
                                            "loss holds prompt+completion × vocabulary logits, so one long "
                                            "HealthBench conversation can need over 10 GB on a CPU; None keeps all.")
    healthbench_mix: int = _f(0, "Add this many HealthBench records from outside the eval heart subset "
                                 "(-1: all of them) for broader medical coverage; 0 off.")
    healthbench_source: str | None = _f(None, "HealthBench file for the eval guard and the mix; None: the "
                                              "packaged 500-record HealthBench file.")
    eval_rule: str = _f("heart-keywords-v1", "Heart rule that defines the eval subset (must match bench), "
                                             "whose prompts may never appear in training.")
    check_eval_leak: bool = _f(True, "Refuse to train when a training prompt (by prompt_id or text) is in "
                                     "the HealthBench heart eval subset.")


@dataclass
class GrpoSection:
    """GRPO knobs (trl.GRPOConfig); names match trl so its docs apply."""

    max_steps: int = _f(1000, "Optimizer steps; the paper trained 1,000.")
    num_generations: int = _f(6, "Completions per prompt (the GRPO group); the paper used 6.")
    per_device_train_batch_size: int = _f(6, "Completions per process per micro-step; times "
                                             "gradient_accumulation_steps and processes it must hold whole "
                                             "groups (a multiple of num_generations; a group may span processes).")
    gradient_accumulation_steps: int = _f(1, "Micro-steps per optimizer step; raises prompts per update "
                                             "without more memory.")
    max_completion_length: int = _f(1024, "Generated tokens per completion; the paper used 1,024, the CPU "
                                          "config far fewer since generation dominates step time.")
    temperature: float = _f(1.0, "Sampling temperature; 1.0 (paper) keeps groups diverse enough to have "
                                 "reward spread.")
    top_p: float = _f(1.0, "Nucleus sampling cut-off; 1.0 samples the full distribution like the paper.")
    learning_rate: float = _f(5e-6, "Adapter learning rate; the paper used 5e-6.")
    lr_scheduler_type: str = _f("constant", "LR schedule (transformers names); constant keeps resumed runs "
                                            "and short smoke runs comparable.")
    warmup_steps: int = _f(0, "Linear warm-up steps before the schedule.")
    beta: float = _f(0.0, "KL penalty to the base model; 0 (trl's default) skips the reference model, "
                          "halving forward passes.")
    loss_type: str = _f("dapo", f"trl loss aggregation, one of {LOSS_TYPES}; dr_grpo removes the length bias "
                                "(Dr. GRPO), dapo is trl's default.")
    scale_rewards: str = _f("group", "Advantage scaling: group (divide by the group's std, GRPO), batch, or "
                                     "none (Dr. GRPO) which keeps judge noise in near-flat groups small.")
    multi_objective_aggregation: str = _f("sum_then_normalize", "How several rewards combine: "
                                          "sum_then_normalize or normalize_then_sum (GDPO).")
    mask_truncated_completions: bool = _f(False, "Exclude completions cut at max_completion_length from "
                                                 "the loss (DAPO); useful when lengths are tight.")
    gradient_checkpointing: bool = _f(False, "Recompute activations in backward to save memory; costs "
                                             "~30% time, worth it only for long completions on GPU.")
    logging_steps: int = _f(1, "Log every N steps; 1 gives the training log one row per step.")
    save_steps: int = _f(50, "Checkpoint every N steps, the unit of loss after a kill.")
    save_total_limit: int | None = _f(2, "Keep at most this many checkpoints; older ones are deleted.")
    log_completions: bool = _f(False, "Print a sample of prompts/completions/rewards at each log step.")
    use_vllm: bool = _f(False, "Generate with vLLM (CUDA only): the main speed-up for long completions.")
    vllm_mode: str = _f("colocate", "colocate (vLLM shares the training GPUs) or server (a separate "
                                    "`trl vllm-serve` process on other GPUs).")
    vllm_server_base_url: str | None = _f(None, "server mode: URL of the `trl vllm-serve` process.")
    vllm_gpu_memory_utilization: float = _f(0.3, "colocate mode: share of GPU memory vLLM may take.")
    extra: dict[str, Any] = _f(None, "Any other trl.GRPOConfig argument, passed through as-is "
                                     "(e.g. epsilon_high, top_entropy_quantile, deepspeed).", factory=dict)


@dataclass
class TrainConfig:
    """The whole training stage. ``rewards`` entries are ``edgemed.rewards.RewardConfig`` dicts."""

    output_dir: str = _f("runs/train", "Where checkpoints, the adapter, the log and manifest.json go; an "
                                       "existing run there is resumed.")
    seed: int = _f(42, "Seed for LoRA init, data order and sampling.")
    resume: bool = _f(True, "Continue from the last checkpoint-* in output_dir after a kill.")
    model: ModelSection = _f(None, "Base model and precision.", factory=ModelSection)
    lora: LoraSection = _f(None, "LoRA adapter shape.", factory=LoraSection)
    data: DataSection = _f(None, "Training prompts and eval-leak guard.", factory=DataSection)
    judge: JudgeConfig = _f(None, "Default judge for every reward that does not set its own.",
                            factory=JudgeConfig)
    rewards: list[dict[str, Any]] = _f(None, "Rewards by registry name (explicit, implicit, hybrid, "
                                             "complexity, ...) or dotted path, each with a weight.",
                                       factory=lambda: [{"name": "complexity", "weight": 1.0}])
    grpo: GrpoSection = _f(None, "GRPO settings.", factory=GrpoSection)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for the manifest (the judge keeps only its key's env-var name).

        >>> TrainConfig().to_dict()["grpo"]["num_generations"]
        6
        """
        return asdict(self)


def field_help(cls: type) -> dict[str, str]:
    """Each field's one-line help, for ``--help`` text and docs.

    >>> field_help(GrpoSection)["beta"][:10]
    'KL penalty'
    """
    return {name: f.metadata.get("help", "") for name, f in cls.__dataclass_fields__.items()}


# --- loading ----------------------------------------------------------------------------------

def packaged_configs() -> list[str]:
    """Names of the training configs shipped in ``edgemed/configs`` (usable as ``--config NAME``).

    >>> "smollm2_heart_grpo_cpu" in packaged_configs(), "pipeline_default" in packaged_configs()
    (True, False)
    """
    return [n for n in packaged_names() if not n.startswith("pipeline_")]


def config_path(name_or_path: str) -> Path:
    """A config path from a packaged name (``smollm2_heart_grpo_cpu``) or a file path.

    >>> config_path("smollm2_heart_grpo_cpu").name
    'smollm2_heart_grpo_cpu.yaml'
    """
    return find_config(name_or_path, "training config")


def load_train_config(name_or_path: str | None = None, overrides: dict[str, Any] | None = None,
                      overrides_from: str = "--set", overrides_key: str = "") -> TrainConfig:
    """Load a YAML config, apply dotted-key overrides, type-check and check it.

    ``overrides_from`` and ``overrides_key`` say where the overrides came from in error messages
    (the pipeline passes its own file and ``train``).

    >>> cfg = load_train_config("smollm2_heart_grpo_cpu", {"grpo.max_steps": 3})
    >>> cfg.grpo.max_steps, cfg.judge.backend
    (3, 'proxy')
    >>> load_train_config("smollm2_heart_grpo_cpu", {"grpo.max_step": 3})
    Traceback (most recent call last):
    ...
    edgemed.errors.ConfigError: --set: grpo.max_step: unknown key (known: beta, ...)
    """
    raw: dict[str, Any] = {}
    where = "<defaults>"
    if name_or_path is not None:
        path = config_path(name_or_path)
        where = str(path)
        raw = read_mapping(path)
    cfg = from_mapping(TrainConfig, raw, where)
    for key, value in (overrides or {}).items():
        set_dotted(cfg, key, value, overrides_from, overrides_key)
    check_config(cfg, where)
    cfg.output_dir = absolute(cfg.output_dir)  # resolved where it enters: checkpoints outlive the cwd
    return cfg


def check_config(cfg: TrainConfig, where: str) -> None:
    """Cross-field checks that need no model, data or network.

    >>> cfg = TrainConfig(); cfg.grpo.per_device_train_batch_size = 4
    >>> check_config(cfg, "x.yaml")
    Traceback (most recent call last):
    ...
    edgemed.errors.ConfigError: x.yaml: grpo.per_device_train_batch_size (4) x gradient_accumulation_steps (1) x processes (1) must be a multiple of grpo.num_generations (6)
    """
    g = cfg.grpo

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(f"{where}: {message}")

    need(cfg.model.dtype in DTYPES, f"model.dtype must be one of {DTYPES}, got {cfg.model.dtype!r}")
    need(g.scale_rewards in SCALE_REWARDS, f"grpo.scale_rewards must be one of {SCALE_REWARDS}, "
                                           f"got {g.scale_rewards!r}")
    need(g.loss_type in LOSS_TYPES, f"grpo.loss_type must be one of {LOSS_TYPES}, got {g.loss_type!r}")
    need(g.vllm_mode in VLLM_MODES, f"grpo.vllm_mode must be one of {VLLM_MODES}, got {g.vllm_mode!r}")
    need(g.num_generations >= 2, "grpo.num_generations must be >= 2: a group of one has no spread")
    # trl's generation batch must hold whole groups; under `accelerate launch` a group may span
    # processes, so the launcher's process count is part of the product.
    processes = launched_processes()
    need(global_batch(g.per_device_train_batch_size, g.gradient_accumulation_steps, processes)
         % g.num_generations == 0,
         f"grpo.per_device_train_batch_size ({g.per_device_train_batch_size}) x "
         f"gradient_accumulation_steps ({g.gradient_accumulation_steps}) x processes ({processes}) "
         f"must be a multiple of grpo.num_generations ({g.num_generations})")
    for name in ("max_steps", "max_completion_length", "logging_steps", "save_steps",
                 "gradient_accumulation_steps"):
        need(getattr(g, name) >= 1, f"grpo.{name} must be >= 1, got {getattr(g, name)}")
    need(g.learning_rate > 0, f"grpo.learning_rate must be > 0, got {g.learning_rate}")
    need(cfg.lora.r >= 1, f"lora.r must be >= 1, got {cfg.lora.r}")
    need(cfg.data.min_rubric_items >= 1, "data.min_rubric_items must be >= 1")
    need(cfg.data.healthbench_mix >= -1, "data.healthbench_mix must be -1 (all), 0 (off) or a count")
    need(cfg.data.max_prompt_chars is None or cfg.data.max_prompt_chars > 0,
         "data.max_prompt_chars must be None or a positive number of characters")
    need(bool(cfg.rewards), "rewards: at least one reward is needed")
    for i, entry in enumerate(cfg.rewards):
        if not entry.get("name"):  # each reward is named: a registry name or a dotted path
            raise ConfigError(MISSING_KEY, where, f"rewards[{i}].name")
    judges = [cfg.judge] + [rc.judge for rc in build_reward_configs(cfg, where)]
    for judge in judges:
        if judge.backend == "openai":
            need(bool(judge.base_url) and str(judge.base_url).startswith(("http://", "https://")),
                 f"judge.base_url must be an http(s) URL for the openai backend, got {judge.base_url!r}")
    for name in ("use_vllm", "vllm_mode", "vllm_server_base_url", "vllm_gpu_memory_utilization"):
        need(name not in g.extra or name == "vllm_server_base_url",
             f"grpo.extra.{name}: set grpo.{name} instead")
    need(not (g.use_vllm and g.vllm_mode == "server" and not g.vllm_server_base_url
              and "vllm_server_host" not in g.extra),
         "grpo.vllm_mode=server needs grpo.vllm_server_base_url (the `trl vllm-serve` URL)")


def build_reward_configs(config: TrainConfig, where: str = "config") -> list:
    """``rewards`` entries → RewardConfig, each inheriting the top-level judge unless it sets one.

    >>> cfg = TrainConfig(); cfg.rewards = [{"name": "complexty"}]
    >>> build_reward_configs(cfg)
    Traceback (most recent call last):
    ...
    edgemed.errors.ConfigError: config: rewards[0]: unknown reward 'complexty'; known: ...
    """
    from edgemed.rewards import RewardConfig

    built = []
    for i, entry in enumerate(config.rewards):
        entry = dict(entry)
        entry.setdefault("judge", config.judge)
        built.append(RewardConfig.from_dict(entry, where, f"rewards[{i}]"))
    labels = [rc.label for rc in built]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{where}: rewards: two rewards log under the same name ({labels}); trl needs them distinct")
    return built
