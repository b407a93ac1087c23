# Set-up, demo, tests and benchmarks. Every target installs what it needs by itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ANVIL := tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
export WATCHER_ANVIL := $(abspath $(ANVIL))

.PHONY: setup demo test lint typecheck pytest bench bench-delivery clean

setup: $(STAMP) $(ANVIL)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

$(ANVIL): tools/package.json
	npm install --prefix tools --no-audit --no-fund --no-package-lock --loglevel=error
	test -x $(ANVIL)
	touch $(ANVIL)

demo: setup
	$(BIN)/watcher demo

test: setup lint typecheck pytest

lint: setup
	$(BIN)/ruff check watcher tests bench
	$(BIN)/ruff format --check watcher tests bench

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest

bench: setup
	$(BIN)/python bench/catchup.py

bench-delivery: setup
	$(BIN)/python bench/delivery.py

clean:
	rm -rf $(VENV) tools/node_modules .mypy_cache .ruff_cache .pytest_cache
