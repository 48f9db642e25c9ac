"""The converter's install step shares its folder with llama.cpp's tools (bin/): whichever comes first,
both must end up there (a fresh `make install` builds the tools before it fetches the converter)."""

from __future__ import annotations

from edgemed.export import converter


def staged_converter(root):
    staged = root / "staged"
    (staged / "conversion").mkdir(parents=True)
    (staged / "conversion" / "__init__.py").write_text("")
    (staged / "convert_lora_to_gguf.py").write_text("# lora\n")
    (staged / "convert_hf_to_gguf.py").write_text("# hf\n")
    return staged


def test_converter_moves_into_a_folder_that_already_holds_the_tools(tmp_path):
    target = tmp_path / "llama-cpp-python-0.3.36"
    (target / "bin").mkdir(parents=True)
    (target / "bin" / "llama-bench").write_text("tool")
    converter._move_into(staged_converter(tmp_path), target)
    assert (target / "convert_hf_to_gguf.py").read_text() == "# hf\n"
    assert (target / "conversion" / "__init__.py").is_file() and (target / "convert_lora_to_gguf.py").is_file()
    assert (target / "bin" / "llama-bench").read_text() == "tool"


def test_refresh_drops_the_converter_and_keeps_the_tools(tmp_path, monkeypatch):
    target = tmp_path / "llama-cpp-python-0.3.36"
    (target / "bin").mkdir(parents=True)
    (target / "bin" / "llama-bench").write_text("tool")
    converter._move_into(staged_converter(tmp_path), target)
    monkeypatch.setattr(converter, "tools_dir", lambda: tmp_path)
    monkeypatch.setattr(converter, "llama_cpp_version", lambda: "0.3.36")
    converter.remove_cached_converter()
    assert sorted(p.name for p in target.iterdir()) == ["bin"]
    assert (target / "bin" / "llama-bench").read_text() == "tool"
