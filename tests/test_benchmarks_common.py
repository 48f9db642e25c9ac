"""Every script in benchmarks/ records where its figures came from the same way (benchmarks/_common.py)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for p in (ROOT / "benchmarks").glob("*.py") if p.name != "_common.py")


def _imports_provenance(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(n, ast.ImportFrom) and n.module == "_common" and any(a.name == "provenance" for a in n.names)
               for n in ast.walk(tree))


def test_every_benchmark_script_takes_its_provenance_from_common():
    assert SCRIPTS, "no benchmark scripts found"
    missing = [p.name for p in SCRIPTS if not _imports_provenance(p)]
    assert not missing, f"record provenance with benchmarks/_common.provenance: {missing}"


def test_no_script_reads_the_commit_its_own_way():
    own = [p.name for p in SCRIPTS if '"rev-parse", "HEAD"' in p.read_text(encoding="utf-8")]
    assert not own, own


def test_provenance_names_commit_dirty_flag_machine_and_load(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    sys.modules.pop("_common", None)
    import _common

    p = _common.provenance(str(ROOT / "benchmarks" / "backends.py"))
    assert p["script"] == "benchmarks/backends.py"
    assert len(p["commit"]) == 40 and isinstance(p["worktree_dirty"], bool)
    assert p["machine"]["cores_logical"] >= 1 and p["machine"]["python"]
    assert len(p["load_average_at_start"]) == 3
