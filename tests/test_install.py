"""A non-editable install works with no source tree around: shipped profiles, suites and configs
reach the installed package. The wheel goes into a fresh venv that borrows this venv's
dependencies (a plain path entry, so this venv's editable edgemed is never seen)."""

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_installs_and_finds_its_shipped_files(tmp_path):
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(wheels.glob("edgemed-*.whl"))

    env_dir = tmp_path / "fresh-venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    (site / "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    inst = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert inst.returncode == 0, inst.stderr[-2000:]

    away = tmp_path / "elsewhere"  # no source tree on sys.path or in the cwd
    away.mkdir()
    check = ("import edgemed, pathlib; from edgemed.export.config import load_device_profile; "
             "from edgemed.bench.config import load_config; from edgemed.pipeline.config import load_pipeline_config; "
             "assert 'site-packages' in edgemed.__file__, edgemed.__file__; "
             "print(load_device_profile('cpu-x86-64').name); print(load_config({'suite': 'pipeline'}).suite); "
             "print(load_pipeline_config('pipeline_default').name)")
    out = subprocess.run([str(py), "-c", check], capture_output=True, text=True, cwd=away, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["cpu-x86-64", "pipeline", "default"]
    helped = subprocess.run([str(env_dir / "bin" / "edgemed"), "export", "--help"], capture_output=True, text=True,
                            cwd=away, timeout=120)
    assert helped.returncode == 0 and "--profile" in helped.stdout, helped.stderr[-2000:]
