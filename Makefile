# Commands for a fresh machine with Python 3.10+:
#   make setup  set up .venv (tinytorch editable, with tito); then `source .venv/bin/activate`
#   make demo   set up .venv on first use, then run the milestone tour on the bundled data
#   make test   set up .venv on first use, then run the whole test suite (make check, then pytest)
#   make check  the fast checks, no tests: ruff, tinytorch/ equals the lessons' export, tito check
#   make lint-fix  ruff's automatic fixes (lint and import order), then re-export tinytorch/
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test check lint-fix clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[tito,test]"
	touch $(STAMP)

setup: $(STAMP)
	@echo "Ready. Put tito on your PATH in this terminal with: source $(VENV)/bin/activate"

demo: $(STAMP)
	$(BIN)/tito milestone tour --reference

# One BLAS thread in tests: results do not depend on thread scheduling, and small matmuls
# are not slowed by threads waiting for each other.
test: export OPENBLAS_NUM_THREADS = 1
test: export OMP_NUM_THREADS = 1
test: check
	$(BIN)/python -m pytest -q

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/tito export --check
	$(BIN)/tito check

# Fixes in the lessons change what they export: tinytorch/ is written again from them.
lint-fix: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/tito export

clean:
	rm -rf $(VENV) build dist *.egg-info
