"""ONNX builds open in one place: export's parity check and the bench runner get the same session."""

from __future__ import annotations

import pytest

from edgemed.errors import ModelError
from edgemed.runtimes import onnxruntime as runtime


def test_folder_without_graph_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="no .onnx file"):
        runtime.graph_file(tmp_path)


def test_session_options_pin_the_threads():
    options = runtime.session_options(3)
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (3, 1)


class Opened(Exception):
    """Raised where a session would be created: the test only asks who configured it."""


def test_parity_and_bench_configure_their_sessions_in_the_runtime_layer(tmp_path, monkeypatch):
    from edgemed.bench.runners import open_runner
    from edgemed.bench.targets import Target
    from edgemed.export.parity import open_runtime

    asked = []

    def graph_file(folder):
        asked.append(("graph", str(folder)))
        return "model.onnx"

    def session_options(threads):
        asked.append(("threads", threads))
        raise Opened

    monkeypatch.setattr(runtime, "graph_file", graph_file)
    monkeypatch.setattr(runtime, "session_options", session_options)
    with pytest.raises(Opened):
        open_runtime("onnx", tmp_path, threads=3)
    target = Target("b/onnx-int8", "b", "onnx-int8", "onnx", "int8", str(tmp_path), 1, 1, "ab", 1)
    with pytest.raises(Opened):
        open_runner(target, threads=4, device="cpu")
    assert asked == [("graph", str(tmp_path)), ("threads", 3), ("graph", str(tmp_path)), ("threads", 4)]
