# Two commands on a fresh machine:
#   make demo   installs into .venv (once) and runs the main job on the embedded world
#   make test   installs into .venv (once) and runs every check CI runs
#
# TORCH is installed before anything that depends on torch. The default pins the CPU build this project is
# developed with; on a GPU machine use your normal torch, e.g. `make demo TORCH=torch` (or TORCH= to keep an
# installed one).
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN     = $(VENV)/bin

.PHONY: install demo test clean-data

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	if [ -n "$(TORCH)" ]; then $(BIN)/python -m pip install -q "$(TORCH)"; fi
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

demo: install
	$(BIN)/fusar-klip demo --out data/mini

test: install
	PATH="$(CURDIR)/$(BIN):$$PATH" bash tools/run_tests.sh

clean-data:
	rm -rf data/mini
