# SantéFlux: `make demo` builds everything on generated data; `make test` runs
# the whole test suite. See README.md.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON_BOOT ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DBT := $(VENV)/bin/dbt
STAMP := $(VENV)/.installed

# dbt commands work from the repo root with these (README: "Manual use").
export DBT_PROFILES_DIR := $(CURDIR)/profiles
export SANTEFLUX_HOME := $(CURDIR)
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
# Recorded in raw.privacy_audit_log by the on-run-end hook.
export SANTEFLUX_GIT_COMMIT := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)

KEY_FILE := .secrets/pseudonym.key
# The key is read from the file inside the recipe's shell, so make never
# echoes it. An already exported key wins.
WITH_KEY = DBT_ENV_SECRET_PSEUDONYM_KEY="$${DBT_ENV_SECRET_PSEUDONYM_KEY:-$$(cat $(KEY_FILE))}"

DEMO_DATA := data/landing
DEMO_ARGS ?= --users 250 --days 7 --seed 42

TEST_DIR := .santeflux/test
TEST_ENV = SANTEFLUX_DATA_DIR=$(CURDIR)/$(TEST_DIR)/data DBT_TARGET_PATH=$(CURDIR)/$(TEST_DIR)/target DBT_LOG_PATH=$(CURDIR)/$(TEST_DIR)/logs

.PHONY: help setup check-java key demo generate load build docs matrix report test test-build test-thrift lint pytest bench clean lock cluster-start cluster-build cluster-stop

help:
	@echo "make demo   generate data, load raw, dbt build + docs, print the City Stress Matrix"
	@echo "make test   sqlfluff + dbt build/test on small data + pytest"
	@echo "make setup  create .venv with the pinned dependencies"
	@echo "make report write reports/city_stress_dashboard.html (offline dashboard)"

setup: $(STAMP)

$(STAMP): requirements.txt constraints.txt pyproject.toml
	@command -v $(PYTHON_BOOT) >/dev/null || { echo "error: $(PYTHON_BOOT) not found: install Python 3.11+"; exit 1; }
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt
	@# The sflux package (scripts/sflux), editable: scripts and tests import
	@# it with no path tricks. Its dependencies are the pinned ones above, and
	@# the setuptools just installed builds it (no isolated build download).
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@# PySpark 4 logs every SQL error as a multi-kilobyte JSON stack trace on
	@# top of raising it; dbt already reports the error, so mute those two
	@# loggers in every process of this venv (dbt included).
	@echo "import logging; logging.getLogger('SQLQueryContextLogger').disabled = True; logging.getLogger('DataFrameQueryContextLogger').disabled = True" \
		> "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/santeflux_quiet_pyspark.pth"
	@touch $(STAMP)

check-java: setup
	@$(PY) scripts/check_java.py

# A random key, created once and reused so pseudonyms stay stable across runs.
key: $(KEY_FILE)
$(KEY_FILE):
	@mkdir -p $(dir $(KEY_FILE)) && chmod 700 $(dir $(KEY_FILE))
	@umask 077 && $(PYTHON_BOOT) -c "import secrets; print(secrets.token_hex(32))" > $(KEY_FILE)
	@echo "created a random pseudonymization key in $(KEY_FILE) (gitignored; keep it safe)"

generate: setup
	$(PY) scripts/generate_data.py --out $(DEMO_DATA) $(DEMO_ARGS)

load: check-java
	$(PY) scripts/load_raw.py --input $(DEMO_DATA)

build: check-java key
	@$(WITH_KEY) $(DBT) build

docs: check-java key
	@$(WITH_KEY) $(DBT) docs generate

matrix: check-java
	@$(PY) scripts/show_matrix.py

REPORT := reports/city_stress_dashboard.html

report: check-java
	@$(PY) scripts/build_report.py --out $(REPORT)

demo: generate load build docs matrix report
	@echo
	@echo "Dashboard: $(REPORT) (one self-contained file: open it in a browser, works offline)"
	@echo "Lineage and docs: run 'make docs-serve' (or, with DBT_PROFILES_DIR=profiles, 'dbt docs serve') and open http://localhost:8080"

.PHONY: docs-serve
docs-serve: setup
	$(DBT) docs serve --port 8080

# ---- tests ---------------------------------------------------------------
# Each step is its own process: the embedded Derby metastore admits one JVM.
test: check-java
	@rm -rf $(TEST_DIR)
	@$(MAKE) --no-print-directory test-build lint pytest

# The user's path, through the real CLIs, on small data with a throwaway key.
test-build:
	$(PY) scripts/generate_data.py --out $(TEST_DIR)/landing --users 40 --days 2 --seed 7 --quiet
	$(TEST_ENV) $(PY) scripts/load_raw.py --input $(TEST_DIR)/landing
	@$(TEST_ENV) DBT_ENV_SECRET_PSEUDONYM_KEY="$$($(PY) -c 'import secrets; print(secrets.token_hex(32))')" $(DBT) build
	# Fails if a raw column holds detected PII and declares no policy.
	$(TEST_ENV) $(PY) scripts/detect_pii.py --json $(TEST_DIR)/pii_findings.json

# Runs after test-build: the dbt templater compiles against its warehouse.
lint:
	$(TEST_ENV) $(VENV)/bin/sqlfluff lint models tests/marts tests/privacy

# -rs prints skip reasons (e.g. no Chromium for the browser test).
pytest:
	$(PY) -m pytest -rs tests/python

# The distributed path alone: a local standalone cluster + Thrift server on
# free ports, dbt build on the `thrift` target, result compared with the
# embedded build (tests/python/cluster/test_thrift.py). `make test` runs it too, inside
# `pytest`; SANTEFLUX_SKIP_THRIFT=1 skips it.
test-thrift: check-java
	$(PY) -m pytest -rs tests/python/cluster/test_thrift.py

# Not part of `make test`: minutes to an hour depending on sizes. Override
# with e.g. `make bench BENCH_ARGS="--sizes 1000000,5000000"`.
BENCH_ARGS ?=
bench: check-java
	$(PY) scripts/benchmark.py $(BENCH_ARGS)

# ---- a local standalone cluster + Thrift server (README: Running on a cluster)
CLUSTER_DIR := $(CURDIR)/.santeflux/cluster
# Load first: the Thrift server then owns the Derby metastore.
cluster-start: check-java key
	SANTEFLUX_DATA_DIR=$(CLUSTER_DIR) $(PY) scripts/load_raw.py --input $(DEMO_DATA)
	@$(WITH_KEY) $(PY) scripts/spark_cluster.py start --data-dir $(CLUSTER_DIR)

cluster-build: key
	@SANTEFLUX_TARGET=thrift $(WITH_KEY) $(DBT) build

cluster-stop: setup
	$(PY) scripts/spark_cluster.py stop --data-dir $(CLUSTER_DIR)

clean:
	rm -rf target logs .santeflux data reports

lock: setup
	$(PY) -m pip freeze --exclude-editable | sed '1i # Full lock of the resolved environment, generated by make lock.' > constraints.txt
