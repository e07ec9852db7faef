# One-command set-up: `make demo` and `make test` both depend on `make setup`,
# which is idempotent (a stamp file records a finished install).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
# torch is installed first and never replaced. Override for CUDA, e.g.
#   make setup TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu121"
# A venv that already has torch keeps it.
TORCH ?= torch==2.13.0
VPY := $(VENV)/bin/python
PIP := $(VPY) -m pip
STAMP := $(VENV)/.lrdrop-setup-done
# the suite on TEST_WORKERS processes (pytest-xdist; each test file stays in one, in order), one
# torch thread each, and its 20 slowest tests at the end; TEST_WORKERS=0: one process
TEST_WORKERS ?= 2
PYTEST_ARGS ?= $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile) --durations=20

.PHONY: setup demo demo-summarization demo-classification smoke test format clean-venv

setup: $(STAMP)

$(STAMP): setup.py
	@bash scripts/check_build_env.sh $(PYTHON)
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	@$(VPY) -c "import torch" 2>/dev/null \
	  && echo "[setup] keeping installed torch $$($(VPY) -c 'import torch; print(torch.__version__)')" \
	  || $(PIP) install $(TORCH)
	$(PIP) install numpy cython "setuptools<81" wheel
	# --no-build-isolation: build fairseq's extensions against the torch above; [fairseq]: the
	# plugin and the tools; [hf]: the
	# Hugging Face adapter's transformers (lrdrop_hf), whose tests run in make test too
	$(PIP) install --no-build-isolation -e ".[fairseq,test,hf]"
	# fairseq-fixed pulls torchaudio from PyPI, a build for another torch that fails to load
	# (OSError) and breaks importing transformers' audio-capable models (Marian); fairseq needs
	# it only for speech tasks, so a torchaudio that does not load is removed
	@$(VPY) -c "import torchaudio" 2>/dev/null || $(PIP) uninstall -y torchaudio
	@touch $(STAMP)
	@echo "[setup] done: $(VENV)"

demo: setup
	$(VENV)/bin/lrdrop-demo $(DEMO_ARGS)

demo-summarization: setup
	$(VENV)/bin/lrdrop-demo-summarization $(DEMO_ARGS)

demo-classification: setup
	$(VENV)/bin/lrdrop-demo-classification $(DEMO_ARGS)

smoke: setup
	PYTHON=$(VPY) bash scripts/smoke_demo.sh

# lint and format check first (ruff.toml), then the suite
test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VPY) -m pytest tests $(PYTEST_ARGS)

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean-venv:
	rm -rf $(VENV)
