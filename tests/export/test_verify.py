"""The remembered verification passes are only a cache: a damaged one is set aside and rebuilt."""

from __future__ import annotations

import json
import logging
import os

from edgemed.export import verify
from edgemed.export.manifest import load_manifest
from tests.integrity_files import tiny_export


def test_damaged_verification_cache_is_set_aside_and_rebuilt(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("EDGEMED_HOME", str(tmp_path / "home"))
    artifact = load_manifest(tiny_export(tmp_path / "export")).artifact("gguf-q8_0")
    assert verify.verify_artifact(artifact) == artifact.sha256  # hashed once, the pass remembered
    [cache] = (tmp_path / "home" / "verified").iterdir()
    junk = os.urandom(5000)
    cache.write_bytes(junk)

    hashed = []
    digest = verify.artifact_digest
    monkeypatch.setattr(verify, "artifact_digest", lambda p: hashed.append(p) or digest(p))
    with caplog.at_level(logging.WARNING):
        assert verify.verify_artifact(artifact) == artifact.sha256  # the run goes on
    assert len(hashed) == 1  # the file hashed again, since the cache could not vouch for it
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "verification cache" in warnings[0] and "moved aside" in warnings[0]
    [aside] = [p for p in cache.parent.iterdir() if p.name.startswith(cache.name + ".corrupt-")]
    assert aside.read_bytes() == junk
    assert json.loads(cache.read_text())["sha256"] == artifact.sha256  # rebuilt
    assert verify.verify_artifact(artifact) == artifact.sha256 and len(hashed) == 1  # and used again
