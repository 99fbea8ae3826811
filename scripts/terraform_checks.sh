#!/usr/bin/env bash
# Terraform checks of make test / CI: fmt, init + validate of the module and both roots, terraform test.
#
# Offline: with TF_PROVIDER_MIRROR set (a filesystem mirror holding registry.terraform.io/...), init
# installs providers from that mirror only. `make` writes build/terraform.rc and exports
# TF_CLI_CONFIG_FILE; run directly, this script writes the same file itself. Without
# TF_PROVIDER_MIRROR, Terraform uses its usual configuration (the public registry).
set -uo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

module_dir="modules/replication_endpoint"
roots=(envs/cn-north-1 envs/us-east-1)

if ! command -v terraform >/dev/null 2>&1; then
  echo "terraform-checks: FAILED: terraform is not on PATH" >&2
  exit 1
fi

if [[ -n "${TF_PROVIDER_MIRROR:-}" ]]; then
  rc="$repo_root/build/terraform.rc"
  if [[ "${TF_CLI_CONFIG_FILE:-}" != "$rc" || ! -f "$rc" ]]; then
    mkdir -p "$repo_root/build/terraform-plugin-cache"
    printf 'provider_installation {\n  filesystem_mirror {\n    path = "%s"\n  }\n}\nplugin_cache_dir = "%s"\n' \
      "$TF_PROVIDER_MIRROR" "$repo_root/build/terraform-plugin-cache" >"$rc"
    export TF_CLI_CONFIG_FILE="$rc"
  fi
  echo "terraform-checks: providers from the mirror $TF_PROVIDER_MIRROR"
else
  echo "terraform-checks: providers from the registry (set TF_PROVIDER_MIRROR to use a local mirror)"
fi
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

echo "terraform $(terraform version | head -n1 | awk '{print $2}')"

step "fmt -check -recursive modules envs" terraform fmt -check -recursive -diff modules envs

for dir in "$module_dir" "${roots[@]}"; do
  if step "init $dir" terraform -chdir="$dir" init -backend=false -input=false -no-color; then
    step "validate $dir" terraform -chdir="$dir" validate -no-color
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
