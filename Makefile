# One entry point for developers and CI. Every target creates the virtualenv it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

# Terraform's providers: scripts/terraform_config.sh decides where they come from (TF_PROVIDER_MIRROR,
# else TF_CLI_CONFIG_FILE if that file exists, else a provider mirror found on this machine, else the
# public registry), writes build/terraform.rc again on every run (so it follows a changed
# TF_PROVIDER_MIRROR) and prints one line saying which. Only for the targets that run Terraform.
TF_GOALS := test terraform-checks demo up chaos terraform-config
TF_CONFIG_OUT ?= $(CURDIR)/build/terraform.rc
ifeq ($(MAKELEVEL),0)
ifneq ($(filter $(TF_GOALS),$(MAKECMDGOALS)),)
# (make 4.3 gives $(shell) its own starting environment: a value given as `make demo VAR=...` is passed)
TF_CLI_CONFIG_FILE := $(shell TF_PROVIDER_MIRROR='$(TF_PROVIDER_MIRROR)' bash scripts/terraform_config.sh "$(TF_CONFIG_OUT)")
export TF_CLI_CONFIG_FILE
endif
endif

.PHONY: help venv test test-fast test-slow lint package bench demo up down chaos clean terraform-checks \
  terraform-config

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): requirements-dev.txt pyproject.toml functions/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "make: '$(PYTHON)' is not Python 3.11 or newer: install it, or name one with make PYTHON=python3.11 ..." >&2; \
	  exit 2; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements-dev.txt
	$(PIP) install --quiet --no-deps -e functions -e .
	@touch $@

venv: $(STAMP) ## create .venv with everything the tests need

# Fails, after the script's own line saying why, when TF_PROVIDER_MIRROR is wrong.
terraform-config:
	@test -n "$(TF_CLI_CONFIG_FILE)" && test -f "$(TF_CLI_CONFIG_FILE)" || exit 2

test: $(STAMP) terraform-config package ## unit, property, build, Terraform and end to end (under 15 min)
	$(VENV)/bin/pytest -n auto --dist loadscope
	$(MAKE) --no-print-directory terraform-checks

test-fast: $(STAMP) ## unit tests only (no Terraform, no end to end)
	$(VENV)/bin/pytest -m "not e2e"

test-slow: $(STAMP) terraform-config package ## the property tests with thousands of examples, every engine call interleaving, a compiled dependency per architecture, Terraform against the Roles Anywhere emulation, a reduced make chaos
	$(VENV)/bin/pytest --slow -m "not e2e" tests/engine tests/build/test_build_compiled.py \
	  tests/local/test_rolesanywhere_terraform.py
	$(VENV)/bin/pytest --slow tests/chaos/test_scenarios.py

terraform-checks: terraform-config ## terraform fmt, validate and test (providers: see terraform_config.sh)
	bash scripts/terraform_checks.sh

lint: $(STAMP) ## ruff, checkov, tflint (where installed)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	bash scripts/iac_lint.sh

package: $(STAMP) ## build dist/{x86_64,arm64}/{forwarder,replicator}.zip (reproducible; offline once cached)
	$(PY) scripts/build_lambdas.py

bench: $(STAMP) ## run the engine benchmarks, write build/bench.json and build/bench_admission.json
	$(PY) scripts/bench_engine.py
	$(PY) scripts/bench_cpu.py
	$(PY) scripts/bench_capacity.py
	$(PY) scripts/bench_admission.py

demo: $(STAMP) terraform-config package ## the local two-partition run: deploy, load both sides, verify, report
	$(PY) -m replication_ops.local demo

up: $(STAMP) terraform-config package ## start the local two-partition environment in the background
	$(PY) -m replication_ops.local up

chaos: $(STAMP) terraform-config package ## fault injection: every failure scenario under load, build/chaos/report.json
	$(PY) -m replication_ops.chaos run

down: $(STAMP) ## stop the local environment
	$(PY) -m replication_ops.local down

clean: ## stop the local environment if it runs, remove build outputs (keeps .venv)
	@# build/local/up.pid is how `make down` finds the environment: never remove it from under one.
	@if [ -e build/local/up.pid ] && [ -x $(PY) ]; then $(PY) -m replication_ops.local down; fi
	rm -rf build dist

# A target that does not exist (a typo): say so in one line. Files named as prerequisites exist.
.DEFAULT:
	@test -e "$@" || { echo "make: there is no target '$@': \`make help\` lists them" >&2; exit 2; }
