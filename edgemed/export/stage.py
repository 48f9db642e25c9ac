"""The export stage: source model → GGUF / ONNX builds → parity → ``manifest.json``.

    edgemed export --model default --profile cpu-x86-64 --out exports/smol

Reads top to bottom in the order it runs: load the config and device profile; resolve and check the
source; then for each build either skip it (same inputs key, file present) or build it in a staging
folder, measure parity (choosing prompts and held-out heart text), judge it, move it into place and
rewrite the manifest. A kill or a full disk leaves
finished artifacts and the manifest intact and nothing half-written under a final name.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from edgemed import console
from edgemed.errors import EnvironmentFailure, ParityError
from edgemed.export import gguf, heldout, imatrix, lora, onnx, onnx_genai, parity
from edgemed.export.config import BuildSpec, DeviceProfile, ExportConfig
from edgemed.errors import DataError
from edgemed.export.manifest import (MANIFEST_NAME, Artifact, Manifest, Source, artifact_bytes,
                                     artifact_digest, load_manifest)
from edgemed.export.modelfile import render_modelfile
from edgemed.export.quant_note import quant_note
from edgemed.export.source import check_supported, describe_source, read_config
from edgemed.locks import folder_lock

log = logging.getLogger(__name__)

TOOLS = ("edgemed", "llama_cpp_python", "gguf", "torch", "transformers", "optimum", "optimum-onnx",
         "onnx", "onnxruntime", "onnx-ir", "onnxruntime-genai")
BUILD_DIR = ".build"  # staging + the shared f32 GGUF / fp32 ONNX bases; removed after the run


class ParityFailed(ParityError):
    """Some artifact fell below its parity thresholds (the manifest is written and says which)."""

    def __init__(self, manifest: Manifest, failed: list[str]):
        self.manifest = manifest
        super().__init__(f"parity below thresholds for {', '.join(failed)} (see {manifest.path}; "
                         "--allow-degraded keeps them)")


def run(config: ExportConfig) -> Manifest:
    """Build every artifact of ``config`` that is missing or stale; return the written manifest.

    >>> m = run(ExportConfig(model="default", out="exports/smol", formats="gguf:q8_0"))  # doctest: +SKIP
    >>> m.artifact("gguf-q8_0").parity.top1_agreement  # doctest: +SKIP
    0.959
    """
    # 1. config + device profile
    profile = config.device_profile()
    builds = lora.with_lora_builds(config.build_list(profile), config.adapter)
    out = Path(config.out)
    # One writer per folder (a second export here stops at once, exit 2); the stage's lines and log file.
    with folder_lock(out), console.stage("export", out / console.LOGS_DIR) as stage:
        # 2. source model, checked before any work
        source = describe_source(config.model)
        check_supported(source, read_config(Path(source.path)), {b.format for b in builds})
        tools = tool_versions()
        manifest = _open_manifest(out, source, tools)
        stage.start(f"{len(builds)} build(s) of {config.model} → {out}")

        # 3. build, check, record — one artifact at a time, manifest rewritten after each
        work = _Work(config, profile, source, manifest, tools)
        try:
            for build in console.track(builds, "export", "build", name=lambda b: b.name):
                key = work.key_of(build)
                old = manifest.artifact(build.name)
                if old and not config.force and _up_to_date(old, key):
                    _rejudge(old, profile.thresholds_for(build.quant))
                    log.info("%s: up to date (%s), skipped", build.name, old.status)
                else:
                    manifest.put(_build_one(work, build, key, out))
                manifest.tools = tools
                manifest.write()
        finally:
            work.cleanup()

        # 4. verdict: failed → exit 3 (unless --allow-degraded); undecided → kept, with a warning
        failed = [a.name for a in manifest.artifacts if a.status == "failed" and
                  a.name in {b.name for b in builds}]
        stage.done(_tell(manifest, {b.name for b in builds}))
        if failed and not config.allow_degraded:
            raise ParityFailed(manifest, failed)
        return manifest


def _tell(manifest: Manifest, names: set[str]) -> str:
    """One terminal line per build whose parity failed or was undecided, or whose quant fell back; the
    stage's figures."""
    built = [a for a in manifest.artifacts if a.name in names]
    for a in built:
        if a.quant_note:
            console.warning(f"{a.name}: {a.quant_note}")
        if a.status == "failed" and a.parity is not None:
            reasons = [_gates_in_words(a.parity, "missed")] + ([] if a.parity.tokenizer_equal else
                                                                ["tokenizer DIFFERS"])
            if lora.merged_verdict(a.lora) == "missed":
                reasons.append("less faithful than the merged build of its quant beyond noise (lora.merged_gguf)")
            console.warning(f"{a.name}: parity below its bounds: {'; '.join(r for r in reasons if r)}")
        if a.status == "undecided":
            console.warning(f"{a.name}: undecided, kept: {_gates_in_words(a.parity, 'undecided')}; "
                            "a longer text would decide")
    top1 = sorted(a.parity.heldout.top1 if a.parity.heldout else a.parity.top1_agreement
                  for a in built if a.parity is not None)
    passed = sum(a.status == "passed" for a in built)
    undecided = sum(a.status == "undecided" for a in built)
    return (f"{passed} of {len(built)} build(s) passed parity" + (f", {undecided} undecided" if undecided else "")
            + (f", held-out top-1 {top1[0]:.3f}–{top1[-1]:.3f}" if top1 else "") + f"; {manifest.path}")


