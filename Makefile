# trailguard: one gate, the same locally and in CI.
#   make demo   the main job on the embedded default (local end-to-end demo)
#   make test   lint, types, tests (incl. cdk-nag, cfn-lint, checkov)
#   make bench  benchmark suite -> docs/benchmarks.md

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
LAYER := build/lambda-layer

export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_DEPRECATED := quiet
export AWS_EC2_METADATA_DISABLED := true

.PHONY: runtime setup demo synth test lint typecheck collect-check pytest bench docs schema clean

CHECKOV_VENV := $(VENV)/tools-checkov

# What the app, the CLI and the demo need; `setup` adds the test-only tools (checkov).
runtime: $(VENV)/.stamp node_modules/.stamp $(LAYER)/.stamp

setup: runtime $(CHECKOV_VENV)/.stamp

# checkov pins boto3/botocore/packaging versions that conflict with ours: it gets its own venv.
$(CHECKOV_VENV)/.stamp: $(VENV)/.stamp
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check checkov==3.3.30
	touch $@

$(VENV)/.stamp: requirements.txt lambdas/requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "trailguard needs Python 3.11+"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Lambda runtime dependencies for python3.12 on arm64: pip fetches the manylinux aarch64 wheels (pure Python, or binary such as cryptography), so no Docker is needed.
$(LAYER)/.stamp: lambdas/requirements.txt $(VENV)/.stamp
	rm -rf $(LAYER) && mkdir -p $(LAYER)/python
	$(PY) -m pip install --quiet --disable-pip-version-check --target $(LAYER)/python \
	  --only-binary=:all: --platform manylinux2014_aarch64 --python-version 3.12 --implementation cp \
	  -r lambdas/requirements.txt
	touch $@

synth: runtime
	npx cdk synth --quiet
	@echo "templates: $$(pwd)/cdk.out/*.template.json"

demo: runtime
	$(VENV)/bin/trailguard demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

# Every xdist worker collects the suite and they must agree, so test ids may not depend on the run:
# collect twice (different hash seeds, different seconds) and fail on any difference.
collect-check: setup
	@mkdir -p build
	PYTHONHASHSEED=1 $(VENV)/bin/pytest --collect-only -q -p no:cacheprovider | grep '::' > build/collect-1.txt
	PYTHONHASHSEED=2 $(VENV)/bin/pytest --collect-only -q -p no:cacheprovider | grep '::' > build/collect-2.txt
	@diff -u build/collect-1.txt build/collect-2.txt \
	  || { echo "collect-check: two collections of the suite differ (see the diff above)"; exit 1; }
	@echo "collect-check: $$(wc -l < build/collect-1.txt) test ids, identical in two collections"

pytest: setup
	$(VENV)/bin/pytest -n 2 --dist loadgroup

test: lint typecheck collect-check pytest

bench: setup
	$(PY) -m bench

docs: setup
	$(VENV)/bin/trailguard docs
	$(VENV)/bin/trailguard validate-config --write-schema config/trailguard.schema.json

clean:
	rm -rf cdk.out build .pytest_cache .mypy_cache .ruff_cache
