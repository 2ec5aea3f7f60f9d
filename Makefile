# Two commands on a fresh machine with Python 3.11+: `make demo` and `make test`.
# Both create (or refresh, when pyproject.toml changed) the virtualenv in .venv.

PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	&& echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv demo test lint check up down status clean

$(INSTALLED): pyproject.toml
	@test -n "$(PYTHON)" || { echo "pipeworks needs Python 3.11 or newer on PATH" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $(INSTALLED)

venv: $(INSTALLED)

demo: venv  ## the main job on the embedded stack, with live progress
	$(BIN)/pipeworks demo

test: lint  ## lint, type-check, then every test against real servers
	$(BIN)/pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

up: venv
	$(BIN)/pipeworks dev up

down: venv
	$(BIN)/pipeworks dev down

status: venv
	$(BIN)/pipeworks dev status

clean: down
	rm -rf .pipeworks .pytest_cache .mypy_cache .ruff_cache

# Benchmarks (benchmarks/README.md): `make bench`, or `make bench BENCH_ARGS=--quick`.
BENCH_ARGS ?=
.PHONY: bench
BENCH_INSTALLED := $(VENV)/.bench-installed
$(BENCH_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev,bench]"
	@touch $(BENCH_INSTALLED)

bench: $(BENCH_INSTALLED)  ## pipeworks vs three yardsticks (one is dlt) on the embedded stack; tables and JSON
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

.PHONY: bench-scale
bench-scale: venv  ## one run on one worker, then on two: activities per worker, speedup
	$(BIN)/python -m benchmarks.scale $(BENCH_ARGS)

.PHONY: bench-api
bench-api: venv  ## the API under load: 50 SSE clients + 20 list requests/s for 60 s on loopback
	$(BIN)/python -m benchmarks.api_load $(BENCH_ARGS)
