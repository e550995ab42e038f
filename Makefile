# A fresh machine needs two commands:  `make quickstart`  then  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
SUDO    = $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP   = $(VENV)/.installed

.PHONY: setup quickstart test bench clean

$(STAMP): setup.cfg pyproject.toml scripts/install.sh
	PYTHON=$(PYTHON) VENV=$(VENV) SUDO=$(SUDO) bash scripts/install.sh
	touch $(STAMP)

setup: $(STAMP)

quickstart: setup
	$(BIN)/mnv1-tk zoo --out runs/quickstart

test: setup
	$(BIN)/python -m pytest -q --durations=15 -n auto --maxprocesses 2 --dist loadfile tests

bench: setup
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/convert.py
	$(BIN)/python -m bench.quant_vs_anchors

clean:
	rm -rf runs .pytest_cache
