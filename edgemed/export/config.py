"""What to build and how faithful it must be: ``ExportConfig`` and the device profiles.

A device profile (``edgemed/configs/devices/NAME.toml``, installed with the package) names the builds
worth making for a class of device, the runtime settings the bench stage should use for them, and
per-quant parity thresholds. The CLI's ``--formats`` overrides the profile's build list. Profiles
are read by ``edgemed.config_reader``, like every other config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from edgemed.config_reader import find_config, packaged_dir, read_config
from edgemed.errors import ConfigError
from edgemed.export.manifest import QUANTS
from edgemed.io import absolute

# Shipped device profiles live inside the package, so a plain `pip install .` has them too.
DEVICES_DIR = packaged_dir("devices")
# top1_agreement and greedy_match_len_mean are lower bounds, kl_mean an upper bound.
THRESHOLD_KEYS = ("top1_agreement", "kl_mean", "greedy_match_len_mean")
# top1_agreement and kl_mean bound the held-out text's top-1 (Wilson interval) and mean KLD (± 1.96 SE);
# they were chosen on the choosing documents by benchmarks/fidelity_bounds.py (its results file holds
# the rule and the figures; tests/export/test_config.py checks these agree with it): catch a broken or
# degraded build, do not certify a low-bit 135M build as faithful. A key shared by two formats takes
# the less faithful one's bound (int8: the optimum dynamic build, 0.64 top-1 where GenAI int8 is 0.96).
# greedy_match_len_mean bounds the choosing prompts' greedy match (plain). A profile can override any.
DEFAULT_THRESHOLDS: dict[str, dict[str, float]] = {
    "f16": {"top1_agreement": 0.99, "kl_mean": 0.002, "greedy_match_len_mean": 16},
    "q8_0": {"top1_agreement": 0.94, "kl_mean": 0.0096, "greedy_match_len_mean": 8},
    "q5_k_m": {"top1_agreement": 0.76, "kl_mean": 0.17, "greedy_match_len_mean": 4},
    "q4_k_m": {"top1_agreement": 0.79, "kl_mean": 0.13, "greedy_match_len_mean": 2},
    "q4_0": {"top1_agreement": 0.55, "kl_mean": 0.64, "greedy_match_len_mean": 0.5},
    "q3_k_m": {"top1_agreement": 0.69, "kl_mean": 0.31, "greedy_match_len_mean": 0.25},
    "q2_k": {"top1_agreement": 0.47, "kl_mean": 0.96, "greedy_match_len_mean": 0.0},
    "fp32": {"top1_agreement": 0.99, "kl_mean": 0.002, "greedy_match_len_mean": 24},
    "int8": {"top1_agreement": 0.45, "kl_mean": 1.3, "greedy_match_len_mean": 2},
    "int4": {"top1_agreement": 0.55, "kl_mean": 0.64, "greedy_match_len_mean": 0.5},
}
INT8_PRESETS = ("avx2", "avx512", "avx512_vnni", "arm64")


class BuildSpec(NamedTuple):
    """One build: a format and a quant, written ``gguf:q4_k_m``.

    >>> BuildSpec.parse("GGUF:Q4_K_M")
    BuildSpec(format='gguf', quant='q4_k_m')
    >>> BuildSpec.parse("onnx:int8").name
    'onnx-int8'
    >>> BuildSpec.parse("gguf:q3_k")
    Traceback (most recent call last):
    ...
    edgemed.errors.ConfigError: unknown gguf quant 'q3_k' (known: f16, q8_0, q4_k_m, q5_k_m, q4_0, q3_k_m, q2_k)
    """

    format: str
    quant: str
    type_name = "FORMAT:QUANT (e.g. gguf:q4_k_m)"  # how a config error names the expected value

    @property
    def name(self) -> str:
        return f"{self.format}-{self.quant}"

    @classmethod
    def parse(cls, text: str) -> "BuildSpec":
        fmt, sep, quant = text.strip().lower().partition(":")
        if not sep:
            raise ConfigError(f"build {text!r} must be FORMAT:QUANT, e.g. gguf:q4_k_m or onnx:int8")
        if fmt not in QUANTS:
            raise ConfigError(f"unknown format {fmt!r} in {text!r} (known: {', '.join(QUANTS)})")
        if quant not in QUANTS[fmt]:
            raise ConfigError(f"unknown {fmt} quant {quant!r} (known: {', '.join(QUANTS[fmt])})")
        return cls(fmt, quant)


def parse_builds(text: str | list[str]) -> list[BuildSpec]:
    """``"gguf:q8_0,onnx:int8"`` (or a list) → build specs, duplicates dropped, order kept.

    >>> [b.name for b in parse_builds("gguf:q8_0, onnx:int8,gguf:q8_0")]
    ['gguf-q8_0', 'onnx-int8']
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    builds = [BuildSpec.parse(t) for t in items if t.strip()]
    if not builds:
        raise ConfigError("no builds given (e.g. --formats gguf:q8_0,onnx:int8)")
    return list(dict.fromkeys(builds))


