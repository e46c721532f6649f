# weathergif: `make test` and `make demo` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

STAGE ?= dev

.PHONY: test demo serve bench importtime deploy destroy plan clean help

help:
	@echo "make demo        run the main job on this machine; results in demo-output/"
	@echo "make serve       REST API + event runtime + embedded AWS, until Ctrl-C"
	@echo "make test        create .venv if needed, install, run the tests"
	@echo "make bench       speed and memory figures against their baselines"
	@echo "make importtime  how long 'import app' takes (a Lambda cold start)"
	@echo "make deploy STAGE=dev   resources, recorded outputs, chalice deploy, post-deploy steps (AWS)"
	@echo "make destroy STAGE=dev  the reverse"

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check app.py chalicelib local deploy bench tests
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python -m local demo

serve: $(STAMP)
	$(BIN)/python -m local serve

bench: $(STAMP)
	$(BIN)/python bench/thumbnail_bench.py
	$(BIN)/python bench/gif_bench.py
	$(BIN)/python bench/importtime.py
	$(BIN)/python bench/runtime_bench.py

plan: $(STAMP)
	$(BIN)/python -m deploy plan $(STAGE)

deploy: $(STAMP)
	$(BIN)/python -m deploy deploy $(STAGE) $(if $(BUCKET_PREFIX),--bucket-prefix $(BUCKET_PREFIX))

destroy: $(STAMP)
	$(BIN)/python -m deploy destroy $(STAGE)

importtime: $(STAMP)
	$(BIN)/python bench/importtime.py

clean:
	rm -rf $(VENV) .pytest_cache test-output bench/out demo-output
