"""edgemed/bench has no import cycle (not even one hidden inside a function), every module imports alone, no module
is over 300 lines, and each room imports only the rooms its docstring allows."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "edgemed" / "bench"


def bench_modules() -> dict[str, Path]:
    """Dotted name → file of every module in edgemed/bench (a package by its ``__init__``)."""
    out = {}
    for path in sorted(BENCH.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The bench modules ``name`` imports anywhere in its file (module level or inside a function);
    doctests are not code, so their imports do not count."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from .y import z
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # "from edgemed.bench.latency import timing" imports the module edgemed.bench.latency.timing
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # edgemed.bench.x.func → edgemed.bench.x
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted.

    >>> cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}})
    [['a', 'b']]
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_cycle_finder_sees_a_cycle_through_three_modules():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_bench_has_no_import_cycle():
    modules = bench_modules()
    known = set(modules)
    # A package imports its own submodules by design (runners/__init__ → runners.base); the
    # submodules importing the package back is what would make a cycle, so only that edge counts.
    graph = {name: {t for t in imports_of(name, path, known) if not t.startswith(name + ".")}
             for name, path in modules.items()}
    assert "edgemed.bench.layout" in graph["edgemed.bench.latency.timing"]  # the walk does see imports
    assert "edgemed.bench.stage" in graph["edgemed.bench.device.run"]    # ... including ones inside functions
    assert cycles(graph) == []


def test_every_bench_module_imports_in_a_fresh_interpreter():
    names = sorted(bench_modules())
    code = ("import importlib, subprocess, sys\n"
            "bad = []\n"
            "for name in sys.argv[1:]:\n"
            "    r = subprocess.run([sys.executable, '-c', f'import {name}'], capture_output=True, text=True)\n"
            "    if r.returncode:\n"
            "        bad.append(f'{name}: {r.stderr.strip().splitlines()[-1]}')\n"
            "print('\\n'.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True, cwd=ROOT,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == ""


MAX_LINES = 300
# Which rooms a room must not import (docs/architecture.md, and each room's __init__ docstring).
FORBIDDEN = {"quality": ("latency", "report", "device", "stage", "worker", "cli", "runners"),
             "latency": ("quality", "report", "device", "stage", "worker", "cli", "runners"),
             "report": ("device", "stage", "worker", "cli", "runners"),
             "runners": ("quality", "latency", "report", "device", "stage", "worker", "cli")}


def test_no_bench_module_is_over_300_lines():
    long = {name: n for name, path in bench_modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}, f"split these modules (house style: at most {MAX_LINES} lines each): {long}"


def test_rooms_import_only_what_their_docstring_allows():
    modules = bench_modules()
    known = set(modules)
    bad = []
    for name, path in modules.items():
        room = name.split(".")[2] if name.count(".") >= 2 else None
        for target in imports_of(name, path, known):
            other = target.split(".")[2] if target.count(".") >= 2 else None
            if other in FORBIDDEN.get(room, ()):
                bad.append(f"{name} imports {target}")
    assert bad == []
