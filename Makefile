# One entry point for developers and CI. Every target creates the virtualenv it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

# Offline Terraform: point TF_PROVIDER_MIRROR at a filesystem mirror (the folder that holds
# registry.terraform.io/) and every Terraform command here uses it. Unset: the public registry.
TF_PROVIDER_MIRROR ?=
ifneq ($(strip $(TF_PROVIDER_MIRROR)),)
export TF_CLI_CONFIG_FILE := $(CURDIR)/build/terraform.rc
endif
export TF_PROVIDER_MIRROR

.PHONY: help venv test test-fast test-slow lint package bench demo up down chaos clean terraform-checks

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): requirements-dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements-dev.txt
	$(PIP) install --quiet --no-deps -e .
	@touch $@

venv: $(STAMP) ## create .venv with everything the tests need

build/terraform.rc:
	@mkdir -p build/terraform-plugin-cache
	@printf 'provider_installation {\n  filesystem_mirror {\n    path = "%s"\n  }\n}\nplugin_cache_dir = "%s"\n' \
	  "$(TF_PROVIDER_MIRROR)" "$(CURDIR)/build/terraform-plugin-cache" > $@

TF_RC := $(if $(strip $(TF_PROVIDER_MIRROR)),build/terraform.rc,)

test: $(STAMP) $(TF_RC) package ## run every check CI runs (unit, property, Terraform, end to end)
	$(VENV)/bin/pytest
	$(MAKE) --no-print-directory terraform-checks

test-fast: $(STAMP) ## unit tests only (no Terraform, no end to end)
	$(VENV)/bin/pytest -m "not e2e"

test-slow: $(STAMP) package ## the property tests with thousands of examples, every engine call interleaving
	$(VENV)/bin/pytest --slow -m "not e2e" tests/engine

terraform-checks: $(TF_RC) ## terraform fmt, validate and test, offline when TF_PROVIDER_MIRROR is set
	bash scripts/terraform_checks.sh

lint: $(STAMP) $(TF_RC) ## ruff, checkov, tflint (where installed)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	bash scripts/iac_lint.sh

package: $(STAMP) ## build dist/forwarder.zip and dist/replicator.zip (reproducible)
	$(PY) scripts/build_lambdas.py

bench: $(STAMP) ## run the engine benchmark, write build/bench.json
	$(PY) scripts/bench_engine.py

demo: $(STAMP) $(TF_RC) package ## the local two-partition run: deploy, load both sides, verify, report
	$(PY) -m replication_ops.local demo

up: $(STAMP) $(TF_RC) package ## start the local two-partition environment in the background
	$(PY) -m replication_ops.local up

chaos: $(STAMP) $(TF_RC) package ## fault injection: every failure scenario under load, build/chaos/report.json
	$(PY) -m replication_ops.chaos run

down: $(STAMP) ## stop the local environment
	$(PY) -m replication_ops.local down

clean: ## remove build outputs (keeps .venv)
	rm -rf build dist
