"""The run's closing report: training trend, export parity, bench tables and plots, one screen.

Everything is read back from the stages' own files (train/manifest.json, export manifests,
bench/bench.json), so the report can be rebuilt at any time and never disagrees with them. A file
that exists but cannot be read never just vanishes: report.md and the terminal summary say which
file is broken and that its section is missing, and ``edgemed run`` then exits with code 2.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from edgemed.bench.report.results import BenchResults, Quality, read_bench
from edgemed.errors import DataError
from edgemed.io import read_json, write_text_atomic
from edgemed.pipeline.config import PipelineConfig
from edgemed.pipeline.state import PipelineState


RENDER_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError)
BENCH_JSON = "bench/bench.json"


class StageFiles:
    """The stage files of one run folder, read on request; ``broken`` lists each one that exists but
    could not be read or rendered, with the section it costs.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp()); (root / "bench").mkdir()
    >>> _ = (root / "bench" / "bench.json").write_text("{oops")
    >>> files = StageFiles(root); files.json("bench/bench.json", "bench") is None
    True
    >>> files.broken
    ['`bench/bench.json` cannot be read (not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)); its bench section is missing']
    """

    def __init__(self, root: Path):
        self.root = root
        self.broken: list[str] = []

    def json(self, rel: str, section: str) -> dict[str, Any] | None:
        """The parsed object, or None when the file is absent (stage not run) or broken (recorded)."""
        path = self.root / rel
        if not path.exists():
            return None
        try:
            data = read_json(path)
        except DataError as e:
            return self.fail(rel, e.message, section)
        if not isinstance(data, dict):
            return self.fail(rel, f"a JSON {type(data).__name__}, not an object", section)
        return data

    def text(self, rel: str, section: str) -> str | None:
        path = self.root / rel
        if not path.is_file():
            return None
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            return self.fail(rel, f"{type(e).__name__}: {e}", section)

    def fail(self, rel: str, why: str, section: str) -> None:
        line = f"`{rel}` cannot be read ({why}); its {section} section is missing"
        if line not in self.broken:
            self.broken.append(line)
        return None

    def render(self, rel: str, section: str, make, *args) -> list[str]:
        """``make(*args)``, or nothing (recorded) when the file's content is not what it should be."""
        try:
            return make(*args)
        except RENDER_ERRORS as e:
            self.fail(rel, f"unexpected content: {type(e).__name__}: {e}", section)
            return []


def broken_lines(files: StageFiles) -> list[str]:
    """One report line per broken stage file.

    >>> f = StageFiles(Path(".")); _ = f.fail("train/manifest.json", "not valid JSON", "training")
    >>> broken_lines(f)
    ['Broken input: `train/manifest.json` cannot be read (not valid JSON); its training section is missing from this report.']
    """
    return [f"Broken input: {b} from this report." for b in files.broken]


def fmt(x: float | None, spec: str = ".3f") -> str:
    """``–`` for missing numbers.

    >>> fmt(None), fmt(0.12345), fmt(3.0, ".1f")
    ('–', '0.123', '3.0')
    """
    return "–" if x is None else format(x, spec)


def training_section(root: Path, files: StageFiles) -> list[str]:
    t = files.json("train/manifest.json", "training")
    if not t:
        return []
    return files.render("train/manifest.json", "training", _training_lines, root, t)


def _training_lines(root: Path, t: dict[str, Any]) -> list[str]:
    first, last = t.get("reward_first") or {}, t.get("reward_last") or {}
    lines = ["## Training (GRPO + LoRA)", "",
             f"- base `{t['base_model']['spec']}`, {t['steps']} steps, rewards: "
             + ", ".join(f"{r.get('name')} (×{r.get('weight', 1)})" for r in t.get("rewards", [])),
             f"- reward, first steps: {fmt(first.get('mean'))} ± {fmt(first.get('std'))} "
             f"(n={first.get('n', '–')}); last steps: {fmt(last.get('mean'))} ± {fmt(last.get('std'))} "
             f"(n={last.get('n', '–')})",
             f"- wall {fmt(t.get('wall_s'), '.0f')} s, peak RSS {fmt(t.get('peak_rss_mb'), '.0f')} MiB"]
    plot = root / "train" / Path(t.get("plot_path") or "training.png").name
    if plot.is_file():
        lines += ["", f"![training]({plot.relative_to(root).as_posix()})"]
    return lines + [""]


