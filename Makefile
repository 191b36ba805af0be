# Two commands on a fresh machine:
#   make demo   installs into .venv (once) and runs the main job on the embedded world, ending with the report
#   make test   installs into .venv (once) and runs every check CI runs
# and one more:
#   make report the benchmark report over three seeds (SEEDS), after `make demo`
#   make docs   every notebook executed and rendered as HTML with its figures -> _docs/index.html (about 10 min on 2
#               cores; DOCS_ARGS="--reuse .ci/out" reuses the experiment notebooks `make test` ran)
#   make report-gpu  the report at scale=gpu (a 4x world, the full tiny preset, batch 64, bf16) on one CUDA GPU;
#               use a CUDA torch: `make report-gpu TORCH=torch`. tools/gpu_check.sh runs it with the GPU benchmarks.
#
# TORCH is installed before anything that depends on torch. The default pins the CPU build this project is
# developed with; on a GPU machine use your normal torch, e.g. `make demo TORCH=torch` (or TORCH= to keep an
# installed one).
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN     = $(VENV)/bin

SEEDS  ?= 0, 1, 2
GPU_SEEDS ?= 0
REPORT  = $(BIN)/papermill -k python3 --language python --cwd nbs/experiments nbs/experiments/report.ipynb

DOCS_ARGS ?=

.PHONY: install demo report report-gpu test docs clean-data

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	if [ -n "$(TORCH)" ]; then $(BIN)/python -m pip install -q "$(TORCH)"; fi
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

demo: install
	$(BIN)/fusar-klip demo --out data/mini
	mkdir -p data/mini/report
	$(REPORT) data/mini/report/report_seed0.ipynb -p scale mini -y "seeds: [0]"

report: install
	mkdir -p data/mini/report
	$(REPORT) data/mini/report/report.ipynb -p scale mini -y "seeds: [$(SEEDS)]"

report-gpu: install
	mkdir -p data/gpu/report
	$(REPORT) data/gpu/report/report.ipynb -p scale gpu -y "seeds: [$(GPU_SEEDS)]"

test: install
	PATH="$(CURDIR)/$(BIN):$$PATH" bash tools/run_tests.sh

docs: install
	$(BIN)/python tools/build_docs.py --out _docs $(DOCS_ARGS)

clean-data:
	rm -rf data/mini
