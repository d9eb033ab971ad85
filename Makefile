# Every target sets itself up: a fresh clone needs only python3 (3.11+), node/npm and make.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
PORT ?= 3000
export AWS_ACCOUNT_ID_ENDPOINT_MODE := disabled
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup test test-fast test-deep lint dev synth deploy bench token rebuild audit fuzz unpark status schemas republish processes clean

help:
	@echo "make dev      run the whole synthesized template locally on moto (http://127.0.0.1:$(PORT))"
	@echo "make test     lint + every test suite (unit, contract, functional, infrastructure, e2e)"
	@echo "make synth    cdk synth (cdk-nag enforced) into cdk.out/"
	@echo "make bench    benchmarks -> bench/results.json"
	@echo "make token USER=alice GROUPS=staff   a token for the local runtime"
	@echo "make rebuild PROJECTION=order_view | make audit PROJECTION=order_view"
	@echo "make fuzz     schemathesis against the local /openapi.json"

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(NODE_STAMP): package.json
	npm install --no-audit --no-fund --silent
	touch $@

setup: $(STAMP) $(NODE_STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: setup lint
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not e2e"

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

token: $(STAMP)
	@$(PY) -m local.token --user "$(or $(USER),alice)" --groups "$(GROUPS)"

rebuild: $(STAMP)
	$(PY) -m cairn_tools.rebuild $(PROJECTION) $(ARGS)

audit: $(STAMP)
	$(PY) -m cairn_tools.audit $(PROJECTION) $(ARGS)

status: $(STAMP)
	$(PY) -m cairn_tools.status $(PROJECTION)

unpark: $(STAMP)
	$(PY) -m cairn_tools.unpark $(PROJECTION) $(STREAM)

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