@dataclass
class DeviceProfile:
    """A device class: which builds to make, how to run them, how close they must stay."""

    builds: list[BuildSpec] = field(metadata={
        "help": "Builds worth making for this device, like [\"gguf:q4_k_m\", \"onnx:int8\"]; --formats overrides."})
    name: str = field(default="", metadata={
        "help": "Profile id, e.g. cpu-x86-64 (default: the file's name); recorded in the manifest."})
    description: str = field(default="", metadata={"help": "The devices this profile is for."})
    runtime: dict[str, dict[str, Any]] = field(default_factory=dict, metadata={
        "help": "Per-format runtime hints copied into each artifact for the bench stage "
                "(gguf: n_threads, n_gpu_layers, n_ctx; onnx: execution_provider, threads)."})
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict, metadata={
        "help": "Per-quant parity bounds, merged over DEFAULT_THRESHOLDS."})
    onnx_int8_preset: str = field(default="avx2", metadata={
        "help": "optimum AutoQuantizationConfig preset for dynamic int8: the instruction set decides "
                "which int8 kernels exist (u8s8 on AVX2, s8s8 on arm64)."})
    path: Path | None = field(default=None, metadata={
        "config": False, "help": "The .toml this profile was read from (set by the loader)."})

    def __post_init__(self) -> None:
        if not self.builds:
            raise ConfigError("no builds given (e.g. [\"gguf:q4_k_m\", \"onnx:int8\"])", key="builds")
        self.builds = list(dict.fromkeys(self.builds))
        for quant, bounds in self.thresholds.items():
            if quant not in DEFAULT_THRESHOLDS:
                raise ConfigError(f"unknown quant (known: {', '.join(DEFAULT_THRESHOLDS)})",
                                  key=f"thresholds.{quant}")
            for key in bounds:
                if key not in THRESHOLD_KEYS:
                    raise ConfigError(f"unknown bound (known: {', '.join(THRESHOLD_KEYS)})",
                                      key=f"thresholds.{quant}.{key}")
        for fmt in self.runtime:
            if fmt not in QUANTS:
                raise ConfigError(f"unknown format (known: {', '.join(QUANTS)})", key=f"runtime.{fmt}")
        if self.onnx_int8_preset not in INT8_PRESETS:
            raise ConfigError(f"must be one of {INT8_PRESETS}, got {self.onnx_int8_preset!r}",
                              key="onnx_int8_preset")

    def thresholds_for(self, quant: str) -> dict[str, float]:
        return {**DEFAULT_THRESHOLDS[quant], **self.thresholds.get(quant, {})}


def load_device_profile(spec: str | Path) -> DeviceProfile:
    """Load a profile from a .toml path or a name under ``edgemed/configs/devices/``.

    >>> d = load_device_profile("cpu-x86-64")
    >>> d.name, d.builds[0].name, d.runtime["gguf"]["n_gpu_layers"]
    ('cpu-x86-64', 'gguf-f16', 0)
    """
    path = find_config(spec, "device profile", "devices", ".toml")
    profile = read_config(DeviceProfile, path, defaults={"name": path.stem})
    profile.path = path
    return profile


@dataclass
class ExportConfig:
    """Everything one ``edgemed export`` run needs.

    >>> ExportConfig(model="default", out="exports/smol", profile="cpu-x86-64").build_list()[0].name
    'gguf-f16'
    """

    model: str = field(default="default", metadata={
        "help": "A merged model folder, a hub id, or 'default' (the shipped SmolLM2-135M-Instruct)."})
    out: str = field(default="exports/default", metadata={
        "help": "Output folder: artifacts, Modelfiles and manifest.json; re-runs reuse it."})
    profile: str = field(default="cpu-x86-64", metadata={
        "help": "Device profile name (edgemed/configs/devices/) or .toml path: builds, runtime hints "
                "and parity thresholds."})
    formats: str | None = field(default=None, metadata={
        "help": "Comma list like gguf:q4_k_m,onnx:int8 overriding the profile's builds."})
    allow_degraded: bool = field(default=False, metadata={
        "help": "Exit 0 even when an artifact fails parity (it is still marked failed in the manifest)."})
    tf_tokens: int = field(default=64, metadata={
        "help": "Teacher-forced positions per prompt for top-1 agreement and KL; bounds parity time."})
    n_prompts: int = field(default=8, metadata={
        "help": "How many of the fixed heart prompts parity uses (at most 8); fewer for quick tests."})
    heldout_docs: int | None = field(default=None, metadata={
        "help": "How many held-out heart documents the gated fidelity statistics read (None: all 23, "
                "about 6,100 positions); fewer for quick tests, where wider intervals leave more "
                "builds undecided."})
    greedy_tokens: int = field(default=32, metadata={
        "help": "Greedy continuation length compared token by token with the PyTorch model."})
    threads: int = field(default=2, metadata={
        "help": "CPU threads for quantizing and for the parity runs (not the bench runtime hints)."})
    imatrix: str = field(default="none", metadata={
        "help": "Calibrate GGUF k-quants and low-bit types with an importance matrix from this text: "
                "'heart' (packaged heart rubric Q&A, never the parity prompts) or 'none'."})
    force: bool = field(default=False, metadata={
        "help": "Rebuild every artifact even when its inputs are unchanged."})
    adapter: str | None = field(default=None, metadata={
        "help": "A LoRA adapter folder (peft) to ship as a GGUF LoRA applied on top of the base GGUFs "
                "(gguf-lora-QUANT builds), so one base can serve several adapters on a device."})

    def __post_init__(self) -> None:
        # Resolved where they enter: the GGUF converter runs in its own folder.
        self.out = absolute(self.out)
        if self.imatrix not in ("none", "heart"):
            raise ConfigError(f"unknown imatrix source {self.imatrix!r} (known: none, heart)", key="imatrix")
        if self.heldout_docs is not None and self.heldout_docs < 1:
            raise ConfigError(f"must be at least 1 (or null: all), got {self.heldout_docs}", key="heldout_docs")
        if self.model != "default" and Path(self.model).expanduser().exists():
            self.model = absolute(self.model)
        if self.adapter is not None:
            self.adapter = absolute(self.adapter)

    def device_profile(self) -> DeviceProfile:
        return load_device_profile(self.profile)

    def build_list(self, profile: DeviceProfile | None = None) -> list[BuildSpec]:
        if self.formats:
            return parse_builds(self.formats)
        return (profile or self.device_profile()).builds
