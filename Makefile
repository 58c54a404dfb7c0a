# FundTrail: every target installs what it needs first, so a fresh clone needs only
# `make demo` or `make test`.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
NETWORK ?= ethereum:local:test

# py-solc-x, and so ape-solidity, find compilers as executables named solc-v<version> in
# this folder. Ours is a launcher for the project's solc-js wrapper.
export SOLCX_BINARY_PATH := $(CURDIR)/.solcx
# ape-foundry looks for `anvil` on PATH; the npm package ships the real binary.
export PATH := $(CURDIR)/node_modules/@foundry-rs/anvil-linux-amd64/bin:$(CURDIR)/$(BIN):$(PATH)

# Tests must never reach the network: a hidden download fails at once on this dead proxy
# instead of hanging, while calls to local chains still work.
OFFLINE := HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost

SOLC := .solcx/solc-v0.8.30
# slither-analyzer has a virtual environment of its own. It installs solc-select, whose `solc`
# command tries to download compilers, and .venv/bin, where it would land, is on PATH below.
SLITHER_VENV := .venv-slither
SLITHER_BUILD := .build/slither
STAMP_PY := $(VENV)/.installed
STAMP_NPM := node_modules/.installed
STAMP_BUILD := .build/.compiled
STAMP_SLITHER := $(SLITHER_VENV)/.installed
CONTRACT_SOURCES := $(shell find contracts -name '*.sol' -not -path '*/.cache/*')

.PHONY: setup compile demo demo-offline slither test fuzz gas gas-check anvil clean bench-index

setup: $(STAMP_PY) $(STAMP_NPM) $(SOLC) $(STAMP_BUILD)

$(STAMP_PY): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(STAMP_NPM): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(SOLC): toolchain/solc.js $(STAMP_NPM)
	mkdir -p .solcx
	printf '#!/bin/sh\nexec node "%s/toolchain/solc.js" "$$@"\n' "$(CURDIR)" > $@
	chmod +x $@

$(STAMP_BUILD): $(STAMP_PY) $(STAMP_NPM) $(SOLC) $(CONTRACT_SOURCES) ape-config.yaml
	$(OFFLINE) $(BIN)/ape compile
	touch $@

compile: $(STAMP_BUILD)

demo: compile
	$(OFFLINE) $(BIN)/ape run demo --network $(NETWORK)

# The same demo, with milestone 1 signed offline into files that a keeper relays.
demo-offline: compile
	rm -rf .fundtrail/demo-offline
	$(OFFLINE) $(BIN)/ape run demo --network $(NETWORK) --offline .fundtrail/demo-offline

$(STAMP_SLITHER): requirements-slither.lock
	test -x $(SLITHER_VENV)/bin/python || $(PYTHON) -m venv $(SLITHER_VENV)
	$(SLITHER_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SLITHER_VENV)/bin/python -m pip install --quiet -r requirements-slither.lock
	touch $@

# The same compile as `ape compile` (settings from ape-config.yaml, solc-js through
# toolchain/solc.js), written as a Hardhat build-info file, the format slither reads.
$(SLITHER_BUILD)/build-info/fundtrail.json: $(STAMP_PY) $(STAMP_NPM) $(CONTRACT_SOURCES) ape-config.yaml \
		toolchain/build_info.py toolchain/solc.js
	$(OFFLINE) $(BIN)/python toolchain/build_info.py --out $(SLITHER_BUILD) --name fundtrail

# Static analysis of contracts/*.sol and contracts/interfaces/, without the mocks in
# contracts/test/ and without OpenZeppelin. Fails on a High or Medium finding that no
# `// slither-disable-next-line` comment accepts, and on such a comment that silences nothing.
slither: $(STAMP_SLITHER) $(SLITHER_BUILD)/build-info/fundtrail.json
	$(OFFLINE) $(SLITHER_VENV)/bin/python toolchain/slither_gate.py --artifacts $(SLITHER_BUILD) \
		--report $(SLITHER_BUILD)/report.json --expect-contract MilestoneEscrow --expect-contract DonationRegistry

