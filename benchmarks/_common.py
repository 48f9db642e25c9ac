"""What every script in benchmarks/ shares: the repository root on ``sys.path``, one provenance
record (script, date, commit, dirty flag, machine, load) and the atomic write of a results file.

A figure in docs/ is read from a file under benchmarks/results/ that one of these scripts wrote;
the provenance says which commit measured it, whether the tree had uncommitted changes, on which
machine, and how busy that machine was when the measurement started (a timing taken while another
job shared the cores is not a timing).

    from _common import RESULTS, provenance, write_result   # scripts run as `python benchmarks/x.py`
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def git(*args: str) -> str:
    """``git args`` in the repository, stripped stdout ('' when git or the repository is missing)."""
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def machine() -> dict:
    """CPU, cores, memory, OS and Python of this machine (edgemed's own probe, as bench.json records it)."""
    from edgemed.bench.latency.machine import machine_info

    return {**machine_info(), "platform": platform.platform(), "python": platform.python_version()}


def provenance(script: str) -> dict:
    """Where a results file came from: pass ``__file__``.

    ``worktree_dirty`` counts tracked files only (an untracked scratch file changes no figure).

    >>> p = provenance(__file__)
    >>> p["script"], sorted(p) == sorted(["script", "date", "commit", "worktree_dirty", "machine",
    ...                                   "load_average_at_start"])
    ('benchmarks/_common.py', True)
    """
    return {"script": f"benchmarks/{Path(script).name}",
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "commit": git("rev-parse", "HEAD") or None,
            "worktree_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "machine": machine(),
            "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def write_result(path: str | os.PathLike, result: dict) -> Path:
    """Write ``result`` as indented JSON atomically (a killed script leaves the old file) and say where."""
    from edgemed.io import write_json_atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, result)
    print(f"wrote {path}")
    return path


# --- fidelity on the two document sets (choose on one, report on the other) ----------------------

FIDELITY_SETS = ("choosing_documents", "heldout")


def fidelity_references(model_dir: str | os.PathLike, work: Path, threads: int = 2) -> dict:
    """The fp32 PyTorch model on the choosing documents and on the held-out set
    (``edgemed.export.heldout``), each cached in ``work``: the probabilities as a memory-mapped .npy,
    the token ids beside it as .json (re-used while the model path and the documents are the same)."""
    from edgemed.export import heldout

    return {"choosing_documents": cached_reference(model_dir, work / "choosing-source.npy", threads,
                                                    heldout.choosing_documents()),
            "heldout": cached_reference(model_dir, work / "heldout-source.npy", threads, None)}


def cached_reference(model_dir, npy: Path, threads: int, documents):
    """The fp32 reference on ``documents`` (None: the held-out set), from ``npy`` and the .json beside
    it when they were made for the same model and documents, else computed and stored there."""
    import json

    import numpy as np

    from edgemed.export import fidelity, heldout

    meta_file = npy.with_suffix(".json")
    key = {"model": str(model_dir), "max_doc_tokens": heldout.MAX_DOC_TOKENS,
           "documents": heldout.documents_digest(heldout.heldout_documents() if documents is None else documents)}
    if meta_file.is_file() and npy.is_file():
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        ref = heldout.Reference(meta["doc_ids"], meta["ids"], meta["starts"])
        probs = np.load(npy, mmap_mode="r")
        if meta.get("key") == key and probs.shape[0] == ref.n_positions:
            ref.rows = fidelity.summarize_reference(probs, np.concatenate([i[s:] for i, s, _ in ref.spans()]))
            return ref
    ref = heldout.torch_reference(Path(model_dir), npy, threads, documents=documents)
    meta_file.write_text(json.dumps({"key": key, "doc_ids": ref.doc_ids, "ids": ref.ids, "starts": ref.starts}),
                         encoding="utf-8")
    return ref


def fidelity_sets(refs: dict, parity_ref=None, tf_tokens: int = 64) -> dict:
    """The ``"sets"`` record of a results file: which texts each figure of a row comes from."""
    out = {}
    if parity_ref is not None:
        out["choosing_prompts"] = {
            "prompts": len(parity_ref.prompt_ids), "tf_tokens": tf_tokens, "greedy_tokens": parity_ref.greedy_tokens,
            "positions": len(parity_ref.prompt_ids) * tf_tokens, "source": "edgemed.export.parity.HEART_PROMPTS",
            "row_keys": ["top1_agreement", "kl_mean", "greedy_match_len_mean"]}
    source = {"choosing_documents": "edgemed.export.heldout.choosing_documents()",
              "heldout": "edgemed.export.heldout.heldout_documents()"}
    for name, ref in refs.items():
        out[name] = {"docs": len(ref.doc_ids), "positions": ref.n_positions, "source": source[name],
                     "row_key": name}
    return out
