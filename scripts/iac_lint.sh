#!/usr/bin/env bash
# Static analysis of the Terraform code (make lint): checkov, and tflint where it is installed.
#
# checkov lives in its own virtualenv, build/checkov-venv: its dependencies conflict with the
# project's pinned ones, so it must not go into .venv. Every skipped check is justified by a
# `#checkov:skip=CKV_...:reason` comment inside the resource it concerns.
set -uo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

CHECKOV_VERSION="${CHECKOV_VERSION:-3.3.30}"
PYTHON="${PYTHON:-python3}"
venv="build/checkov-venv"
status=0

# --- checkov ------------------------------------------------------------------------------------
if [[ ! -x "$venv/bin/checkov" ]] || [[ "$("$venv/bin/pip" show checkov 2>/dev/null | awk '/^Version:/{print $2}')" != "$CHECKOV_VERSION" ]]; then
  echo "iac-lint: installing checkov==$CHECKOV_VERSION into $venv"
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv" &&
    "$venv/bin/pip" install --quiet --upgrade pip &&
    "$venv/bin/pip" install --quiet "checkov==$CHECKOV_VERSION" || {
    echo "iac-lint: FAILED to install checkov==$CHECKOV_VERSION" >&2
    exit 1
  }
fi

echo "iac-lint: checkov $("$venv/bin/checkov" --version) over modules/ and envs/ (config .checkov.yaml)"
if "$venv/bin/checkov" --config-file .checkov.yaml; then
  echo "iac-lint: checkov passed"
else
  echo "iac-lint: checkov FAILED"
  status=1
fi

# --- tflint -------------------------------------------------------------------------------------
if command -v tflint >/dev/null 2>&1; then
  echo "iac-lint: tflint $(tflint --version | sed -n 1p) with .tflint.hcl"
  # --init fetches the aws ruleset plugin named in .tflint.hcl (once; it needs network).
  if tflint --init --config "$repo_root/.tflint.hcl" &&
    tflint --config "$repo_root/.tflint.hcl" --recursive --format compact; then
    echo "iac-lint: tflint passed"
  else
    echo "iac-lint: tflint FAILED"
    status=1
  fi
else
  echo "iac-lint: tflint is not installed: tflint checks SKIPPED (install tflint to run them with .tflint.hcl)"
fi

exit "$status"