# The anvil the contract tests start, or connect to if one already listens there. The tests
# set it themselves instead of taking APE_FOUNDRY_HOST from the shell: after
# docs/local-chains.md, that variable points at the persistent anvil, and the tests would write
# their transactions into that chain. Set TEST_ANVIL_HOST to another port when something else
# already uses 8545.
TEST_ANVIL_HOST ?= http://127.0.0.1:8545

# Static analysis first, then the whole suite on ape's in-process chain, then the contract tests
# on anvil, then the tests that start chain processes of their own: the ganache smoke test and
# the keeper's end-to-end tests, which kill and restart anvil and the keeper. Last, the gas check.
test: compile slither
	$(OFFLINE) $(BIN)/ape test tests -m "not ganache and not anvil" -p no:cacheprovider
	$(OFFLINE) APE_FOUNDRY_HOST=$(TEST_ANVIL_HOST) $(BIN)/ape test tests/contracts -m "not ganache and not anvil" -p no:cacheprovider --network ethereum:local:foundry
	$(OFFLINE) $(BIN)/ape test tests -m "ganache or anvil" -p no:cacheprovider
	$(OFFLINE) $(BIN)/python -m benchmarks check --port $(GAS_ANVIL_PORT)

# The gas benchmark starts a fresh anvil of its own on this port and refuses to run when
# something already listens there. See docs/gas.md.
GAS_ANVIL_PORT ?= 8547

# Measures every operation and rewrites benchmarks/gas-snapshot.json and docs/gas.md.
gas: compile
	$(OFFLINE) $(BIN)/python -m benchmarks gas --port $(GAS_ANVIL_PORT)

# Measures again and fails when an operation grew by more than 2 % over the snapshot, or when
# the operations differ from the snapshot's.
gas-check: compile
	$(OFFLINE) $(BIN)/python -m benchmarks check --port $(GAS_ANVIL_PORT)

# The stateful property test of the escrow and registry with its deep profile: 500 examples of
# up to 50 steps on an anvil it starts on FUZZ_ANVIL_PORT. The seed is drawn and printed unless
# FUZZ_SEED is set; failing examples are saved in tests/contracts/state-machine-examples/, which
# `make test` replays first.
FUZZ_ANVIL_PORT ?= 8710
FUZZ_SEED ?=
fuzz: compile
	$(OFFLINE) FUNDTRAIL_FUZZ_PROFILE=deep FUNDTRAIL_FUZZ_SEED=$(FUZZ_SEED) \
		FUNDTRAIL_FUZZ_ANVIL_PORT=$(FUZZ_ANVIL_PORT) \
		$(BIN)/ape test tests/contracts/test_escrow_state_machine.py::test_escrow_state_machine -m anvil \
		-p no:cacheprovider -s

clean:
	rm -rf .build contracts/.cache .solcx

# A long-lived anvil for separate CLI commands, with its chain kept in .fundtrail/ between runs.
# With APE_FOUNDRY_HOST=http://127.0.0.1:$(ANVIL_PORT), `--network ethereum:local:foundry`
# connects to it instead of starting a throwaway anvil. It avoids 8545, TEST_ANVIL_HOST's
# default, so tests never write into this chain.
ANVIL_STATE ?= .fundtrail/anvil-state.json
ANVIL_PORT ?= 8546
anvil: setup
	mkdir -p $(dir $(ANVIL_STATE))
	anvil --host 127.0.0.1 --port $(ANVIL_PORT) --hardfork shanghai \
		--state $(ANVIL_STATE) --state-interval 5 --preserve-historical-states

# The indexing benchmark (docs/benchmarks.md), never part of `make test`. It starts its own anvil
# on BENCH_ANVIL_PORT, generates a chain of at least 12,000 events the first time (a few
# minutes), saves it in .fundtrail/bench/ and reloads it on later runs. Pass more options in
# BENCH_ARGS, such as BENCH_ARGS="--repeat 9" or BENCH_ARGS="--regenerate".
BENCH_ANVIL_PORT ?= 8760
BENCH_ARGS ?=
bench-index: compile
	$(OFFLINE) $(BIN)/python benchmarks/index_benchmark.py --port $(BENCH_ANVIL_PORT) $(BENCH_ARGS)
