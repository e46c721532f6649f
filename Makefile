# weathergif: `make test` and `make demo` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

STAGE ?= dev
PORT ?= 8000
SPEED ?= 1
AWS_PORT ?= 4567
TEST_WORKERS ?= 4

# Python keeps the bytecode it compiles (in __pycache__, ignored by git), also where the environment
# says not to: the tests' processes and subprocesses then compile each module once, not every run.
export PYTHONDONTWRITEBYTECODE :=

.PHONY: lock lock-upgrade test test-unit demo serve aws bench bench-scale importtime resources deploy bytecode post-deploy destroy plan package clean help

help:
	@echo "make demo        run the main job on this machine; results in demo-output/"
	@echo "make serve       REST API + event runtime + embedded AWS, until Ctrl-C (PORT=8000; SPEED=60: schedules 60 times faster)"
	@echo "make aws         embedded AWS + resources + event runtime for a 'chalice local' of your own (AWS_PORT=4567)"
	@echo "make lock        requirements.txt and requirements-dev.txt from the .in files (make lock-upgrade: newest)"
	@echo "make test        create .venv if needed, install, run every test (about 3 min on 2 cores)"
	@echo "make test-unit   the tests that need no network, server or subprocess (about 9 s)"
	@echo "make bench       speed and memory figures against their baselines"
	@echo "make bench-scale AWS calls of a tick over 100, 1,000 and 5,000 animations (about 4 min)"
	@echo "make importtime  how long 'import app' takes (a Lambda cold start)"
	@echo "make resources STAGE=dev  just the stack (buckets, table, queues, topics), its names and policies recorded"
	@echo "make deploy STAGE=dev     resources, the bundle's bytecode, chalice deploy, post-deploy, the public URL (AWS)"
	@echo "make bytecode STAGE=dev   the zips chalice deploy ships, each module with its .pyc (before a chalice deploy of your own)"
	@echo "make post-deploy STAGE=dev  what chalice deploy cannot set (after a chalice deploy of your own)"
	@echo "make package STAGE=dev    the Terraform bundle in build/terraform, with its bytecode"
	@echo "make destroy STAGE=dev    the reverse of deploy"

# The venv holds the lock and nothing else: every package pinned in requirements-dev.txt (which holds
# requirements.txt, the Lambda bundle's lock), none pulled in beside it.
$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-dev.txt
	$(BIN)/python -m pip check --disable-pip-version-check
	touch $(STAMP)

# The locks from requirements.in and requirements-dev.in, keeping every pin that still fits; after
# editing either .in file. lock-upgrade moves every package to its newest release that fits.
PIP_COMPILE = $(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links
lock: $(STAMP)
	$(PIP_COMPILE) $(LOCK_ARGS) --output-file requirements.txt requirements.in
	$(PIP_COMPILE) $(LOCK_ARGS) --allow-unsafe --output-file requirements-dev.txt requirements-dev.in

lock-upgrade:
	$(MAKE) lock LOCK_ARGS=--upgrade

test-unit: $(STAMP)
	TEST_EXAMPLES=0.2 $(BIN)/python -m pytest -q -m unit -p no:cacheprovider -n 2 $(PYTEST_ARGS)

test: $(STAMP)
	$(BIN)/ruff check app.py chalicelib local deploy bench tests
	$(BIN)/ruff format --check app.py chalicelib local deploy bench tests
	$(BIN)/mypy
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --maxschedchunk 1 $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python -m local demo

serve: $(STAMP)
	$(BIN)/python -m local serve --port $(PORT) --speed $(SPEED)

aws: $(STAMP)
	$(BIN)/python -m local aws --port $(AWS_PORT) --api-port $(PORT) --stage $(STAGE)

bench: $(STAMP)
	$(BIN)/python bench/thumbnail_bench.py
	$(BIN)/python bench/gif_bench.py
	$(BIN)/python bench/formats_bench.py
	$(BIN)/python bench/importtime.py
	$(BIN)/python bench/firstcall.py
	$(BIN)/python bench/runtime_bench.py

bench-scale: $(STAMP)
	$(BIN)/python bench/scale_bench.py

plan: $(STAMP)
	$(BIN)/python -m deploy plan $(STAGE)

resources: $(STAMP)
	$(BIN)/python -m deploy resources $(STAGE) $(if $(BUCKET_PREFIX),--bucket-prefix $(BUCKET_PREFIX))

deploy: $(STAMP)
	$(BIN)/python -m deploy deploy $(STAGE) $(if $(BUCKET_PREFIX),--bucket-prefix $(BUCKET_PREFIX))

bytecode: $(STAMP)
	$(BIN)/python -m deploy bytecode $(STAGE)

post-deploy: $(STAMP)
	$(BIN)/python -m deploy post-deploy $(STAGE)

package: $(STAMP)
	$(BIN)/python -m deploy package $(STAGE) --out build/terraform

destroy: $(STAMP)
	$(BIN)/python -m deploy destroy $(STAGE)

importtime: $(STAMP)
	$(BIN)/python bench/importtime.py

clean:
	rm -rf $(VENV) .pytest_cache test-output bench/out demo-output