def _gates_in_words(p, verdict: str) -> str:
    """The bounds with this verdict (``missed``, ``undecided``): statistic, interval, bound."""
    return "; ".join(f"{g['statistic']} [{g['low']:.4f}, {g['high']:.4f}] against "
                     f"{'≥' if g['at_least'] else '≤'} {g['bound']:g} ({key})"
                     for key, g in (p.deciding_gates if p else {}).items() if g["verdict"] == verdict)


def _build_one(work: "_Work", build: BuildSpec, key: str, out: Path) -> Artifact:
    """Build one artifact in staging, measure parity, then move it under its final name."""
    final = out / build.name
    staging = work.root / f"{build.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    started = time.monotonic()
    log.info("%s: building", build.name)
    try:
        if build.format == "gguf-lora":
            rel, (extra, figures) = "", _build_gguf_lora(work, build, staging)
        else:
            if build.format == "gguf":
                rel, extra = _build_gguf(work, build, staging)
            elif build.format == "onnx-genai":
                rel, extra = "", {"tensor_types": onnx_genai.quantize(work.genai_base(), staging, build.quant)}
            else:
                rel, extra = _build_onnx(work, build, staging)
            ref, held = work.reference(), work.heldout()
            runtime = parity.open_runtime(build.format, staging / rel if build.format == "gguf" else staging,
                                          work.config.threads, n_ctx=max(ref.max_len, held.max_len) + 8)
            try:
                figures = parity.measure(runtime, ref, work.profile.thresholds_for(build.quant), held)
            finally:
                runtime.close()
        status = parity.judge(figures, work.profile.thresholds_for(build.quant),
                              lora.merged_verdict(extra.get("lora")))
        _replace_dir(staging, final, work.root)
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        if e.errno == errno.ENOSPC:
            raise EnvironmentFailure(f"{build.name}: no space left on device under {out}; the partial "
                                     "build was removed, finished artifacts are intact") from None
        raise EnvironmentFailure(f"{build.name}: {e.strerror or e} ({e.filename or out})") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    path = f"{build.name}/{rel}" if rel else build.name
    artifact = Artifact(
        name=build.name, format=build.format, quant=build.quant, path=path,
        bytes=artifact_bytes(out / path), sha256=artifact_digest(out / path),
        status=status, parity=figures,
        runtime=dict(work.profile.runtime.get(build.format, {})), inputs_key=key,
        build_seconds=round(time.monotonic() - started, 1), **extra)
    h = figures.heldout
    log.info("%s: %s — held-out top1 %.3f [%.3f, %.3f], KLD %.4f ± %.4f over %d positions; choosing "
             "prompts top1 %.3f, KL %.4f, greedy match %.1f; %.1f MB", build.name, artifact.status,
             h.top1, h.top1_ci_low, h.top1_ci_high, h.kld_mean, h.kld_mean_se, h.n_positions,
             figures.top1_agreement, figures.kl_mean, figures.greedy_match_len_mean, artifact.bytes / 1e6)
    return artifact


def _build_gguf(work: "_Work", build: BuildSpec, staging: Path) -> tuple[str, dict]:
    name = f"{Path(work.source.path).name}-{build.quant}.gguf"
    calibrated = work.config.imatrix != "none" and build.quant in imatrix.USES_IMATRIX
    if calibrated:
        matrix, record = work.imatrix()
        imatrix.quantize(work.gguf_base(), staging / name, build.quant, matrix, work.config.threads)
    else:
        gguf.quantize(work.gguf_base(), staging / name, build.quant, work.config.threads)
    gguf.check_tokenizer_survived(staging / name, work.tokenizer())
    types = gguf.tensor_types(staging / name)
    note = quant_note(build.quant, types, gguf.row_widths(staging / name))  # said again as the run ends
    (staging / "Modelfile").write_text(_modelfile(work, name, note=note), encoding="utf-8")
    return name, {"tensor_types": types, "quant_note": note,
                  "modelfile": f"{build.name}/Modelfile", "imatrix": record if calibrated else None}


