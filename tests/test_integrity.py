"""Structural checks of model files (edgemed.integrity): every damage gives one line naming the file
and the problem, and an intact file passes."""

from __future__ import annotations

import re
import struct

import pytest

from edgemed.integrity import CorruptFile, check_artifact, check_model_folder
from edgemed.integrity.gguf_file import check_gguf
from edgemed.integrity.onnx_file import check_onnx
from edgemed.integrity.safetensors_file import check_safetensors
from tests.integrity_files import cut, overwrite, tiny_gguf, tiny_onnx, tiny_onnx_model, tiny_safetensors


def one_line(e: pytest.ExceptionInfo, path) -> str:
    text = str(e.value)
    assert "\n" not in text and text.startswith(f"{path}: ")
    return text


# --- GGUF ------------------------------------------------------------------------------------------

@pytest.fixture
def gguf_file(tmp_path):
    return tiny_gguf(tmp_path / "m.gguf")


def test_intact_gguf_passes_and_reports_its_layout(gguf_file):
    layout = check_gguf(gguf_file)
    assert (layout.version, layout.n_tensors, layout.n_kv) == (3, 3, 3)
    assert layout.data_end == layout.size == gguf_file.stat().st_size and layout.data_offset % 32 == 0


def test_gguf_cut_inside_the_tensor_data(gguf_file):
    size = gguf_file.stat().st_size
    cut(gguf_file, size - 100)
    with pytest.raises(CorruptFile) as e:
        check_gguf(gguf_file)
    assert f"truncated at byte {size - 100:,} of {size:,} (tensor '" in one_line(e, gguf_file)


@pytest.mark.parametrize("keep, where", [(60, "metadata 'general.architecture'"), (10, "the file header"),
                                         (2000, "metadata 'tokenizer.ggml.tokens'")])
def test_gguf_cut_inside_the_header(gguf_file, keep, where):
    cut(gguf_file, keep)
    with pytest.raises(CorruptFile) as e:
        check_gguf(gguf_file)
    assert f"truncated at byte {keep:,}, inside its header ({where} runs past the end" in one_line(e, gguf_file)


def test_gguf_cut_inside_the_tensor_table(gguf_file):
    layout = check_gguf(gguf_file)
    cut(gguf_file, layout.data_offset - 40)
    with pytest.raises(CorruptFile, match=r"inside its header \((the entry of tensor '.*'|tensor entry \d+ at "
                                          r"byte [\d,]+) runs past the end of the file\)"):
        check_gguf(gguf_file)


@pytest.mark.parametrize("offset, data, message", [
    (0, b"GGUX", r"bad magic b'GGUX' \(a GGUF file starts with b'GGUF'\)"),
    (4, struct.pack("<I", 99), "unsupported GGUF version 99"),
    (16, struct.pack("<Q", 1 << 40), "unreadable GGUF header at byte 8: 1,099,511,627,776 metadata keys"),
    (24, struct.pack("<Q", 1 << 50), "unreadable GGUF header at byte 24: string length .* is not plausible"),
])
def test_gguf_header_bytes_flipped(gguf_file, offset, data, message):
    overwrite(gguf_file, offset, data)
    with pytest.raises(CorruptFile, match=message):
        check_gguf(gguf_file)


def test_gguf_tensor_type_flipped(gguf_file):
    layout = check_gguf(gguf_file)
    raw = gguf_file.read_bytes()
    name = b"output_norm.weight"
    at = raw.index(name, 0, layout.data_offset) + len(name) + 4 + 8  # n_dims, one dim → type
    overwrite(gguf_file, at, struct.pack("<I", 77))
    with pytest.raises(CorruptFile, match="tensor 'output_norm.weight' has unknown type 77"):
        check_gguf(gguf_file)


