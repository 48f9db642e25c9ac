"""``edgemed bench grade``: results of ``edgemed bench device`` → graded, scored, one report for every device.

Runs on the host with the full kit. Each results folder must be a finished device run of the same
bundle (a folder from another bundle is refused, not mixed) and carry its own copy of the bundle's
prompts, checked against the bundle's sha256. Per device, its answers and latency rows are copied
into ``OUT/devices/<name>/`` and graded there by the configured judge (the bundle's, or the one
given here), exactly as ``edgemed bench`` grades its own logs, so a re-run grades nothing twice.
The per-device reports are then merged: every build label is prefixed with its device
(``pi5/export/gguf-q8_0``), each device's machine is listed, and the usual ``bench.json``,
``report.md`` and plots hold all devices side by side.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgemed.bench.device.bundle import Bundle, build_target, check_file, load_bundle
from edgemed.bench.device.run import check_results_folder
from edgemed.bench.layout import BENCH_JSON, BUNDLE, DEVICE, DEVICE_LOGS, DEVICES_DIR, MACHINE, PROMPTS
from edgemed.data.schema import RubricRecord
from edgemed.errors import ConfigError, DataError
from edgemed.io import absolute, read_jsonl_tolerant, write_json_atomic, write_jsonl_atomic

log = logging.getLogger(__name__)


@dataclass
class DeviceResults:
    """One finished results folder: its device name, the bundle it ran, and its device.json."""

    name: str
    dir: Path
    bundle: Bundle
    info: dict[str, Any]


def load_results(folder: str | Path) -> DeviceResults:
    """Read a results folder; refuse one that is not a finished device run of a whole bundle copy."""
    folder = Path(absolute(folder))
    bundle = load_bundle(folder)
    try:
        info = json.loads((folder / DEVICE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise DataError(f"no readable {DEVICE}: not a results folder of `edgemed bench device`",
                        path=str(folder)) from None
    if info.get("bundle_id") != bundle.id:
        raise DataError(f"{DEVICE} belongs to bundle {info.get('bundle_id')}, bundle.json is {bundle.id}: "
                        "a damaged results folder; run the device bench into a new folder", path=str(folder))
    if not info.get("complete"):
        left = [label for label, b in (info.get("builds") or {}).items() if not b.get("done")]
        raise DataError(f"the device run has not finished ({', '.join(left) or 'no build done yet'}); re-run "
                        "`edgemed bench device BUNDLE --out` this folder on the device to complete it",
                        path=str(folder))
    check_file(folder, bundle.data["prompts"])
    return DeviceResults(info.get("name") or folder.name, folder, bundle, info)


def check_together(devices: list[DeviceResults]) -> None:
    """Results graded into one report must come from one bundle and carry distinct device names."""
    first = devices[0]
    for d in devices[1:]:
        if d.bundle.id != first.bundle.id:
            raise DataError(f"holds results of bundle {d.bundle.id}, but {first.dir} holds bundle {first.bundle.id}: "
                            "grade the results of one bundle together", path=str(d.dir))
    names = [d.name for d in devices]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"two results folders are both from device {dupes[0]!r}: re-run `edgemed bench device` on "
                          "one of them with --name to tell them apart")


def merge_reports(reports: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One bench.json from per-device ones: labels prefixed by device, machines listed under ``devices``.

    >>> r = {"machine": {"cpu_info": "x"}, "threads": 2, "judge": {"stats": {"calls": 3}},
    ...      "targets": [{"label": "e/gguf-q8_0"}], "rows": [{"target": "e/gguf-q8_0"}],
    ...      "comparisons": [{"a": "base/x", "b": "trained/x"}]}
    >>> m = merge_reports([("pi5", r), ("orin", r)])
    >>> [t["label"] for t in m["targets"]], m["comparisons"][1]["b"], m["judge"]["stats"], list(m["devices"])
    (['pi5/e/gguf-q8_0', 'orin/e/gguf-q8_0'], 'orin/trained/x', {'calls': 6}, ['pi5', 'orin'])
    """
    first = reports[0][1]
    merged = {k: v for k, v in first.items() if k not in ("targets", "rows", "comparisons")}
    merged.update(targets=[], rows=[], comparisons=[], devices={})
    stats: dict[str, Any] = {}
    for name, r in reports:
        merged["devices"][name] = {"machine": r["machine"], "threads": r["threads"]}
        merged["targets"] += [{**t, "label": f"{name}/{t['label']}", "device_name": name} for t in r["targets"]]
        merged["rows"] += [{**row, "target": f"{name}/{row['target']}", "device_name": name} for row in r["rows"]]
        merged["comparisons"] += [{**c, "a": f"{name}/{c['a']}", "b": f"{name}/{c['b']}"}
                                  for c in r.get("comparisons") or []]
        for k, v in ((r.get("judge") or {}).get("stats") or {}).items():
            stats[k] = stats.get(k, 0) + v if isinstance(v, (int, float)) else v
    if merged.get("judge"):
        merged["judge"] = {**merged["judge"], "stats": stats}
    return merged


