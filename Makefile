# The two commands of the quick start: `make run` and `make test`.
# Everything the tests need is installed here, so a fresh machine needs nothing else.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HASH := $(shell sha256sum pyproject.toml | cut -c1-12)
RUN_STAMP := $(VENV)/.installed-run-$(HASH)
TEST_STAMP := $(VENV)/.installed-test-$(HASH)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: run test install lint tracker system-deps bench clean docs

run: $(RUN_STAMP)
	$(BIN)/traceglider serve

# `make run` needs only the package; `make test` adds the test tools (pyspark, moto, ...).
install: $(TEST_STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(RUN_STAMP)

# Debian packages the tests use: Chromium for the browser tests, Java for the Spark DDL test,
# wrk for the test of the ingest benchmark's load script.
SYSTEM_PACKAGES := $(if $(wildcard /usr/bin/chromium),,chromium) $(if $(shell command -v java),,openjdk-17-jre-headless) $(if $(wildcard /usr/bin/wrk),,wrk)

system-deps:
	@test -z "$(strip $(SYSTEM_PACKAGES))" || { \
	  echo "installing Debian packages for the tests: $(SYSTEM_PACKAGES)"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; }

tracker/node_modules/.package-lock.json: tracker/package-lock.json
	npm ci --prefix tracker --no-audit --no-fund --loglevel=error

tracker: tracker/node_modules/.package-lock.json
	npm run --prefix tracker build

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

NODE_DEPS := $(if $(wildcard tracker/package-lock.json),tracker/node_modules/.package-lock.json)

test: install system-deps $(NODE_DEPS) lint
	@test ! -f traceglider/static/t.min.js || echo "tracker size: $$(wc -c < traceglider/static/t.min.js) bytes minified, $$(gzip -9 -c traceglider/static/t.min.js | wc -c) bytes gzip -9 (budget 3000)"
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) tracker/node_modules .pytest_cache .mypy_cache .ruff_cache tg-data

docs: install
	$(BIN)/python -m traceglider.config
