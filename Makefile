# Two commands on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# js/ devDependencies (tsc, for tests/browser/test_js_types.py), installed only where npm
# exists: without it that test skips with its reason. npm ci writes this file.
JS_STAMP := $(if $(shell command -v npm 2>/dev/null),js/node_modules/.package-lock.json)

.PHONY: demo test lint typecheck bench bench-quick lobby clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV) || { echo "make: '$(PY) -m venv' failed. On Debian/Ubuntu: apt-get install python3-venv"; exit 1; }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[demo,bench,dev,lobby]'
	touch $(STAMP)

js/node_modules/.package-lock.json: js/package-lock.json
	npm ci --prefix js --no-audit --no-fund

demo: $(STAMP)
	$(BIN)/python -m demo_game $(ARGS)

lobby: $(STAMP)
	$(BIN)/netcode lobby $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check netcode demo_game benchmarks tests

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) $(JS_STAMP) lint typecheck
	$(BIN)/python -m pytest $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.latency $(ARGS)

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks.latency --quick $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
