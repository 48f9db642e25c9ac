"""Test environment for both tests/ and the doctests in edgemed/ (pytest loads this first)."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# Tests get their own cache root (kept between local runs so the default model is dequantised
# once); CI starts from a fresh clone, so from an empty one.
os.environ.setdefault("EDGEMED_HOME", str(ROOT / ".cache" / "test-home"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
