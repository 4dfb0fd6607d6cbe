# The README's commands:
#   make run    - set up .venv (runtime dependencies only) and serve on the embedded PostgreSQL
#   make test   - set up .venv (+ test and dev tools, JS tools, clients/react's npm packages, Debian chromium and nginx) and run the whole suite
#   make check  - the quality gate: ruff format --check, ruff check, mypy (strict on app/ and jobs/)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test check setup node react browser nginx bench-ingest bench-retention clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e '.[test,dev]'
	touch $@ $(RUN_STAMP)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# @signals/react's own npm dependencies (tsc, vitest, jsdom, vite, React, Apollo Client)
clients/react/node_modules/.package-lock.json: clients/react/package.json clients/react/package-lock.json
	cd clients/react && npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(DEV_STAMP)

node: node_modules/.package-lock.json

react: clients/react/node_modules/.package-lock.json

# Debian's Chromium for the browser tests (no-op when /usr/bin/chromium exists)
browser:
	scripts/install-browser

# Debian's nginx for the replicas test (no-op when nginx is installed)
nginx:
	scripts/install-nginx

run: $(RUN_STAMP)
	$(BIN)/signals serve

check: $(DEV_STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

test: $(DEV_STAMP) node react browser nginx
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench-ingest: $(DEV_STAMP)   # needs `wrk` (apt-get install wrk); about 4 minutes, plus about 10 to fill its 10-million-row table (BENCH_ARGS="--data-dir DIR" keeps it)
	$(BIN)/python bench/ingest.py $(BENCH_ARGS)

bench-retention: $(DEV_STAMP)
	$(BIN)/python bench/retention.py

clean:
	rm -rf $(VENV) node_modules .data clients/react/node_modules clients/react/dist
