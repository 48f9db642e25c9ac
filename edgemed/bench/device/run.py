"""``edgemed bench device``: a bundle's builds answered and timed on this machine, with the slim install.

Reads top to bottom in the order it runs:

1. the bundle (``bundle.json``) and the results folder: a folder that holds results of another
   bundle is refused (never mixed); the same bundle resumes;
2. every runtime the chosen builds need is importable (llama-cpp-python, onnxruntime + tokenizers);
3. every bundle file's size and sha256 (a cut or damaged copy is refused, naming the file);
4. the machine: CPU, cores, RAM, OS, board, accelerator and a measured memory bandwidth;
5. one worker per build (``python -m edgemed.bench.worker``, as ``edgemed bench`` runs them) answers
   the prompts and runs pp/tg, appending to ``generations.jsonl`` and ``latency.jsonl``;
6. ``device.json``: the device's name and machine, and what each build finished.

Nothing here imports torch, transformers or a judge: the answers are graded back on the host by
``edgemed bench grade`` (``edgemed.bench.device.grade``). A killed run resumes where it stopped, as the
bench's logs always do.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import logging
import re
import socket
from pathlib import Path
from typing import Any

from edgemed.bench.config import BenchConfig, load_config
from edgemed.bench.device.bundle import Bundle, load_bundle, verify_bundle
from edgemed.bench.latency import timing
from edgemed.bench.layout import BUNDLE, DEVICE, DEVICE_LOGS, PROMPTS
from edgemed.bench.quality import grading
from edgemed.bench.targets import Target
from edgemed.data.schema import RubricRecord
from edgemed.errors import ConfigError, DataError, EnvironmentFailure
from edgemed.io import absolute, read_jsonl_tolerant, write_json_atomic, write_text_atomic
from edgemed.locks import folder_lock

log = logging.getLogger(__name__)
# What each format's runner imports (checked with find_spec, before any build is loaded).
RUNTIME_MODULES = {"gguf": ("llama_cpp",), "gguf-lora": ("llama_cpp",), "onnx": ("onnxruntime", "tokenizers", "jinja2"),
                   "onnx-genai": ("onnxruntime_genai", "tokenizers", "jinja2"), "hf": ("torch",)}


def device_name(value: str | None) -> str:
    """The device's name in reports (default: the host name), reduced to letters, digits, ``._-``.

    >>> device_name("Pi 5 (8 GB)"), device_name("jetson-orin")
    ('Pi-5-8-GB', 'jetson-orin')
    """
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", value or socket.gethostname() or "device").strip("-.")
    return name or "device"


def missing_runtimes(targets: list[Target]) -> dict[str, list[str]]:
    """Build label → the modules its runner needs that this Python lacks (empty: all can run);
    found with ``find_spec``, so nothing is imported (tests/bench/test_bundle.py covers a missing one)."""
    missing = {}
    for t in targets:
        absent = [m for m in RUNTIME_MODULES.get(t.format, ()) if importlib.util.find_spec(m) is None]
        if absent:
            missing[t.label] = absent
    return missing


def check_results_folder(out: Path, bundle: Bundle) -> None:
    """Refuse a results folder written from another bundle, or holding logs no bundle vouches for."""
    if (out / BUNDLE).is_file():
        try:
            old = load_bundle(out)
        except DataError:
            old = None
        if old is None or old.id != bundle.id:
            packed = f", packed {old.data.get('created')}" if old else ""
            raise DataError(f"holds results of another bundle ({old.id if old else 'unreadable'}{packed}); this "
                            f"bundle is {bundle.id}: write to a new --out folder (results of two bundles are never "
                            "mixed)", path=str(out))
    elif out.is_dir() and any((out / n).exists() for n in DEVICE_LOGS):
        raise DataError("holds bench logs but no bundle.json: not a results folder of `edgemed bench device`; "
                        "use a new --out folder", path=str(out))


def build_status(cfg: BenchConfig, target: Target, records: list[RubricRecord], out: Path,
                 threads: int) -> dict[str, Any]:
    """What this build has finished in ``out``: answers, latency tests, and whether that is all of it."""
    from edgemed.bench.stage import graded

    wanted = len(records) if graded(cfg, target) else 0
    left = grading.pending_generations(target, records, cfg.quality, out) if wanted else 0
    tests = [name for name, _, _ in timing.tests_for(cfg.latency)] if cfg.latency.enabled else []
    pending = timing.pending_tests(target, cfg.latency, threads, cfg.device, out) if tests else []
    rates = {("pp" if r["n_prompt"] else "tg") + "_tok_s": r["avg_ts"]
             for r in timing.latency_rows(target, cfg.latency, out)} if tests else {}
    return {"answers": wanted - left, "answers_wanted": wanted,
            "latency_tests": [t for t in tests if t not in pending], "latency_wanted": tests, **rates,
            "done": left == 0 and not pending}


def run_device(bundle_dir: str | Path, out: str | Path, name: str | None = None, threads: int | None = None,
               only: list[str] | None = None, cpu: bool = False, progress: bool = True) -> dict[str, Any]:
    """Answer and time the bundle's builds (``only``: these labels) into ``out``; returns device.json."""
    import edgemed
    from edgemed.bench.latency.machine import physical_cores
    from edgemed.bench.stage import drop_torn_tail, measure_machine, run_worker

    # 1. bundle and results folder
    bundle = load_bundle(absolute(bundle_dir))
    out = Path(absolute(out))
    with folder_lock(out):  # one writer per results folder: a second run here stops at once (exit 2)
        check_results_folder(out, bundle)
        targets = bundle.targets()
        if only:
            unknown = sorted(set(only) - {t.label for t in targets})
            if unknown:
                raise ConfigError(f"not in the bundle: {unknown} (it has: {[t.label for t in targets]})", key="--build")
            targets = [t for t in targets if t.label in only]

        # 2. runtimes
        missing = missing_runtimes(targets)
        if missing:
            which = "; ".join(f"{label} needs {', '.join(mods)}" for label, mods in missing.items())
            extra = "device-genai" if any("onnxruntime_genai" in mods for mods in missing.values()) else "device"
            raise EnvironmentFailure(f"this Python cannot run every build: {which}. Install them (pip install "
                                     f"'edgemed[{extra}]'), or run the others only with --build LABEL")

        # 3. sha256 of every file
        hashed = verify_bundle(bundle, [t.label for t in targets])
        log.info("device: %d build(s) checked against bundle.json (%.1f MB hashed)", len(targets), hashed / 1e6)

        # 4. results folder, settings, machine
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / BUNDLE, bundle.data)
        # the prompts beside the logs: the workers read them there, and the host grades against them
        write_text_atomic(out / PROMPTS, (bundle.root / bundle.data["prompts"]["path"]).read_text(encoding="utf-8"))
        for log_name in DEVICE_LOGS:
            drop_torn_tail(out / log_name)
        records = [RubricRecord.from_dict(r, path=str(out / PROMPTS), line=i + 1)
                   for i, r in enumerate(read_jsonl_tolerant(out / PROMPTS))]
        s = bundle.settings
        lat = {**s["latency"], **({"threads": threads} if threads else {})}
        cfg = load_config({"out": str(out), "quality": s["quality"], "latency": lat,
                           "device": "cpu" if cpu else s["device"]}, where=str(bundle.root / BUNDLE), key="settings")
        n_threads = cfg.latency.threads or physical_cores()
        machine = measure_machine(cfg, out, n_threads)
        previous = _read_device_file(out)  # a resumed run keeps its name unless given a new one
        info = {"name": device_name(name or previous.get("name")), "bundle_id": bundle.id,
                "edgemed_version": edgemed.__version__, "threads": n_threads, "device_pref": cfg.device,
                "machine": machine, "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "complete": False}
        info["builds"] = previous.get("builds", {})  # builds of an earlier --build run stay listed
        info["builds"].update({t.label: build_status(cfg, t, records, out, n_threads) for t in targets})
        write_json_atomic(out / DEVICE, info)
        log.info("device %s: %d build(s), %d prompt(s), %d thread(s)", info["name"], len(targets), len(records), n_threads)

        # 5. one worker per build
        for target in targets:
            run_worker(cfg, target, records, out, n_threads, machine, progress)
            info["builds"][target.label] = build_status(cfg, target, records, out, n_threads)
            write_json_atomic(out / DEVICE, info)

        # 6. done
        info["complete"] = all(b["done"] for b in info["builds"].values())
        info["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        write_json_atomic(out / DEVICE, info)
        return info


def _read_device_file(out: Path) -> dict[str, Any]:
    import json

    try:
        data = json.loads((out / DEVICE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
