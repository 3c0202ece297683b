# dpc-elt front door. `make help` lists the targets; long recipes live in scripts/.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(VENV)/bin

# Local Airflow: metadata in .airflow/ (SQLite), this repo's dags/ and plugins/, no examples, no telemetry.
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False
export DO_NOT_TRACK := 1
export PYTHONPATH := $(CURDIR)/plugins
export DPC_DATA_DIR ?= $(CURDIR)/data
export DPC_DUCKDB_PATH ?= $(DPC_DATA_DIR)/warehouse/dpc.duckdb
# uv installs into ~/.local/bin (scripts/install.sh), which need not be on the caller's PATH.
export PATH := $(CURDIR)/$(BIN):$(PATH):$(HOME)/.local/bin

DEMO_MONTHS ?= 202503-202505
YYYYMM ?= 202504

.PHONY: help install lock manifest demo test lint fmt run-month backfill generate docs bench mwaa clean
.PHONY: services-deps services-up services-seed services-down backfill-services

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: ## Create .venv with the pinned stack (Python 3.11/3.12)
	@scripts/install.sh

lock: ## Re-pin requirements/local.txt from requirements/local.in (needs PyPI)
	uv pip compile -q --python-version 3.11 requirements/local.in -o requirements/local.txt

manifest: install ## Build include/dbt/target/manifest.json, which the DAG renders from
	@scripts/dbt_manifest.sh

generate: install ## Write synthetic DPC files for DEMO_MONTHS under data/raw
	$(BIN)/python -m dpc_elt.dev.synthetic --facilities 3 --months $(DEMO_MONTHS) --out $(DPC_DATA_DIR)/raw --seed 1

demo: install manifest ## From a fresh clone: generate data and run the whole DAG for each demo month
	@scripts/demo.sh $(DEMO_MONTHS)

run-month: install manifest ## Run dpc_elt for one month: make run-month YYYYMM=202504 [FACILITY_CD=131000123] [MANIFEST_WAIT_MINUTES=30]
	@scripts/run_month.sh $(YYYYMM)

backfill: install manifest ## Run dpc_elt for a range of months in order: make backfill FROM=202501 TO=202506 [FACILITY_CD=131000123]
	@scripts/run_month.sh $$(scripts/months.sh $(FROM) $(TO))

test: install manifest lint services-deps ## Install, lint and run the test suite
	@scripts/test.sh

services-deps: ## Debian packages for tests/topology, tests/compose and tests/ui (PostgreSQL server, docker-compose, chromium)
	@scripts/install_services.sh

services-up: install manifest services-deps ## Start PostgreSQL, S3 (moto) and Airflow's 4 components: UI :8080
	@scripts/services.sh up

services-seed: install ## Synthetic months into the services' bucket: make services-seed MONTHS=202401-202412
	@scripts/services.sh seed --months $(or $(MONTHS),202401-202412)

backfill-services: install ## One backfill run per month on running services: make backfill-services FROM=202401 TO=202412 [FACILITY_CD=…]
	@scripts/services.sh backfill $(FROM) $(TO)

services-down: ## Stop what services-up started
	@scripts/services.sh down

lint: install ## ruff (with Airflow AIR rules), ruff format --check, import layers (lint-imports); SQL parsing is in tests/sql
	$(BIN)/ruff check dags plugins tests bench
	$(BIN)/ruff format --check dags plugins tests bench
	$(BIN)/lint-imports --no-cache

fmt: install ## Format Python
	$(BIN)/ruff check --fix dags plugins tests bench
	$(BIN)/ruff format dags plugins tests bench

docs: install manifest ## dbt docs generate into include/dbt/target/index.html (columns filled in after make demo)
	mkdir -p $(dir $(DPC_DUCKDB_PATH))
	cd include/dbt && ../../$(BIN)/dbt docs generate --quiet --profiles-dir . --target duckdb
	@echo "==> dbt docs: include/dbt/target/index.html (serve: cd include/dbt && ../../$(BIN)/dbt docs serve --profiles-dir .)"

bench: install manifest services-deps ## Benchmark: a month per scale against the least work on all cores and a polars peer, small months through the scheduler: bench/results.{json,md}
	scripts/bench.sh

mwaa: install ## Build and check the MWAA artifacts in dist/mwaa: make mwaa ENV=mwaa/prod.env
	@scripts/build_mwaa.sh --env $(or $(ENV),mwaa/example.env)

clean: ## Remove generated data, local Airflow state and dbt artifacts
	rm -rf data .airflow include/dbt/target include/dbt/logs