def export_section(root: Path, files: StageFiles) -> list[str]:
    from edgemed.export.manifest import load_manifest

    rows = []
    for label in ("base", "trained"):
        rel = f"export/{label}/manifest.json"
        if files.json(rel, f"export ({label})") is None:
            continue
        try:
            m = load_manifest(root / rel)
        except DataError as e:
            files.fail(rel, str(e).removeprefix(f"{root / rel}: "), f"export ({label})")
            continue
        for a in m.artifacts:
            p = a.parity
            rows.append(f"| {label} | {a.name} | {a.bytes / 2**20:.0f} | {fmt(p and p.top1_agreement)} | "
                        f"{fmt(p and p.kl_mean, '.4f')} | {fmt(p and p.greedy_match_len_mean, '.1f')} | {a.status} |")
    if not rows:
        return []
    return ["## Export (parity against the PyTorch model it was built from)", "",
            "| model | build | MiB | top-1 agreement | KL mean | greedy match (tokens) | status |",
            "|---|---|---|---|---|---|---|", *rows, ""]


def bench_section(root: Path, files: StageFiles) -> list[str]:
    text = files.text("bench/report.md", "bench tables")
    if text is None:
        return []
    # The headline lines under the bench heading are already at the top of this report: drop them.
    head, _, rest = text.partition("\n")
    if head.startswith("# ") and rest and not rest.startswith("\n"):
        rest = rest.partition("\n\n")[2]
        text = head + "\n\n" + rest
    # Demote the bench report's headings one level and point its images into bench/.
    text = re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", text, flags=re.M)
    text = re.sub(r"!\[([^\]]*)\]\(([^/)]+\.png)\)", r"![\1](bench/\2)", text)
    return [text]


def headline(root: Path, files: StageFiles | None = None) -> list[str]:
    """The bench's plain-words lines (did training help, the judge, warnings), or none before a bench.

    >>> import tempfile
    >>> headline(Path(tempfile.mkdtemp()))
    []
    """
    from edgemed.bench.report.headline import headline_lines

    files = files or StageFiles(root)
    bench = bench_results(files)
    return files.render(BENCH_JSON, "bench", headline_lines, bench) if bench else []


def bench_results(files: StageFiles) -> BenchResults | None:
    """bench/bench.json, typed; None before a bench, or when it cannot be read (recorded in ``files``).

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp()); (root / "bench").mkdir()
    >>> _ = (root / "bench" / "bench.json").write_text('{"schema_version": 9, "targets": []}')
    >>> files = StageFiles(root); bench_results(files) is None
    True
    >>> files.broken[0]
    '`bench/bench.json` cannot be read (schema_version 9 is not one this edgemed reads (1, or none): ...); its bench section is missing'
    """
    if not (files.root / BENCH_JSON).exists():
        return None
    try:
        return read_bench(files.root / BENCH_JSON)
    except DataError as e:  # unreadable, not JSON, the wrong shape, or a schema version this edgemed does not read
        return files.fail(BENCH_JSON, e.message, "bench")


DEMO_RECORD = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "pipeline_demo.json"


def demo_pointer(top: list[str], run_name: str, record: Path = DEMO_RECORD) -> str | None:
    """When a short run cannot decide "did training help?", where the recorded demo answers it.

    >>> demo_pointer(["Did training help? ...: not shown to help."], "default", Path("/nonexistent.json"))
    'This run is too short to decide; `edgemed run --config pipeline_demo` is sized to, and its recorded answer is in docs/demo.md.'
    >>> demo_pointer(["Did training help? ...: helped."], "default") is None
    True
    """
    if run_name == "demo" or not top or not top[0].endswith("not shown to help."):
        return None
    text = ("This run is too short to decide; `edgemed run --config pipeline_demo` is sized to, and its recorded "
            "answer is in docs/demo.md")
    try:
        c = json.loads(record.read_text())["comparisons"][0]
        u = c["unclipped_score"]
        text += (f" (benchmarks/results/pipeline_demo.json: trained − base on {u['n']} held-out heart prompts "
                 f"{u['diff']:+.3f}, 95% CI {u['ci_low']:+.3f} to {u['ci_high']:+.3f})")
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        pass
    return text + "."


def write_report(cfg: PipelineConfig, state: PipelineState) -> Path:
    """runs/<name>/report.md; its first three lines answer "did training help?" and name the judge;
    then one line per stage file that could not be read (:func:`broken_inputs` lists the same)."""
    root = cfg.root
    files = StageFiles(root)
    stage_rows = [f"| {s} | {fmt(rec.get('wall_s'), '.0f')} | {rec.get('finished', '–')} |"
                  for s, rec in state.stages.items()]
    top = headline(root, files)
    pointer = demo_pointer(top, cfg.name)
    if pointer:
        top = [top[0], pointer, *top[1:]]
    sections = training_section(root, files) + export_section(root, files) + bench_section(root, files)
    warn = broken_lines(files)
    lines = [f"# edgemed run `{cfg.name}`", *top, *([""] + warn if warn else []), "",
             f"Base model `{cfg.model}`; stages {', '.join(cfg.stages)}. Quality is graded by the judge named "
             "above (bench `judge: auto`: the local LLM judge when installed, else the offline proxy; "
             "see docs/judges.md).", "",
             "| stage | wall s (last run) | finished |", "|---|---|---|", *stage_rows, ""]
    lines += sections
    return write_text_atomic(root / "report.md", "\n".join(lines).rstrip() + "\n")


