import json
import subprocess
import sys

from edgemed.cli import main


def test_help_lists_every_stage(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("data", "train", "export", "bench", "run"):
        assert name in out


def test_data_heart_writes_subset_with_prompt_ids(tmp_path, capsys):
    out = tmp_path / "heart.jsonl"
    assert main(["data", "heart", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert "heart-keywords-v1" in printed and f"selected {len(rows)} of 500" in printed
    assert 40 <= len(rows) <= 60 and all(r["prompt_id"] for r in rows)


def test_data_validate_exit_codes(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt_id": "a", "prompt": [{"role": "user", "content": "q"}], "rubrics": []}\n{nope\n')
    proc = subprocess.run([sys.executable, "-m", "edgemed.cli", "data", "validate", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert f"{bad}:1: rubrics:" in proc.stderr and f"{bad}:2: malformed JSON" in proc.stderr
    assert "Traceback" not in proc.stderr
    good = tmp_path / "good.jsonl"
    assert main(["data", "heart", "--out", str(good)]) == 0
    assert main(["data", "validate", str(good)]) == 0
