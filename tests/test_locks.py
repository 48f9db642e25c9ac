"""One writer per folder, with real processes: the second stops at once (exit 2, one line naming
the holder); a lock its holder left behind when it died is taken over with one warning."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edgemed.locks import HOST, LOCK_NAME, folder_lock

REPO = Path(__file__).resolve().parents[1]
# Takes the lock on argv[1], says so, and holds it until its stdin closes (or it is killed).
HOLDER = textwrap.dedent("""
    import logging, sys
    from edgemed.locks import folder_lock
    logging.basicConfig(format="%(levelname)s %(message)s")
    with folder_lock(sys.argv[1]):
        print("locked", flush=True)
        sys.stdin.read()
""")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _script(tmp_path: Path) -> Path:
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    return script


def _start_holder(tmp_path: Path, folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(_script(tmp_path)), str(folder)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    assert proc.stdout.readline().strip() == "locked", proc.stderr.read()
    return proc


def _hold_again(tmp_path: Path, folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(_script(tmp_path)), str(folder)], input="", capture_output=True,
                          text=True, env=_env(), timeout=120)


# Each command and the folder it writes: the holder takes that folder, the command must stop at once.
COMMANDS = {
    "export": (lambda t: t / "cc", lambda t: ["export", "--out", str(t / "cc"), "--formats", "gguf:q8_0"], "--out"),
    "bench": (lambda t: t / "b", lambda t: ["bench", "--out", str(t / "b"), "--reference", "default"], "--out"),
    "train": (lambda t: t / "tr", lambda t: ["train", "--config", "smollm2_heart_grpo_cpu", "--max-steps", "1",
                                             "--output", str(t / "tr")], "--output"),
    "run": (lambda t: t / "runs" / "tiny",
            lambda t: ["run", "--config", str(REPO / "tests" / "pipeline" / "tiny.yaml"), "--runs-dir", str(t / "runs")],
            "--name"),
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_second_writer_on_the_same_folder_stops_at_once(tmp_path, command):
    folder_of, argv_of, option = COMMANDS[command]
    out = folder_of(tmp_path)
    holder = _start_holder(tmp_path, out)
    try:
        second = subprocess.run([sys.executable, "-m", "edgemed.cli", *argv_of(tmp_path)], capture_output=True,
                                text=True, env=_env(), timeout=300)
    finally:
        holder.communicate(input="", timeout=60)
    assert second.returncode == 2, second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert re.fullmatch(
        rf"error: {re.escape(str(out))} is in use by pid {holder.pid} on {re.escape(HOST)} since "
        rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(holder\.py {re.escape(str(out))}\); "
        rf"wait for it or pick another {option}", lines[0]), lines[0]
    assert holder.returncode == 0
    assert not (out / LOCK_NAME).exists()  # the holder's lock went with it; the second took none


def test_lock_of_a_killed_holder_is_taken_over_with_a_warning(tmp_path):
    out = tmp_path / "runs" / "x"
    holder = _start_holder(tmp_path, out)
    holder.send_signal(signal.SIGKILL)  # no chance to clean up: its lock file stays, naming a dead pid
    holder.communicate(timeout=60)
    assert f'"pid": {holder.pid}' in (out / LOCK_NAME).read_text()

    again = _hold_again(tmp_path, out)
    assert again.returncode == 0, again.stderr
    warning = [line for line in again.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warning) == 1 and f"taking over the lock left by pid {holder.pid} on {HOST}" in warning[0] \
        and warning[0].endswith("that process is gone"), again.stderr
    assert not (out / LOCK_NAME).exists()


def test_a_released_lock_is_taken_quietly_and_held_within_one_process(tmp_path):
    out = tmp_path / "o"
    first = _hold_again(tmp_path, out)
    second = _hold_again(tmp_path, out)
    assert first.returncode == second.returncode == 0 and "WARNING" not in second.stderr
    with folder_lock(out), folder_lock(out / "export"):  # a run's folder and its stage's sub-folder
        with folder_lock(out):  # taken again by the same process: no deadlock
            pass
        assert (out / LOCK_NAME).is_file()
        holder = _hold_again(tmp_path, out)  # another process meanwhile: refused, exit 1 (a raw exception)
        assert holder.returncode == 1 and "is in use by pid" in holder.stderr
    assert not (out / LOCK_NAME).exists()


def test_a_stage_that_fails_before_writing_leaves_no_folder(tmp_path):
    out = tmp_path / "results"
    with pytest.raises(ValueError):
        with folder_lock(out):
            raise ValueError("a tampered bundle, refused before anything is written")
    assert not out.exists()
    with pytest.raises(ValueError):
        with folder_lock(out):
            (out / "device.json").write_text("{}")
            raise ValueError("failed after writing")
    assert sorted(p.name for p in out.iterdir()) == ["device.json"]  # what it wrote stays; the lock goes
