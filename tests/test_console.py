"""edgemed.console: stage lines and bars on the terminal, everything else in the stage log (issue 26).

Each case runs a small script in a child process, as the CLI would: the terminal is that child's
stderr (a file here, a pseudo-terminal for the bar), so nothing depends on pytest's own capture.
"""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def script(body: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "script.py"
    path.write_text("import logging, os, subprocess, sys\nfrom pathlib import Path\n"
                    "from edgemed import console\n" + textwrap.dedent(body))
    return [sys.executable, str(path)]


def run_script(body: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(script(body, tmp_path), capture_output=True, text=True, cwd=ROOT, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_native_and_library_output_go_to_the_stage_log_and_warnings_to_the_terminal(tmp_path):
    proc = run_script(f"""
        console.setup()
        with console.stage("demo", Path({str(tmp_path)!r}) / "logs") as stage:
            stage.start("two things")
            print("python print")
            import ctypes; ctypes.CDLL(None).printf(b"C printf\\n")   # C-level stdout, as llama.cpp's
            os.write(2, b"fd 2 write\\n")                                # C-level stderr
            subprocess.run([sys.executable, "-c", "print('child process')"])
            logging.getLogger().info("Quantization parameters for tensor x not specified")  # onnxruntime's
            for i in range(5):
                logging.getLogger("edgemed.demo").warning("judge failed on criterion %d", i)
            console.warning("gguf-q4_k_m: q4_k_m holds Q5_0 166 of 211 tensors")
            stage.done("2 things")
        print("summary on stdout")
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    log = (tmp_path / "logs" / "demo.log").read_text()
    for text in ("python print", "C printf", "fd 2 write", "child process", "INFO root: Quantization parameters",
                 "judge failed on criterion 4", "q4_k_m holds Q5_0", "demo: two things", "demo: done in"):
        assert text in log, text
    assert proc.stdout == "summary on stdout\n"
    terminal = proc.stderr.splitlines()
    assert terminal[0] == f"demo: two things (log: {tmp_path / 'logs' / 'demo.log'})"
    assert terminal[1:4] == [f"warning: judge failed on criterion {i}" for i in range(3)]  # capped per logger
    assert terminal[4] == "warning: gguf-q4_k_m: q4_k_m holds Q5_0 166 of 211 tensors"  # always shown
    assert terminal[5].startswith("demo: done in ") and terminal[5].endswith(": 2 things")
    assert terminal[6] == f"  (2 more warning(s) in {tmp_path / 'logs' / 'demo.log'})"
    assert len(terminal) == 7


def test_a_failing_stage_says_so_and_where_its_log_is(tmp_path):
    proc = run_script(f"""
        console.setup()
        with console.stage("demo", Path({str(tmp_path)!r}) / "logs") as stage:
            stage.start("about to fail")
            raise SystemExit(3)
    """, tmp_path)
    assert proc.returncode == 3
    assert proc.stderr.splitlines()[-1].startswith("demo: failed after ")
    assert str(tmp_path / "logs" / "demo.log") in proc.stderr


def test_without_setup_nothing_is_captured(tmp_path):
    proc = run_script(f"""
        with console.stage("demo", Path({str(tmp_path)!r}) / "logs") as stage:
            stage.start("library use")
            print("still on stdout")
    """, tmp_path)
    assert proc.stdout == "still on stdout\n" and "demo: library use" in proc.stderr
    assert not (tmp_path / "logs").exists()


def test_off_a_tty_a_bar_prints_a_few_plain_lines_never_the_last(tmp_path):
    proc = run_script("""
        console.setup()
        console.PLAIN_EVERY_S = 0
        with console.Bar(100, "train", "step") as bar:
            for _ in range(100):
                bar.update()
                bar.note("reward 0.5")
    """, tmp_path)
    lines = proc.stderr.splitlines()
    assert [ln.split(",")[0] for ln in lines] == [f"  train: {n}/100 steps (reward 0.5)" for n in (25, 50, 75)]
    assert all("left" in ln for ln in lines)


def test_on_a_tty_a_bar_shows_progress_and_eta(tmp_path):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a real window's size
    proc = subprocess.Popen(script("""
        console.setup()
        with console.Bar(4, "export", "build") as bar:
            for name in "abcd":
                bar.note(name)
                bar.update()
        console.line("export: done")
    """, tmp_path), stderr=slave, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    os.close(slave)
    seen = b""
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
    assert proc.wait(timeout=60) == 0
    text = seen.decode(errors="replace")
    assert "export:" in text and "/4 [" in text and "build" in text and text.endswith("export: done\r\n")


def test_a_child_process_writes_to_the_parents_terminal(tmp_path):
    proc = run_script("""
        console.setup()
        with console.capture_native_output(Path(sys.argv[0]).with_name("child.log")):
            subprocess.run([sys.executable, "-c", "from edgemed import console; console.setup(); "
                            "console.line('bar of the bench worker'); print('worker stdout')"],
                           env={**os.environ, **console.child_env()}, pass_fds=console.child_fds())
    """, tmp_path)
    assert proc.stderr == "bar of the bench worker\n"
    assert (tmp_path / "child.log").read_text() == "worker stdout\n"


def test_verbose_shows_the_stage_log_live_and_still_keeps_it(tmp_path):
    proc = run_script(f"""
        console.setup(verbose=True)
        with console.stage("demo", Path({str(tmp_path)!r}) / "logs") as stage:
            stage.start("loud")
            import ctypes; ctypes.CDLL(None).printf(b"llama_model_loader: C-level line\\n")
            logging.getLogger("transformers").warning("a library notice")
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "llama_model_loader: C-level line" in proc.stderr and "a library notice" in proc.stderr
    log = (tmp_path / "logs" / "demo.log").read_text()
    assert "llama_model_loader: C-level line" in log and "a library notice" in log


def test_python_streams_follow_the_capture_and_outlive_it(tmp_path):
    proc = run_script(f"""
        import contextlib, io
        console.setup()
        caller_stdout = io.StringIO()
        with contextlib.redirect_stdout(caller_stdout):  # as a test calling main() in-process does
            with console.stage("demo", Path({str(tmp_path)!r}) / "logs"):
                print("{{'loss': 0.0}}")              # trl's dict: into the log, not the caller's stdout
                handler = logging.StreamHandler()  # a library's handler made mid-stage
        assert caller_stdout.getvalue() == "", caller_stdout.getvalue()
        handler.stream.write("after the stage\\n")  # still a working stream: now the terminal
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "{'loss': 0.0}" in (tmp_path / "logs" / "demo.log").read_text()
    assert proc.stderr.splitlines()[-1] == "after the stage"
