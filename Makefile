# transferlib: two commands after cloning.
#   make book   create .venv if needed, install, execute the notebooks (book scale), build _build/html
#   make test   run the test suite
# Other targets: venv, book-smoke (what CI builds), test-notebooks, test-html, ci, clean.
# VENV selects the environment: an existing one (a conda env: `make book VENV=$CONDA_PREFIX`) is
# used as it is, and its torch is kept when it already imports.

SHELL  := /bin/bash
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Stamp of a finished install; reinstalls only when pyproject.toml changes.
STAMP  := $(VENV)/.transferlib-installed
JB     := $(BIN)/jupyter-book
SMOKE_OUT := _build/smoke
SMOKE_LOG := $(SMOKE_OUT)/build.log

.PHONY: all venv book book-smoke lint test test-notebooks test-html ci clean

all: book

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || { $(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install -q --upgrade pip; }
	$(BIN)/python -c "import torch, torchvision" 2>/dev/null \
		|| $(BIN)/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

# Progress bars help whoever runs an experiment, not the reader of a finished page: the book
# builds with tqdm off (TQDM_DISABLE), `transferlib run` and interactive use keep them.
book: $(STAMP)
	TQDM_DISABLE=1 TRANSFERLIB_SCALE=book $(JB) build .
	@echo "The book (book scale) is at $(CURDIR)/_build/html/index.html"

# Smoke scale into its own output folder (own Sphinx environment and execution cache), warnings
# are errors, and the log is checked for execution failures that Sphinx only reports.
book-smoke: $(STAMP)
	mkdir -p $(SMOKE_OUT)
	set -o pipefail; TQDM_DISABLE=1 TRANSFERLIB_SCALE=smoke $(JB) build . --path-output $(SMOKE_OUT) \
		--warningiserror --keep-going 2>&1 | tee $(SMOKE_LOG)
	! grep -nE "Executing notebook failed|Execution Failed|CellExecutionError|Traceback \(most recent" $(SMOKE_LOG)
	@echo "The book (smoke scale) is at $(CURDIR)/$(SMOKE_OUT)/_build/html/index.html"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(STAMP)
	$(BIN)/python -m pytest -m "not notebooks and not browser"

test-notebooks: $(STAMP)
	$(BIN)/python -m pytest -m notebooks tests/test_notebooks.py

# Checks of a built book (links, no network resources, headless Chromium); see the test's docstring.
test-html: $(STAMP)
	$(BIN)/python -m pytest tests/book/test_book_built_html.py

ci:
	.ci/run

clean:
	rm -rf _build runs