def broken_inputs(root: Path) -> list[str]:
    """Every stage file under ``root`` that exists but cannot be read, with the section it costs."""
    files = StageFiles(root)
    for section in (headline, training_section, export_section, bench_section):
        section(root, files)
    summary_rows(files)
    return files.broken


def raise_if_broken(cfg: PipelineConfig, result) -> None:
    """After the summary: a run whose report lacks a section because a stage file is broken fails
    (exit code 2), in one line naming the files."""
    broken = broken_inputs(cfg.root)
    if broken:
        raise DataError(f"{len(broken)} stage file(s) could not be read, so report.md lacks their sections: "
                        + "; ".join(b.replace("`", "") for b in broken), path=str(result.report or cfg.root))


def print_summary(cfg: PipelineConfig, result) -> list[str]:
    """One screen: what ran, then quality/speed/size per build from bench.json, then one line per
    broken stage file. Returns those lines, so ``edgemed run`` can exit non-zero."""
    from edgemed.console import rich_console

    console = rich_console()
    console.print(f"[bold]edgemed run {cfg.name}[/bold]: ran {', '.join(result.ran) or 'nothing'}"
                  f"{'; up to date: ' + ', '.join(result.skipped) if result.skipped else ''} "
                  f"({result.wall_s:.0f} s)")
    rows = summary_rows(StageFiles(cfg.root))
    pointer = demo_pointer([r for r in rows if isinstance(r, str)][:1], cfg.name)
    if pointer:
        rows = [rows[0], pointer, *rows[1:]]
    for item in rows:
        if isinstance(item, str):  # the same first lines as report.md
            console.print(item, markup=False, highlight=False, soft_wrap=True)
        else:
            console.print(item)
    broken = broken_inputs(cfg.root)
    for line in broken:
        console.print(f"Broken input: {line}.", style="bold red", markup=False, highlight=False, soft_wrap=True)
    if result.report:
        console.print(f"report: {result.report}", markup=False, highlight=False, soft_wrap=True)
    return broken


def summary_rows(files: StageFiles) -> list:
    """The summary's lines and table from bench.json (nothing before a bench, or when it is broken)."""
    bench = bench_results(files)
    return files.render(BENCH_JSON, "bench", _bench_summary, bench) if bench else []


def _bench_summary(bench: BenchResults) -> list:
    from rich.table import Table

    from edgemed.bench.report.headline import headline_lines

    items: list = list(headline_lines(bench))
    judge = (bench.judge and bench.judge.name) or "judge"
    table = Table(title=f"builds ({judge})")
    for col in ("build", "HealthBench ± std", "unclipped [95% CI]", "hit rate", "pitfall rate", "paper acc",
                "decode tok/s", "MiB", "parity"):
        table.add_column(col)
    for t in bench.targets:
        q = t.quality or Quality()
        m, tg = q.metrics, t.latency and t.latency.tg
        unclipped = (f"{fmt(m.unclipped)} [{fmt(m.unclipped_ci_low)}, "
                     f"{fmt(m.unclipped_ci_high)}]") if m.unclipped is not None else "–"
        table.add_row(t.label or "?", f"{fmt(q.score)} ± {fmt(q.std)}", unclipped, fmt(m.hit_rate),
                      fmt(m.pitfall_rate), fmt(q.paper_accuracy), fmt(tg and tg.avg_ts, ".1f"),
                      f"{t.bytes / 2**20:.0f}", t.status or "–")
    items.append(table)
    for c in bench.comparisons[:4]:
        u = c.paired("unclipped_score")
        if u:
            items.append(f"{c.b} vs {c.a}: unclipped {fmt(u.diff, '+.3f')} "
                         f"[{fmt(u.ci_low, '+.3f')}, {fmt(u.ci_high, '+.3f')}], sign test p={fmt(u.sign_p, '.2f')}")
        else:
            items.append(f"{c.b} vs {c.a}: clipped {fmt(c.diff, '+.3f')} "
                         f"[{fmt(c.diff_ci_low, '+.3f')}, {fmt(c.diff_ci_high, '+.3f')}]")
    return items
