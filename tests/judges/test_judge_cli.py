"""``edgemed judge grade`` end to end against a real (scripted) server."""

from __future__ import annotations

import json

from edgemed.cli import main
from tests.judges.judge_servers import Reply, completion


def write_record(tmp_path):
    record = {"prompt_id": "chest-1",
              "prompt": [{"role": "user", "content": "Crushing chest pain, what do I do?"}],
              "rubrics": [{"criterion": "Advises calling emergency services", "points": 5},
                          {"criterion": "Suggests waiting it out", "points": -5}]}
    path = tmp_path / "rec.jsonl"
    path.write_text(json.dumps(record) + "\n")
    return path


def test_grade_prints_each_verdict(fake_server, tmp_path, capsys):
    def answer(body):
        met = "waiting" not in body["messages"][-1]["content"]
        return Reply(body=completion(json.dumps({"explanation": "checked", "criteria_met": met})))

    fake_server.respond = answer
    args = ["judge", "grade", "--record", str(write_record(tmp_path)), "--response", "Call 911 now.",
            "--backend", "openai", "--base-url", fake_server.url, "--model", "fake-judge",
            "--cache-path", str(tmp_path / "c.sqlite")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "     MET  [+5] Advises calling emergency services" in out
    assert " not met  [-5] Suggests waiting it out" in out
    assert "chest-1: 2 criteria, 0 failed, 0 from cache" in out
    assert fake_server.requests[0]["messages"][1]["content"].count("assistant: Call 911 now.") == 1

    assert main(args + ["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [v["met"] for v in report["verdicts"]] == [1.0, 0.0] and report["stats"]["cache_hits"] == 2


def test_grade_reports_bad_input_in_one_line(tmp_path, capsys):
    path = write_record(tmp_path)
    assert main(["judge", "grade", "--record", str(path), "--prompt-id", "nope", "--response", "x"]) == 2
    assert "no record with prompt_id 'nope'" in capsys.readouterr().err
    config = tmp_path / "judge.yaml"
    config.write_text("judge:\n  backend: openai\n  concurency: 3\n")
    assert main(["judge", "grade", "--record", str(path), "--response", "x", "--config", str(config)]) == 2
    assert f"error: {config}: judge.concurency: unknown key (known: " in capsys.readouterr().err
