# Two commands on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench bench-quick lobby clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV) || { echo "make: '$(PY) -m venv' failed. On Debian/Ubuntu: apt-get install python3-venv"; exit 1; }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[demo,bench,dev,lobby]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m demo_game $(ARGS)

lobby: $(STAMP)
	$(BIN)/netcode lobby $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check netcode demo_game benchmarks tests

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.latency $(ARGS)

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks.latency --quick $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
