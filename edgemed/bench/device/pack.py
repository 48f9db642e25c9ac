"""``edgemed bench pack``: export manifests → a bench bundle a user copies to a device.

Runs on the host with the full kit. The builds are chosen as ``edgemed bench`` chooses them (each
manifest's artifacts that passed parity, checked against the manifest's sha256 first, plus
``references``) minus the PyTorch source-model row, which needs torch and so stays on the host.
Each build is copied into ``BUNDLE/builds/<label>/`` through a ``.partial`` folder and hashed
file by file; the copy must hash to the manifest's digest, or the pack stops. The prompts are the
ones ``edgemed bench`` would answer (rubrics included, for grading back on the host), and the
settings are the merged suite with any named system prompt replaced by its text, so a device
with another edgemed version answers the same conversations. Re-running a pack into the same
folder keeps the builds already copied; a folder holding another bundle is refused.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgemed.bench.config import BenchConfig, load_config
from edgemed.bench.device.bundle import KIND, SCHEMA_VERSION, TARGET_FIELDS, bundle_id, file_entry
from edgemed.bench.layout import BUILDS_DIR, BUNDLE, PACK_PARTIAL, PROMPTS, label_name
from edgemed.bench.targets import Target
from edgemed.errors import ConfigError, DataError
from edgemed.io import write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)


def device_settings(cfg: BenchConfig) -> dict[str, Any]:
    """The settings a device runs with (and the host grades with): quality, latency, device, judges.

    >>> s = device_settings(load_config({"suite": "smoke", "quality": {"system_prompt": "brief"}}))
    >>> s["quality"]["system_prompt"].endswith("at most five sentences."), s["latency"]["n_prompt"]
    (True, 64)
    """
    from edgemed.models.chat import resolve_system_prompt

    d = cfg.to_dict()
    quality = {**d["quality"], "system_prompt": resolve_system_prompt(d["quality"]["system_prompt"])}
    return {"quality": quality, "latency": d["latency"], "device": cfg.device, "judge": dict(cfg.judge),
            "train_judge": cfg.train_judge}


def folder_digest(entries: list[dict[str, Any]], prefix: str) -> str:
    """``edgemed.export.manifest.artifact_digest`` of a folder, from its files' bundle entries.

    >>> import tempfile
    >>> from edgemed.export.manifest import artifact_digest
    >>> root = Path(tempfile.mkdtemp()); d = root / "builds" / "x"; (d / "sub").mkdir(parents=True)
    >>> _ = (d / "model.onnx").write_bytes(b"g"); _ = (d / "sub" / "w.data").write_bytes(b"w")
    >>> files = [file_entry(root, p) for p in sorted(d.rglob("*")) if p.is_file()]
    >>> folder_digest(files, "builds/x") == artifact_digest(d)
    True
    """
    h = hashlib.sha256()
    for e in sorted(entries, key=lambda e: e["path"]):
        h.update(f"{e['path'][len(prefix) + 1:]}\0{e['sha256']}\n".encode())
    return h.hexdigest()


def copy_build(target: Target, root: Path) -> tuple[str, list[dict[str, Any]]]:
    """Copy one build into ``root/builds/<label>/`` (kept if already there and whole); returns its
    path relative to the bundle and its files' entries. The copy must hash to the manifest's digest."""
    src = Path(target.path)
    rel_dir = f"{BUILDS_DIR}/{label_name(target.label)}"
    dest = root / rel_dir
    rel = f"{rel_dir}/{src.name}" if src.is_file() else rel_dir

    def entries(base: Path) -> list[dict[str, Any]]:  # paths as they will be under dest
        found = [file_entry(base, p) for p in sorted(base.rglob("*")) if p.is_file()]
        return [{**e, "path": f"{rel_dir}/{e['path']}"} for e in found]

    def digest(files: list[dict[str, Any]]) -> str:
        return files[0]["sha256"] if src.is_file() and len(files) == 1 else folder_digest(files, rel_dir)

    if dest.is_dir():
        files = entries(dest)
        if files and digest(files) == target.sha256:
            log.info("pack: %s already in the bundle", target.label)
            return rel, files
        shutil.rmtree(dest)
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    log.info("pack: copying %s (%.1f MB)", target.label, target.bytes / 1e6)
    if src.is_file():
        tmp.mkdir(parents=True)
        shutil.copyfile(src, tmp / src.name)
    else:
        shutil.copytree(src, tmp, copy_function=shutil.copyfile)
    files = entries(tmp)
    if digest(files) != target.sha256:
        shutil.rmtree(tmp)
        raise DataError(f"the copy of {target.label} hashes to {digest(files)}, but its manifest says "
                        f"{target.sha256}: it changed while being packed; re-run the pack", path=str(src))
    tmp.rename(dest)
    return rel, files


def claim_folder(out: Path, new_id: str) -> None:
    """Refuse to pack into a folder that holds another bundle (or anything else); mark the pack as under way."""
    for name in (BUNDLE, PACK_PARTIAL):
        path = out / name
        if path.is_file():
            try:
                old = json.loads(path.read_text(encoding="utf-8")).get("bundle_id")
            except (OSError, ValueError, AttributeError):
                old = None
            if old != new_id:
                raise DataError(f"holds another bundle ({old or 'unreadable'}; this one would be {new_id}): pack "
                                "into a new folder, or delete this one first", path=str(out))
            break
    else:
        if out.is_dir() and any(out.iterdir()):
            raise DataError("not empty and not a bench bundle: pack into a new or empty folder", path=str(out))
    write_json_atomic(out / PACK_PARTIAL, {"bundle_id": new_id})  # the pack is under way


def pack(config: BenchConfig | dict[str, Any]) -> dict[str, Any]:
    """Write the bundle into ``config.out``; returns bundle.json's content."""
    import edgemed
    from edgemed.bench.stage import collect_targets, select_prompts

    # A BenchConfig is already merged (loading it again would look its suite up by name, not path).
    cfg = replace(config) if isinstance(config, BenchConfig) else load_config(config)
    if cfg.artifacts and "torch-fp32" in cfg.artifacts:
        raise ConfigError("torch-fp32 runs on the host only (a device install has no torch); bench it there with "
                          "`edgemed bench`, and pack the exported builds", key="artifacts")
    cfg.include_base = False
    targets = collect_targets(cfg)
    if not targets:
        raise ConfigError("nothing to pack: no manifest artifact passed parity and no references "
                          "(use --include-failed, --reference default, or another manifest)")
    records, subset = select_prompts(cfg) if cfg.quality.enabled else ([], None)
    prompts_text = "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records)
    settings = device_settings(cfg)
    builds = [{**{k: getattr(t, k) for k in TARGET_FIELDS}, "backend": t.backend} for t in targets]
    new_id = bundle_id(settings, hashlib.sha256(prompts_text.encode()).hexdigest(), builds)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    claim_folder(out, new_id)

    prompts = write_text_atomic(out / PROMPTS, prompts_text)
    for target, build in zip(targets, builds):
        build["path"], build["files"] = copy_build(target, out)
    data = {"schema_version": SCHEMA_VERSION, "kind": KIND, "bundle_id": new_id,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "edgemed_version": edgemed.__version__, "suite": cfg.suite,
            "groups": [m.label for m in cfg.manifests], "settings": settings, "heart_subset": subset,
            "prompts": {**file_entry(out, prompts), "n": len(records)}, "builds": builds,
            "bytes": sum(f["bytes"] for b in builds for f in b["files"])}
    write_json_atomic(out / BUNDLE, data)
    (out / PACK_PARTIAL).unlink(missing_ok=True)
    stale = [p for p in (out / BUILDS_DIR).iterdir() if p.name not in {label_name(t.label) for t in targets}]
    for p in stale:  # a .partial left by a killed pack
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    log.info("pack: wrote %s (%d build(s), %d prompt(s), %.1f MB)", out / BUNDLE, len(builds), len(records),
             data["bytes"] / 1e6)
    return data
