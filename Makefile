# Every target sets itself up: a fresh clone needs only python3 (3.11+), node/npm and make.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# Headless Chromium for the page tests (tests/e2e/browser.py); installed when missing (CI is root).
CHROMIUM := $(VENV)/.chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PORT ?= 3000
export AWS_ACCOUNT_ID_ENDPOINT_MODE := disabled
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup test test-fast test-deep lint dev synth deploy bench token watch rebuild audit fuzz unpark status schemas republish processes clean verify redrive snapshot archive ops-help chromium

help:
	@echo "make dev      run the whole synthesized template locally on moto (http://127.0.0.1:$(PORT))"
	@echo "make test     lint + every test suite (unit, contract, functional, infrastructure, e2e)"
	@echo "make synth    cdk synth (cdk-nag enforced) into cdk.out/"
	@echo "make bench    benchmarks -> bench/results.json"
	@echo "make token USER=alice GROUPS=staff   a token for the local runtime"
	@echo "make watch USER=alice  print alice's real-time updates (WebSocket) from make dev"
	@echo "make rebuild PROJECTION=order_view | make audit PROJECTION=order_view"
	@echo "make status | make redrive [PROJECTION=...] | make snapshot STREAM=order-...   (docs/ops.md)"
	@echo "make ops-help  every ops command: python -m cairn_tools <command> --help"
	@echo "make fuzz     schemathesis against the local /openapi.json"
	@echo "make verify   check every stream's hash chain and head (DIGEST=1: then write a digest)"
	@echo "make archive [OLDER_THAN_DAYS=0]  move old events to the S3 archive tier (docs/archive.md)"

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(NODE_STAMP): package.json
	npm install --no-audit --no-fund --silent
	touch $@

$(CHROMIUM): $(STAMP)
	command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }
	touch $@

setup: $(STAMP) $(NODE_STAMP)

# Headless Chromium for the page tests (Debian package), installed when missing.
chromium: $(CHROMIUM)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: setup $(CHROMIUM) lint
	$(PY) -m pytest -q -n 3

test-fast: $(STAMP)
	$(PY) -m pytest -q -n 3 -m "not slow" tests/unit tests/contract tests/functional

# Random, long property-test exploration (CI runs the derandomized profile); not part of make test.
test-deep: $(STAMP)
	HYPOTHESIS_PROFILE=deep $(PY) -m pytest -q tests/unit tests/reliability/test_stateful_accounts.py tests/reliability/test_stateful_orders.py

synth: setup
	npx cdk synth --quiet

deploy: setup
	npx cdk deploy --all --outputs-file cdk-outputs.json

dev: setup
	$(PY) -m local --port $(PORT)

bench: setup
	$(PY) -m bench

.PHONY: bench-scale
bench-scale: setup
	$(PY) -m bench stream_length hot_stream scale_model

token: $(STAMP)
	@$(PY) -m local.token --user "$(or $(USER),alice)" --groups "$(GROUPS)"

# Real-time updates of a user's streams from the running `make dev` (WebSocket; docs/realtime.md).
watch: $(STAMP)
	@$(PY) -m local.watch --user "$(or $(USER),alice)" --groups "$(GROUPS)" $(if $(STREAM),--subscribe $(STREAM))

rebuild: $(STAMP)
	$(PY) -m cairn_tools rebuild $(PROJECTION) $(ARGS)

audit: $(STAMP)
	$(PY) -m cairn_tools audit $(PROJECTION) $(ARGS)

# The log proves itself: every stream's chain, contiguity and head against checkpoints, snapshots and
# the latest digest; exit 1 when anything is broken. DIGEST=1 writes a new digest when intact.
verify: $(STAMP)
	$(PY) -m cairn_tools.verify $(if $(DIGEST),--digest) $(ARGS)

status: $(STAMP)
	$(PY) -m cairn_tools status $(PROJECTION) $(ARGS)

unpark: $(STAMP)
	$(PY) -m cairn_tools unpark $(PROJECTION) $(STREAM) $(ARGS)

# Redrive retry-exhausted batches from the consumers' on-failure queues (all, or PROJECTION=...).
redrive: $(STAMP)
	$(PY) -m cairn_tools redrive $(PROJECTION) $(ARGS)

# Move old events to the S3 archive tier now (docs/archive.md): OLDER_THAN_DAYS=0 archives
# everything a verified snapshot covers (past the 45-second settle time).
archive: $(STAMP)
	$(PY) -m cairn_tools archive $(if $(OLDER_THAN_DAYS),--older-than-days $(OLDER_THAN_DAYS)) $(ARGS)

snapshot: $(STAMP)
	@test -n "$(STREAM)$(ARGS)" || { echo "usage: make snapshot STREAM=order-... (or ARGS=--grown)" >&2; exit 2; }
	$(PY) -m cairn_tools snapshot $(STREAM) $(ARGS)

ops-help: $(STAMP)
	@$(PY) -m cairn_tools --help

fuzz: setup
	$(PY) -m local.fuzz

schemas: $(STAMP)
	PYTHONPATH=layers/cairn/python:functions $(PY) -m cairn_platform.event_schemas
	PYTHONPATH=layers/cairn/python:functions $(PY) -m integration --write --docs

processes: $(STAMP)
	$(PY) -m cairn_tools.processes $(ARGS)

republish: $(STAMP)
	PYTHONPATH=layers/cairn/python:functions $(PY) -m cairn_platform.publisher $(STREAM)

clean:
	rm -rf $(VENV) node_modules cdk.out .local