def test_gguf_bytes_flipped_in_tensor_data_are_invisible_to_structure(gguf_file):
    # Only a digest sees these; the manifest's sha256 does (tests/test_corruption.py).
    overwrite(gguf_file, gguf_file.stat().st_size // 2, b"\xff" * 8)
    check_gguf(gguf_file)


def test_empty_and_non_gguf(tmp_path):
    empty = tmp_path / "e.gguf"
    empty.write_bytes(b"")
    with pytest.raises(CorruptFile, match="empty file"):
        check_gguf(empty)
    zipped = tmp_path / "z.gguf"
    zipped.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(CorruptFile, match="bad magic"):
        check_artifact("gguf", zipped)


# --- ONNX ------------------------------------------------------------------------------------------

def test_intact_onnx_with_external_data_passes(tmp_path):
    check_onnx(tiny_onnx(tmp_path / "o"))
    check_onnx(tiny_onnx(tmp_path / "inline", external=False))


def test_onnx_external_data_missing(tmp_path):
    folder = tiny_onnx(tmp_path / "o")
    (folder / "model.onnx_data").unlink()
    with pytest.raises(CorruptFile) as e:
        check_artifact("onnx", folder)
    assert "missing, but tensor 'w' of model.onnx is stored there" in one_line(e, folder / "model.onnx_data")


def test_onnx_external_data_short(tmp_path):
    folder = tiny_onnx(tmp_path / "o")
    data = folder / "model.onnx_data"
    size = data.stat().st_size
    cut(data, size - 8)
    with pytest.raises(CorruptFile) as e:
        check_onnx(folder)
    assert f"truncated at byte {size - 8:,} of {size:,} (tensor 'b' of model.onnx runs past the end)" in one_line(e, data)


def test_onnx_external_data_outside_the_folder(tmp_path):
    import onnx

    folder = tmp_path / "o"
    folder.mkdir()
    model = tiny_onnx_model()
    onnx.save(model, str(folder / "model.onnx"), save_as_external_data=True, location="w.bin", size_threshold=0)
    m = onnx.load(str(folder / "model.onnx"), load_external_data=False)
    for entry in m.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = "../../etc/passwd"
    onnx.save(m, str(folder / "model.onnx"))
    with pytest.raises(CorruptFile, match=r"points to external data '../../etc/passwd', outside the model's folder"):
        check_onnx(folder)


def test_onnx_protobuf_cut_and_garbage(tmp_path):
    folder = tiny_onnx(tmp_path / "o", external=False)
    model = folder / "model.onnx"
    size = model.stat().st_size
    cut(model, size // 2)
    with pytest.raises(CorruptFile) as e:
        check_onnx(model)
    assert f"truncated at byte {size // 2:,} of " in one_line(e, model)
    model.write_bytes(b"GGUF" + bytes(200))
    with pytest.raises(CorruptFile, match="unreadable ONNX protobuf at byte 0: invalid wire type 7"):
        check_onnx(model)


def test_onnx_graph_missing_a_node(tmp_path):
    # What a file cut exactly between two nodes looks like: it parses, but the output has no producer.
    path = tmp_path / "model.onnx"
    path.write_bytes(tiny_onnx_model(with_producer=False).SerializeToString())
    with pytest.raises(CorruptFile, match="incomplete ONNX graph: graph output needs 'y', which nothing"):
        check_onnx(path)


def test_onnx_folder_without_a_model(tmp_path):
    (tmp_path / "o").mkdir()
    with pytest.raises(CorruptFile, match="no .onnx file"):
        check_onnx(tmp_path / "o")


# --- safetensors -----------------------------------------------------------------------------------

@pytest.fixture
def st_file(tmp_path):
    return tiny_safetensors(tmp_path / "model.safetensors")


def header_len(path) -> int:
    return struct.unpack("<Q", path.read_bytes()[:8])[0]


def test_intact_safetensors_passes(st_file):
    assert sorted(check_safetensors(st_file)) == ["b", "w"]


@pytest.mark.parametrize("damage, message", [
    (lambda p: overwrite(p, 0, struct.pack("<Q", 1 << 60)), "its length field says 1,152,921,504,606,846,976 bytes"),
    (lambda p: overwrite(p, 8, b"#"), r"unreadable safetensors header \(not JSON"),
    (lambda p: cut(p, 5), re.escape("truncated at byte 5 of 8 (the 8-byte header length is cut)")),
    (lambda p: cut(p, 20), r"truncated at byte 20 of \d+ \(the JSON header runs past the end\)"),
    (lambda p: cut(p, p.stat().st_size - 4), "truncated at byte .* of .* runs past the end"),
    (lambda p: p.write_bytes(p.read_bytes() + b"junk"), "4 bytes after the last tensor"),
])
def test_safetensors_bad_header_or_size(st_file, damage, message):
    damage(st_file)
    with pytest.raises(CorruptFile, match=message) as e:
        check_safetensors(st_file)
    one_line(e, st_file)


def test_safetensors_offsets_that_disagree_with_the_shape(st_file):
    raw = st_file.read_bytes()
    n = header_len(st_file)
    header = raw[8:8 + n].replace(b'"shape":[6,4]', b'"shape":[6,5]')
    assert header != raw[8:8 + n]
    st_file.write_bytes(raw[:8] + header + raw[8 + n:])
    with pytest.raises(CorruptFile, match=r"tensor 'w' spans 96 bytes but F32 \[6, 5\] needs 120"):
        check_safetensors(st_file)


def test_model_folder_checks_every_weight_file_and_the_shard_index(tmp_path):
    folder = tmp_path / "m"
    tiny_safetensors(folder / "model-00001-of-00002.safetensors")
    (folder / "model.safetensors.index.json").write_text(
        '{"weight_map": {"w": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}')
    with pytest.raises(CorruptFile, match="model-00002-of-00002.safetensors: missing, but model.safetensors.index"):
        check_model_folder(folder)
    tiny_safetensors(folder / "model-00002-of-00002.safetensors")
    check_model_folder(folder)
    cut(folder / "model-00002-of-00002.safetensors", 30)
    with pytest.raises(CorruptFile, match="model-00002-of-00002.safetensors: truncated at byte 30"):
        check_model_folder(folder)
