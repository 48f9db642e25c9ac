"""What a new user does after a first training run: train the default model for one step, then
`edgemed export --adapter <adapter> --model default` with the default profile. A faithful LoRA
build is judged against the fp32 merged model and against the merged build of its quant by the
difference of their fidelity (within noise), never by agreement between two quantizations, so the
export exits 0 (it once failed with exit 3 on a q8_0 LoRA build as faithful as the merged q8_0).
"""

from __future__ import annotations

import pytest

from edgemed.cli import main
from edgemed.export.manifest import load_manifest


@pytest.mark.slow
def test_one_step_adapter_exports_with_the_default_profile(tmp_path, capsys):
    train = tmp_path / "train"
    assert main(["train", "--config", "smollm2_heart_grpo_cpu", "--max-steps", "1",
                 "--output", str(train), "--set", "judge.backend=proxy"]) == 0
    capsys.readouterr()
    out = tmp_path / "exp"
    # --heldout-docs bounds the held-out fidelity read (the full set costs minutes per build here).
    code = main(["export", "--adapter", str(train / "adapter"), "--model", "default", "--out", str(out),
                 "--heldout-docs", "4"])
    err = capsys.readouterr().err
    assert code == 0, err[-3000:]
    manifest = load_manifest(out)
    lora = [a for a in manifest.artifacts if a.format == "gguf-lora"]
    assert lora, [a.name for a in manifest.artifacts]
    for a in lora:
        assert a.status in ("passed", "undecided"), (a.name, a.status, a.parity)
