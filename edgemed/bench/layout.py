"""Every file and folder name of bench's folders, once: the run folder, a bundle, a device's results.

The stage, the worker, the device run and the grader read and write these; nothing else in bench
spells a file name. A name here is part of the contract between host and device (a results folder
written by one edgemed version is graded by another), so change one only with a migration.

A run folder (``edgemed bench --out OUT``; also ``OUT/devices/<name>/`` of ``edgemed bench grade``)::

    OUT/prompts.jsonl       the heart prompts with their rubrics, as answered (the worker reads them here)
    OUT/generations.jsonl   one answer per (build, prompt), keyed by build sha256 + generation settings
    OUT/grades.jsonl        one row of criterion verdicts per (build, prompt, judge fingerprint)
    OUT/latency.jsonl       llama-bench-compatible pp/tg rows: the kit's, and llama-bench's own
                            (``harness: llama-bench``) when ``--latency-reference`` is on
    OUT/machine.json        CPU, cores, GPU, measured memory bandwidth (reused when the settings match)
    OUT/jobs/<label>.json   what each build's worker subprocess was asked to do
    OUT/config.json         the merged bench config
    OUT/bench.json          everything above, scored and summarised (the report's data)
    OUT/report.md           the tables; beside it the PNG plots (``PLOTS``)
    OUT/logs/bench.log      the stage log (``edgemed.console.LOGS_DIR``, shared by every stage)

A bundle (``edgemed bench pack --out BUNDLE``) and a device's results (``edgemed bench device --out``)::

    BUNDLE/bundle.json             the builds, prompts and settings, with every file's size and sha256
    BUNDLE/prompts.jsonl           the prompts (the same file a run folder answers)
    BUNDLE/builds/<label>/...      one folder per build
    BUNDLE/.pack-partial.json      present only while a pack is under way
    RESULTS/bundle.json            a copy: which bundle these results belong to
    RESULTS/device.json            the device's name and machine, and what each build finished
    RESULTS/prompts.jsonl, generations.jsonl, latency.jsonl, machine.json   as in a run folder
    GRADED/devices/<name>/         one run folder per device, graded; GRADED/bench.json merges them
"""

from __future__ import annotations

# --- a run folder ----------------------------------------------------------------------------------
PROMPTS = "prompts.jsonl"
GENERATIONS = "generations.jsonl"
GRADES = "grades.jsonl"
LATENCY = "latency.jsonl"
MACHINE = "machine.json"
JOBS_DIR = "jobs"
CONFIG = "config.json"
BENCH_JSON = "bench.json"
REPORT_MD = "report.md"
# The plots, by what they show.
PLOTS = {"quality_vs_speed": "quality_vs_speed.png", "size_vs_quality": "size_vs_quality.png",
         "fidelity_speed_size": "fidelity_speed_size.png", "kld_vs_size": "kld_vs_size.png",
         "latency": "latency.png"}
# The append-only logs a killed run may leave with a torn last line; a device writes no grades.
LOGS = (GENERATIONS, GRADES, LATENCY)
DEVICE_LOGS = (GENERATIONS, LATENCY)

# Row tag: latency.jsonl rows written by llama-bench (the C++ yardstick) carry ``harness: LLAMA_BENCH``.
LLAMA_BENCH = "llama-bench"

# --- a bundle, a device's results, a graded folder ------------------------------------------------
BUNDLE = "bundle.json"
BUILDS_DIR = "builds"
PACK_PARTIAL = ".pack-partial.json"
DEVICE = "device.json"
DEVICES_DIR = "devices"


def label_name(label: str) -> str:
    """A build's label as one file or folder name (``builds/<it>/``, ``jobs/<it>.json``): ``/`` made safe.

    >>> label_name("reference/gguf-q4_1-shipped")
    'reference__gguf-q4_1-shipped'
    """
    return label.replace("/", "__")
