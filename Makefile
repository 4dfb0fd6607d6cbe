# The two commands of the README:
#   make run   - set up .venv and serve on the embedded PostgreSQL (no server, no secrets)
#   make test  - set up .venv (+ dev JS tools, Debian chromium) and run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test setup node browser bench-ingest bench-retention clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(STAMP)

node: node_modules/.package-lock.json

# Debian's Chromium for the browser tests (no-op when /usr/bin/chromium exists)
browser:
	scripts/install-browser

run: setup
	$(BIN)/signals serve

test: setup node browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench-ingest: setup   # needs `wrk` (apt-get install wrk); about 1.5 minutes
	$(BIN)/python bench/ingest.py $(BENCH_ARGS)

bench-retention: setup
	$(BIN)/python bench/retention.py

clean:
	rm -rf $(VENV) node_modules .data
