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
# echoes it. An already exported key wins. umask 077: whatever the pipeline
# writes is its OS user's only (docs/operations.md, "Storage permissions").
WITH_KEY = umask 077 && DBT_ENV_SECRET_PSEUDONYM_KEY="$${DBT_ENV_SECRET_PSEUDONYM_KEY:-$$(cat $(KEY_FILE))}"
# The password of the pipeline's Thrift server, the same way.
THRIFT_PASSWORD_FILE := .secrets/thrift.password
WITH_THRIFT_PASSWORD = DBT_ENV_SECRET_THRIFT_PASSWORD="$${DBT_ENV_SECRET_THRIFT_PASSWORD:-$$(cat $(THRIFT_PASSWORD_FILE))}"

DEMO_DATA := data/landing
DEMO_ARGS ?= --users 1000 --days 2 --seed 42


.PHONY: help setup check-java key thrift-password demo generate load build release docs matrix report test check unit lint ruff parse test-thrift build-changed check-dbt freshness bench clean lock cluster-start cluster-build cluster-stop

help: ## List the targets (this list)
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-zA-Z_-]+):.*## (.*)/\1\t\2/' \
		| awk -F '\t' '{ printf "  make %-14s %s\n", $$1, $$2 }'

setup: $(STAMP) ## Create .venv with the pinned dependencies

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

check-java: setup ## Check that Java 17+ is installed (says how to install it)
	@$(PY) scripts/check_java.py

# A random key, created once and reused so pseudonyms stay stable across runs.
key: $(KEY_FILE) ## Create a random pseudonymization key in .secrets/ (once)
$(KEY_FILE):
	@mkdir -p $(dir $(KEY_FILE)) && chmod 700 $(dir $(KEY_FILE))
	@umask 077 && $(PYTHON_BOOT) -c "import secrets; print(secrets.token_hex(32))" > $(KEY_FILE)
	@echo "created a random pseudonymization key in $(KEY_FILE) (gitignored; keep it safe)"

thrift-password: $(THRIFT_PASSWORD_FILE) ## Create the Thrift server's random password in .secrets/ (once)
$(THRIFT_PASSWORD_FILE):
	@mkdir -p $(dir $(THRIFT_PASSWORD_FILE)) && chmod 700 $(dir $(THRIFT_PASSWORD_FILE))
	@umask 077 && $(PYTHON_BOOT) -c "import secrets; print(secrets.token_urlsafe(32))" > $(THRIFT_PASSWORD_FILE)
	@echo "created the Thrift server's password in $(THRIFT_PASSWORD_FILE) (gitignored)"

generate: setup ## Generate the demo's landing files (DEMO_ARGS)
	$(PY) scripts/generate_data.py --out $(DEMO_DATA) $(DEMO_ARGS)

load: check-java ## Load the landing files into the raw zone
	$(PY) scripts/load_raw.py --input $(DEMO_DATA)

build: check-java key ## dbt build (the default `dev` selector: no DP release)
	@$(WITH_KEY) $(DBT) build

# A differentially private release spends privacy budget, so it is an
# explicit, audited act (REASON is recorded), never a side effect of a build.
# Its budget, domain and bounds are the DPO's: conf/differential_privacy.yml.
REASON ?=
release: check-java key ## Publish the DP release (spends epsilon; REASON="why")
	@test -n "$(REASON)" || { echo 'error: say why: make release REASON="monthly events report" (it is audited)'; exit 2; }
	@$(WITH_KEY) $(PY) scripts/release_dp.py --reason "$(REASON)"

docs: check-java key ## dbt docs generate (lineage and docs site)
	@$(WITH_KEY) $(DBT) docs generate

matrix: check-java ## Print the City Stress Matrix
	@$(PY) scripts/show_matrix.py

REPORT := reports/city_stress_dashboard.html

report: check-java ## Write the offline dashboard (reports/)
	@$(PY) scripts/build_report.py --out $(REPORT)

demo: REASON = make demo
demo: generate load build release docs matrix report ## Everything on generated data: load, build, release, docs, matrix, dashboard
	@echo
	@echo "Dashboard: $(REPORT) (one self-contained file: open it in a browser, works offline)"
	@echo "Lineage and docs: run 'make docs-serve' (or, with DBT_PROFILES_DIR=profiles, 'dbt docs serve') and open http://localhost:8080"

.PHONY: docs-serve
docs-serve: setup ## Serve the dbt docs site on http://localhost:8080
	$(DBT) docs serve --port 8080

# ---- tests ----------------------------------------------------------------
# `make test` is everything; `make check` and `make unit` are its fast subsets
# for the edit loop. docs/testing.md says what each runs and how long it takes.
PYTEST := $(PY) -m pytest -rs

test: check-java lint ruff ## Everything: sqlfluff, ruff, and every pytest test (one shared warehouse)
	$(PYTEST) --durations=25 tests/python

check: setup check-dbt lint ruff ## Fast, no Spark: dbt parse + project rules, sqlfluff, ruff, tests that need no Spark
	$(PYTEST) -q -m "not spark" tests/python

unit: check-java ## dbt unit tests and macro tests, on the smallest warehouse
	SANTEFLUX_TEST_SCOPE=unit $(PYTEST) -q -m unit tests/python

