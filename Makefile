# s2t_edu: every command sets up .venv first if it is missing or out of date.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.s2t_edu-installed
# Single source of truth for pins: pyproject.toml.
TORCH_PIN := $(shell sed -n 's/^ *"\(torch==[0-9.]*\)".*/\1/p' pyproject.toml)
NO_DEPS_PINS := $(shell sed -n 's/^no_deps = \[\(.*\)\]/\1/p' pyproject.toml | tr -d '",')
# Where pip finds torch. Empty (the default): pip's own settings. From PyPI on Linux x86_64 that
# is the CUDA build (a 526.6 MB wheel, then several GB of NVIDIA runtime packages); for the CPU
# build point pip at PyTorch's CPU wheel index (README):
#   make lab TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
# This machine's pip config lists local index folders that may not exist; hide that noise only.
QUIET_PIP := { grep -v "is ignored: it is neither a file nor a directory" || true; }

NBVAL := --nbval --nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg --ignore=notebooks/drafts

.PHONY: help setup lab test lint notebooks book format clean-venv

help:
	@echo "make lab    - set up .venv if needed, then open the course in JupyterLab (chapter 1 first)"
	@echo "             TORCH_INDEX=https://download.pytorch.org/whl/cpu: the CPU build of torch"
	@echo "             LAB_ARGS=\"--no-browser --port 8890\": options for jupyter lab"
	@echo "make test   - set up .venv if needed, then run ruff and the whole test suite"
	@echo "make book   - build the course website into book/_build/html (EXECUTE=1 re-runs notebooks)"
	@echo "make notebooks - re-execute the notebooks (after changing s2t_edu/ or a notebook)"
	@echo "make student-version - exercise notebooks without solutions -> build/student/"
	@echo "make grade SUBMISSIONS=dir - grade dir/<student>/*.ipynb -> build/grades.csv + build/feedback/"

setup: $(STAMP)

$(STAMP): pyproject.toml
	@echo "==> Setting up $(VENV) with $(PYTHON) ($$($(PYTHON) --version))"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "==> Installing $(TORCH_PIN) first$(if $(TORCH_INDEX), from $(TORCH_INDEX),) (an unpinned torch pulls a newer CUDA build)"
	@$(BIN)/pip install --quiet $(TORCH_PIN)$(if $(TORCH_INDEX), --index-url $(TORCH_INDEX),) 2>&1 | $(QUIET_PIP)
	@echo "==> Installing the pinned course stack from pyproject.toml"
	@$(BIN)/pip install --quiet -e ".[dev]" 2>&1 | $(QUIET_PIP)
	@echo "==> Installing $(NO_DEPS_PINS) without its declared dependencies"
	@$(BIN)/pip install --quiet --no-deps $(NO_DEPS_PINS) 2>&1 | $(QUIET_PIP)
	@$(BIN)/python -c "import torch, transformers, s2t_edu; print('==> Ready: torch', torch.__version__, '| transformers', transformers.__version__)"
	@touch $@

# Teachers: make student-version, make grade SUBMISSIONS=dir (see notebooks/exercises/README.md)
include exercises.mk

# The course's own Jupyter settings (jupyter/): chapter 1 opens first, root may run it
# (containers, CI, cloud notebooks), and learners see neither nbgrader's teacher tools nor the
# Jupyter news pop-up. A plain `.venv/bin/jupyter lab` leaves them out.
# LAB_ARGS goes to `jupyter lab` as is, e.g. make lab LAB_ARGS="--no-browser --port 8890".
LAB_ARGS ?=
lab: setup
	@echo "==> Opening the course in JupyterLab: notebooks/, chapter 1 first (Ctrl-C to stop)"
	@JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
		exec $(BIN)/jupyter lab notebooks/ $(LAB_ARGS)

lint: setup
	@echo "==> ruff check + format --check"
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .

test: lint
	@echo "==> pytest: library tests + nbval (strict: stored notebook outputs are compared)"
	@HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/pytest tests notebooks $(NBVAL)

book: setup
	@echo "==> Building the Jupyter Book site (offline, warnings are errors)$(if $(EXECUTE), after re-executing the notebooks,)"
	@HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python tools/build_book.py $(if $(EXECUTE),--execute,)
	@echo "==> Open book/_build/html/index.html in a browser"

notebooks: setup
	@HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python tools/notebooks.py execute $(NB)

format: setup
	@$(BIN)/ruff format .
	@$(BIN)/ruff check --fix .

clean-venv:
	rm -rf $(VENV)