def _modelfile(work: "_Work", gguf_name: str, adapter: str | None = None, note: str | None = None) -> str:
    tok = work.tokenizer()
    n_ctx = work.profile.runtime.get("gguf", {}).get("n_ctx")
    return render_modelfile(gguf_name, tok.chat_template if isinstance(tok.chat_template, str) else None,
                            [tok.eos_token] if tok.eos_token else [], n_ctx, adapter=adapter, note=note)


def _build_gguf_lora(work: "_Work", build: BuildSpec, staging: Path) -> tuple[dict, object]:
    """Base GGUF of this quant (built just before, in this run or an earlier one) + the adapter."""
    base = work.manifest.artifact(f"gguf-{build.quant}")
    if base is None or not base.abspath.is_file():
        raise EnvironmentFailure(f"{build.name}: the base build gguf-{build.quant} is missing")
    extra, figures = lora.build(work.adapter_inputs(), base.abspath, build.quant, staging, work.config.threads,
                                work.profile.thresholds_for(build.quant),
                                lambda base_name, adapter_name: _modelfile(work, base_name, adapter_name,
                                                                           note=base.quant_note))
    return {**extra, "quant_note": base.quant_note}, figures


def _build_onnx(work: "_Work", build: BuildSpec, staging: Path) -> tuple[str, dict]:
    if build.quant == "fp32":
        onnx.export_fp32(Path(work.source.path), staging)
    elif build.quant == "int8":
        onnx.quantize_int8(work.onnx_base(), staging, work.profile.onnx_int8_preset)
    else:
        onnx.quantize_int4(work.onnx_base(), staging)
    return "", {}


class _Work:
    """Lazily built shared inputs of one run: the reference, the tokenizer, the f32/fp32 bases."""

    def __init__(self, config: ExportConfig, profile: DeviceProfile, source: Source,
                 manifest: Manifest, tools: dict[str, str]):
        self.config, self.profile, self.source, self.manifest = config, profile, source, manifest
        self.tools, self.root = tools, manifest.dir / BUILD_DIR
        self._ref = self._heldout = self._tok = self._imatrix = self._adapter = None

    def key_of(self, build: BuildSpec) -> str:
        return inputs_key(self.source, build, self.tools, self.config, self.profile)

    def reference(self) -> parity.Reference:
        if self._ref is None:
            log.info("parity reference: PyTorch fp32 on %d heart prompts", self.config.n_prompts)
            self._ref = parity.torch_reference(Path(self.source.path), self.config.tf_tokens,
                                               self.config.greedy_tokens, self.config.threads,
                                               self.config.n_prompts)
        return self._ref

    def heldout(self) -> heldout.Reference:
        """The fp32 model on the held-out heart text (computed once; its log-probs memory-mapped here)."""
        if self._heldout is None:
            self._heldout = heldout.torch_reference(Path(self.source.path), self.root / "heldout-source.npy",
                                                    self.config.threads, self.config.heldout_docs)
        return self._heldout

    def adapter_inputs(self) -> lora.AdapterInputs:
        """The adapter's GGUF, the merged model and its reference (``--adapter`` runs only)."""
        if self._adapter is None:
            c = self.config
            self._adapter = lora.AdapterInputs(
                c.adapter, Path(self.source.path), self.root / "adapter",
                {"tf_tokens": c.tf_tokens, "greedy_tokens": c.greedy_tokens, "threads": c.threads,
                 "n_prompts": c.n_prompts}, c.heldout_docs)
        return self._adapter

    def tokenizer(self):
        if self._tok is None:
            from transformers import AutoTokenizer

            self._tok = AutoTokenizer.from_pretrained(self.source.path)
        return self._tok

    def gguf_base(self) -> Path:
        """The one f32 conversion every GGUF quant is made from (checked once)."""
        base = self.root / "source-f32.gguf"
        if not base.is_file():
            tmp = self.root / "source-f32.gguf.partial"
            gguf.convert_hf(Path(self.source.path), tmp)
            gguf.check_tokenizer_survived(tmp, self.tokenizer())
            os.replace(tmp, base)
        return base

    def onnx_base(self) -> Path:
        """The fp32 ONNX export int8/int4 are made from: the onnx-fp32 artifact if current."""
        done = self.manifest.artifact("onnx-fp32")
        if done and _up_to_date(done, self.key_of(BuildSpec("onnx", "fp32"))):
            return done.abspath
        base = self.root / "onnx-fp32-base"
        if not (base / onnx.ONNX_FILE).is_file():
            shutil.rmtree(base, ignore_errors=True)
            onnx.export_fp32(Path(self.source.path), base)
        return base

    def imatrix(self) -> tuple[Path, dict]:
        """The run's importance matrix from the f32 GGUF on the calibration text (computed once)."""
        if self._imatrix is None:
            out = self.root / f"imatrix-{self.config.imatrix}.gguf"
            text = imatrix.calibration_text(self.config.imatrix, self.tokenizer())
            log.info("importance matrix: llama-imatrix on %d chars of %s text", len(text), self.config.imatrix)
            self._imatrix = (out, imatrix.compute(self.gguf_base(), text, out, self.config.threads))
        return self._imatrix

    def genai_base(self) -> Path:
        """The builder's fp32 folder every onnx-genai build is quantized from (built once per run)."""
        base = self.root / "onnx-genai-fp32-base"
        if not (base / onnx_genai.ONNX_FILE).is_file():
            shutil.rmtree(base, ignore_errors=True)
            onnx_genai.export_fp32(Path(self.source.path), base)
        return base

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