parse: setup ## dbt parse (no warehouse needed)
	@$(DBT) parse --quiet

# The dbt graph's rules (descriptions, primary-key tests, source freshness,
# staging reads only its own source), on the manifest of `make parse`.
check-dbt: parse ## Check the dbt graph's rules (no Spark)
	$(PY) scripts/check_dbt_project.py --manifest target/manifest.json

# How old each raw table's newest row is (`_loaded_at`): warns, never fails,
# on demo data. Needs no key: the key hooks skip `source freshness`.
freshness: check-java ## dbt source freshness of the raw tables
	$(DBT) source freshness

# The dbt templater compiles offline (var offline_compile): no Spark JVM.
# It points at a data dir that must still not exist afterwards: a compile
# that started Spark would have created a metastore there.
LINT_DATA_DIR := $(CURDIR)/.santeflux/lint-must-stay-empty
lint: setup ## sqlfluff on models and SQL tests (no warehouse needed)
	@rm -rf $(LINT_DATA_DIR)
	SANTEFLUX_DATA_DIR=$(LINT_DATA_DIR) $(PY) scripts/lint_sql.py lint models tests/marts tests/privacy
	@test ! -e $(LINT_DATA_DIR) || { echo "error: linting started Spark (it created $(LINT_DATA_DIR)); a model introspects the warehouse at compile time without checking var offline_compile"; exit 1; }

ruff: setup ## Python lint
	$(VENV)/bin/ruff check scripts tests

# Slim CI: build only what changed against main's manifest, plus everything
# downstream of it. STATE_REF picks another reference.
STATE_REF ?= main
STATE_DIR := .santeflux/state
build-changed: check-java key ## dbt build -s state:modified+ against the state of main
	@rm -rf $(STATE_DIR) && mkdir -p $(STATE_DIR)
	@git worktree add --detach -f $(STATE_DIR)/src $(STATE_REF) >/dev/null
	@$(DBT) parse --quiet --project-dir $(STATE_DIR)/src --target-path $(CURDIR)/$(STATE_DIR)/target \
		|| { git worktree remove --force $(STATE_DIR)/src; exit 1; }
	@git worktree remove --force $(STATE_DIR)/src
	@$(WITH_KEY) $(DBT) build -s state:modified+ --exclude tag:release --state $(STATE_DIR)/target

# The distributed path alone: a local standalone cluster + Thrift server on
# free ports, dbt build on the `thrift` target, result compared with the
# embedded build (tests/python/cluster/test_thrift.py). `make test` runs it too.
test-thrift: check-java ## The Thrift cluster test alone
	$(PYTEST) tests/python/cluster/test_thrift.py

# Not part of `make test`: minutes to an hour depending on sizes. Override
# with e.g. `make bench BENCH_ARGS="--sizes 1000000,5000000"`.
BENCH_ARGS ?=
bench: check-java ## Benchmark dbt vs notebook (raw zone, landing CSVs) vs UDF vs one query, and the 30-day incremental scenario (long; BENCH_ARGS)
	$(PY) scripts/benchmark.py $(BENCH_ARGS)

# ---- a local standalone cluster + Thrift server (README: Running on a cluster)
CLUSTER_DIR := $(CURDIR)/.santeflux/cluster
# Load first: the Thrift server then owns the Derby metastore.
cluster-start: check-java key thrift-password ## Start a local standalone cluster + Thrift server (password auth)
	SANTEFLUX_DATA_DIR=$(CLUSTER_DIR) $(PY) scripts/load_raw.py --input $(DEMO_DATA)
	@$(WITH_KEY) $(WITH_THRIFT_PASSWORD) $(PY) scripts/spark_cluster.py start --data-dir $(CLUSTER_DIR)

cluster-build: key thrift-password ## dbt build on the Thrift target
	@$(WITH_KEY) SANTEFLUX_TARGET=thrift $(WITH_THRIFT_PASSWORD) $(DBT) build

cluster-stop: setup ## Stop the local cluster
	$(PY) scripts/spark_cluster.py stop --data-dir $(CLUSTER_DIR)

clean: ## Remove generated data, warehouse and reports
	rm -rf target logs .santeflux data reports

lock: setup ## Regenerate constraints.txt from .venv
	$(PY) -m pip freeze --exclude-editable | sed '1i # Full lock of the resolved environment, generated by make lock.' > constraints.txt

# ---- the governed API (docs/api.md) ----------------------------------------
# The API process must never hold the pseudonymization key: `env -u` drops an
# exported one, and serve_api.py refuses to start if it still sees it.
SERVE_ARGS ?=
.PHONY: serve bench-api
serve: setup ## Start the governed read-only API on 127.0.0.1:8000 (no key, no Spark)
	env -u DBT_ENV_SECRET_PSEUDONYM_KEY $(PY) scripts/serve_api.py $(SERVE_ARGS)

# Bounded load test against the built marts (after `make demo`); not part of
# `make test`. E.g. `make bench-api BENCH_API_ARGS="--clients 50 --seconds 20"`.
BENCH_API_ARGS ?=
bench-api: setup ## Load-test the API: p50/p95 latency and errors (BENCH_API_ARGS)
	env -u DBT_ENV_SECRET_PSEUDONYM_KEY $(PY) scripts/bench_api.py $(BENCH_API_ARGS)