def import_logs(d: DeviceResults, dev_out: Path) -> None:
    """Copy the device's answers, latency rows and machine into ``dev_out`` (its grades stay there)."""
    for name in DEVICE_LOGS:
        write_jsonl_atomic(dev_out / name, read_jsonl_tolerant(d.dir / name))
    write_json_atomic(dev_out / MACHINE, d.info["machine"])


def run_grade(results: list[str | Path], out: str | Path, judge: dict[str, Any] | None = None,
              progress: bool = True) -> dict[str, Any]:
    """Grade every results folder into ``out``; returns the merged bench.json content."""
    from edgemed.bench.config import load_config
    from edgemed.bench.report.assemble import build_report, write_report
    from edgemed.bench.stage import grade_and_score

    if not results:
        raise ConfigError("give at least one results folder of `edgemed bench device`")
    devices = [load_results(r) for r in results]
    check_together(devices)
    bundle = devices[0].bundle
    out = Path(absolute(out))
    check_results_folder(out, bundle)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / BUNDLE, bundle.data)

    s = bundle.settings
    records = [RubricRecord.from_dict(r, path=str(devices[0].dir / PROMPTS), line=i + 1)
               for i, r in enumerate(read_jsonl_tolerant(devices[0].dir / PROMPTS))]
    reports = []
    for d in devices:
        dev_out = out / DEVICES_DIR / d.name
        import_logs(d, dev_out)
        # The manifests' labels (base, trained) only name the groups compared build by build.
        cfg = load_config({"out": str(dev_out), "quality": s["quality"], "latency": s["latency"],
                           "device": d.info.get("device_pref", s["device"]),
                           "judge": {**s["judge"], **(judge or {})}, "train_judge": s.get("train_judge"),
                           "manifests": [f"{g}={d.dir}" for g in bundle.data.get("groups") or []]},
                          where=str(d.dir / BUNDLE), key="settings")
        cfg.suite = bundle.data.get("suite")
        done = {label for label, b in (d.info.get("builds") or {}).items() if b.get("done")}
        targets = [build_target(b, Path("")) for b in bundle.builds if b["label"] in done]
        log.info("grade: device %s, %d build(s)", d.name, len(targets))
        judge_info, summaries = grade_and_score(cfg, targets, records, dev_out, progress)
        reports.append((d.name, build_report(cfg, targets, summaries, d.info["machine"], judge_info,
                                             bundle.data.get("heart_subset"), d.info["threads"], dev_out)))
    report = merge_reports(reports)
    report["bundle"] = {"bundle_id": bundle.id, "created": bundle.data.get("created"),
                        "edgemed_version": bundle.data.get("edgemed_version")}
    write_report(report, out)
    log.info("grade: wrote %s", out / BENCH_JSON)
    return report
