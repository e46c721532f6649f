# weathergif: `make test` and `make demo` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test bench importtime clean help

help:
	@echo "make test        create .venv if needed, install, run the tests"
	@echo "make bench       speed and memory figures against their baselines"
	@echo "make importtime  how long 'import app' takes (a Lambda cold start)"

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/thumbnail_bench.py
	$(BIN)/python bench/gif_bench.py
	$(BIN)/python bench/importtime.py

importtime: $(STAMP)
	$(BIN)/python bench/importtime.py

clean:
	rm -rf $(VENV) .pytest_cache test-output bench/out
