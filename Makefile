# The two commands of the quick start: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test install install-test lint bench clean chromium compiler viewer viewer-check

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

## test: install the test extras (and Debian chromium for the viewer's browser tests, g++ for torch.compile), lint,
## run the whole suite
test: install-test lint chromium compiler
	$(BIN)/pytest

# The viewer's browser tests drive Debian's chromium; install it when it is missing (CI runs as root).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

# torch.compile (`--compile`) builds its CPU kernels with a C++ compiler; install g++ when it is missing.
compiler:
	@command -v g++ >/dev/null || { $(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends g++; }

## viewer: rebuild the viewer's committed assets (src/dinoscope/viewer/static) from viewer/ (needs Node >= 20.19)
viewer:
	cd viewer && npm ci --no-audit --no-fund && npm run build

## viewer-check: rebuild the viewer into a scratch folder and fail if it differs from the committed assets
VIEWER_SCRATCH ?= build/viewer-check
viewer-check:
	cd viewer && npm ci --no-audit --no-fund && npm run build -- --outDir ../$(VIEWER_SCRATCH) --emptyOutDir
	diff -r $(VIEWER_SCRATCH) src/dinoscope/viewer/static || \
		{ echo "the committed viewer assets are stale: run 'make viewer' and commit src/dinoscope/viewer/static"; exit 1; }

lint: install-test
	$(BIN)/ruff check src tests benchmarks

bench: install
	$(BIN)/python benchmarks/extract.py
	$(BIN)/python benchmarks/maps.py
	$(BIN)/python benchmarks/analysis.py
	$(BIN)/python benchmarks/poincare.py
	$(BIN)/python benchmarks/place.py
	$(BIN)/python benchmarks/serve.py
	$(BIN)/python benchmarks/viewer.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
