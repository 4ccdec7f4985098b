# The two commands of the quick start: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test install install-test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

# Re-install when the project's dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## demo: create .venv, install dinoscope, run the whole pipeline offline on scikit-learn's digits
demo: install
	$(BIN)/dinoscope demo --out runs/demo

## test: install the test extras, lint, and run the whole suite (slow tests included)
test: install-test lint
	$(BIN)/pytest

lint: install-test
	$(BIN)/ruff check src tests benchmarks

bench: install
	$(BIN)/python benchmarks/extract.py
	$(BIN)/python benchmarks/maps.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
