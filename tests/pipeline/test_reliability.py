"""Bad configs and unusable output folders fail in one line, before any model loads."""

import re
import shutil
import subprocess
import sys

import pytest

from edgemed.errors import ConfigError
from edgemed.pipeline.config import load_pipeline_config
from tests.pipeline.conftest import TINY, run_edgemed


def write_config(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", [
    ("name: x\nstagez: [train]\n", "p.yaml: stagez: unknown key (known: "),
    ("name: x\nstages: [train, deploy]\n", "p.yaml: stages: unknown stage 'deploy'"),
    ("name: x\nstages: [merge]\n", "'merge' needs 'train'"),
    ("name: x\ntrain: [1, 2]\n", "p.yaml: train: expected mapping, got [1, 2]"),
    ("name: [x\n", "not valid YAML"),
])
def test_bad_pipeline_configs(tmp_path, text, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_pipeline_config(str(write_config(tmp_path, text)))


@pytest.mark.parametrize("extra, message", [
    ("train:\n  grpo.max_stepz: 2\n", "p.yaml: train.grpo.max_stepz: unknown key (known: "),
    ("train:\n  rewards: [{name: nonsense}]\n", "nonsense"),
    ("export:\n  formats: gguf:q3_weird\n", "p.yaml: export.formats: unknown gguf quant 'q3_weird'"),
    ("export:\n  target: cpu-x86-64\n", "p.yaml: export.target: unknown key (known: "),
    ("bench:\n  latency: {n_promt: 5}\n", "p.yaml: bench.latency.n_promt: unknown key (known: "),
])
def test_stage_config_errors_fail_fast_in_one_line(tmp_path, extra, message):
    path = write_config(tmp_path, f"name: bad\nexport_base: false\n{extra}")
    proc = run_edgemed("run", "--config", str(path), "--runs-dir", str(tmp_path / "runs"), timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "runs" / "bad" / "train").exists(), "a stage started despite a bad config"


@pytest.mark.parametrize("name", ["pipeline_default", "pipeline_demo"])
def test_packaged_pipelines_plan_every_stage(name, tmp_path):
    """Every section of a packaged pipeline goes through its stage's own reader (no model loads), so a
    renamed key breaks this test, not an hour-long run."""
    from edgemed.pipeline.runner import plan

    cfg = load_pipeline_config(name, runs_dir=str(tmp_path))
    stages = [p.name for p in plan(cfg)]
    assert stages[:3] == ["train", "merge", "export"] and "bench" in stages


def in_namespace_mount(tmp_path, mount_opts: str, runs: str) -> subprocess.CompletedProcess:
    """Run `edgemed run` with `runs` on a real tmpfs mounted with ``mount_opts`` (user namespace)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not available")
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("user namespaces are not permitted here")
    script = (f"mount -t tmpfs -o {mount_opts} tmpfs {runs} && "
              f"exec {sys.executable} -m edgemed.cli run --config {TINY} --runs-dir {runs}")
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("mount_opts, message", [
    ("ro,size=1m", "read-only file system"),
    ("size=4k", "no space left on device"),
])
def test_unwritable_runs_folder_is_one_clear_line(tmp_path, mount_opts, message):
    runs = tmp_path / "runs"
    runs.mkdir()
    proc = in_namespace_mount(tmp_path, mount_opts, str(runs))
    assert proc.returncode == 4, proc.stderr[-2000:]  # the environment, not the input
    assert message in proc.stderr and "Traceback" not in proc.stderr
