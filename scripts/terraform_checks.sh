#!/usr/bin/env bash
# Terraform checks of make test / CI: fmt, init + validate of the module and both roots, terraform test.
#
# Providers come from where scripts/terraform_config.sh says (a mirror named by TF_PROVIDER_MIRROR or
# found on this machine, else the public registry); under make it has run already.
set -uo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

module_dir="modules/replication_endpoint"
roots=(envs/cn-north-1 envs/us-east-1)

if ! command -v terraform >/dev/null 2>&1; then
  echo "terraform-checks: FAILED: terraform is not on PATH" >&2
  exit 1
fi

TF_CLI_CONFIG_FILE="$(bash scripts/terraform_config.sh)" || exit 2
export TF_CLI_CONFIG_FILE
export TF_IN_AUTOMATION=1 TF_INPUT=0

failures=()
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# step NAME COMMAND...: run quietly, print the output only when it fails.
step() {
  local name="$1"
  shift
  local started=$SECONDS
  if "$@" >"$log" 2>&1; then
    printf '  ok    %-48s %3ss\n' "$name" "$((SECONDS - started))"
  else
    printf '  FAIL  %-48s %3ss\n' "$name" "$((SECONDS - started))"
    sed 's/^/        /' "$log"
    failures+=("$name")
    return 1
  fi
}

echo "terraform $(terraform version | sed -n 1p | awk '{print $2}')"

step "fmt -check -recursive modules envs" terraform fmt -check -recursive -diff modules envs

for dir in "$module_dir" "${roots[@]}"; do
  if step "init $dir" terraform -chdir="$dir" init -backend=false -input=false -no-color; then
    step "validate $dir" terraform -chdir="$dir" validate -no-color
  elif grep -qE 'Failed to (query available provider packages|install provider)' "$log"; then
    echo "terraform-checks: $(bash scripts/terraform_config.sh --hint)" >&2
    exit 2 # the same for every folder: one line, once
  fi
done

# terraform test needs the module initialised (done above); its runs are plan-only with mock providers.
if [[ " ${failures[*]} " != *" init $module_dir "* ]]; then
  if step "test $module_dir" terraform -chdir="$module_dir" test -no-color; then
    grep -E '^Success!' "$log" | sed 's/^/        /'
  fi
fi

if ((${#failures[@]} > 0)); then
  echo "terraform-checks: FAILED (${#failures[@]}):"
  printf '  - %s\n' "${failures[@]}"
  exit 1
fi
echo "terraform-checks: all passed"