# --- skip-if-unchanged ---------------------------------------------------------------------------

def inputs_key(source: Source, build: BuildSpec, tools: dict[str, str], config: ExportConfig,
               profile: DeviceProfile) -> str:
    """Hash of everything an artifact depends on; thresholds are excluded (re-judged on skip).

    >>> from edgemed.export.config import load_device_profile
    >>> src = Source("default", "/m", "ab", "LlamaForCausalLM", 1)
    >>> cfg = ExportConfig(); prof = load_device_profile("cpu-x86-64")
    >>> k = inputs_key(src, BuildSpec("onnx", "int8"), {"onnxruntime": "1.31.1"}, cfg, prof)
    >>> k == inputs_key(src, BuildSpec("onnx", "int8"), {"onnxruntime": "1.32.0"}, cfg, prof)
    False
    """
    options = {"tf_tokens": config.tf_tokens, "greedy_tokens": config.greedy_tokens,
               "n_prompts": config.n_prompts, "prompts": parity.HEART_PROMPTS,
               "probes": parity.TOKENIZER_PROBES, "heldout": heldout.documents_digest(),
               "heldout_max_tokens": heldout.MAX_DOC_TOKENS, "heldout_docs": config.heldout_docs}
    if build == BuildSpec("onnx", "int8"):
        options.update(int8_preset=profile.onnx_int8_preset, int8_keep_fp32=onnx.INT8_KEEP_FP32)
    if build == BuildSpec("onnx", "int4"):
        options["int4_block_size"] = onnx.INT4_BLOCK_SIZE
    if build.format == "onnx-genai":
        options["genai_recipe"] = onnx_genai.RECIPES[build.quant]
    if build.format == "gguf-lora":
        options.update(adapter=lora.adapter_fingerprint(config.adapter), adapter_outtype=lora.ADAPTER_OUTTYPE)
    if build.format == "gguf" and config.imatrix != "none" and build.quant in imatrix.USES_IMATRIX:
        options.update(imatrix=config.imatrix, imatrix_chunk=imatrix.CHUNK_TOKENS,
                       imatrix_text=imatrix.calibration_digest(config.imatrix))
    blob = json.dumps({"source": source.sha256, "build": list(build), "tools": tools,
                       "options": options}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _up_to_date(artifact: Artifact, key: str) -> bool:
    """Same inputs, and the file still the one the manifest records (size, sha256, structure)."""
    from edgemed.export.verify import reusable

    if artifact.inputs_key != key:
        return False
    problem = reusable(artifact)
    if problem:
        log.warning("%s: not reused, rebuilt: %s", artifact.name, problem)
    return problem is None


def _rejudge(artifact: Artifact, thresholds: dict[str, float]) -> None:
    """Apply the current thresholds to stored figures (no rebuild needed when only bounds change)."""
    if artifact.parity is not None:
        artifact.status = parity.judge(artifact.parity, thresholds, lora.merged_verdict(artifact.lora))


def _open_manifest(out: Path, source: Source, tools: dict[str, str]) -> Manifest:
    """The existing manifest when it describes the same source; otherwise a fresh one."""
    path = out / MANIFEST_NAME
    if path.is_file():
        try:
            old = load_manifest(path)
        except DataError as e:
            log.warning("ignoring unreadable %s (%s); rebuilding", path, e)
        else:
            if old.source.sha256 == source.sha256:
                old.source = source
                return old
            log.info("source model changed: previous artifacts in %s are rebuilt", out)
            for a in old.artifacts:
                shutil.rmtree(out / a.name, ignore_errors=True)
    return Manifest(path=path, source=source, tools=tools)


def _replace_dir(staging: Path, final: Path, scratch: Path) -> None:
    """Move ``staging`` to ``final``; an older ``final`` is moved aside first, then deleted."""
    old = scratch / f"{final.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)


def tool_versions() -> dict[str, str]:
    """Installed versions of the packages that shape the artifacts.

    >>> tool_versions()["gguf"]
    '0.19.0'
    """
    found = {}
    for name in TOOLS:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found
