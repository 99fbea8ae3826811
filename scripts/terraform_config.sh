#!/usr/bin/env bash
# Where Terraform gets its providers, decided in one place for the Makefile, .ci/run (through make),
# scripts/terraform_checks.sh and the local environment (replication_ops/local/terraform.py).
#
#   scripts/terraform_config.sh [OUT]   write the Terraform CLI configuration to use, print its path
#                                       on stdout and one line on stderr saying where providers come
#                                       from; OUT defaults to build/terraform.rc. Exit 2 with one line
#                                       on stderr when TF_PROVIDER_MIRROR is wrong.
#   scripts/terraform_config.sh --hint  print what to do when `terraform init` could not install the
#                                       providers (one line), for the same environment.
#
# In this order:
#   1. TF_PROVIDER_MIRROR: a filesystem mirror, the folder that holds registry.terraform.io/ (the
#      registry.terraform.io folder itself is taken to mean its parent); "registry" for the public
#      registry even where a mirror would be found.
#   2. TF_CLI_CONFIG_FILE naming a file that exists: the user's own configuration, used as it is (or
#      one this script wrote, under make: its decision stands).
#   3. A mirror found on this machine: a folder at most four levels below / holding
#      registry.terraform.io/hashicorp/aws/*/<os>_<arch> (plugin caches and .terraform folders are
#      not mirrors), so a machine without registry access needs nothing set.
#   4. The public registry (nothing to set with network access).
# OUT is written again every time, so it follows a changed TF_PROVIDER_MIRROR; it always sets a
# plugin cache beside it (OUT's folder/terraform-plugin-cache). Terraform's CLI configuration:
# https://developer.hashicorp.com/terraform/cli/config/config-file (provider_installation,
# filesystem_mirror, plugin_cache_dir).
set -uo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOST=registry.terraform.io
PROVIDER=hashicorp/aws
MARKER="# scripts/terraform_config.sh: "
SEARCH_ROOT="${TF_MIRROR_SEARCH_ROOT:-/}" # where mirrors are looked for (tests give a folder of their own)
# The roots' and the module's constraint (versions.tf), for the messages.
CONSTRAINT='>= 5.60, < 7'

platform() {
  local os arch
  os="$(uname -s | tr '[:upper:]' '[:lower:]')"
  case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) arch="$(uname -m)" ;;
  esac
  echo "${os}_${arch}"
}

# has_provider DIR: DIR holds the provider for this platform in either layout of a filesystem mirror
# (https://developer.hashicorp.com/terraform/cli/config/config-file#filesystem_mirror): unpacked,
# registry.terraform.io/hashicorp/aws/<version>/<platform>/, or packed, the zips that
# `terraform providers mirror DIR` writes, registry.terraform.io/hashicorp/aws/terraform-provider-aws_<version>_<platform>.zip.
has_provider() {
  compgen -G "$1/$HOST/$PROVIDER/*/$(platform)" >/dev/null ||
    compgen -G "$1/$HOST/$PROVIDER/terraform-provider-${PROVIDER#*/}_*_$(platform).zip" >/dev/null
}

find_mirror() {
  local found
  while IFS= read -r found; do
    if has_provider "$(dirname "$found")"; then
      dirname "$found"
      return 0
    fi
  done < <(find "$SEARCH_ROOT" -maxdepth 4 \( -path /proc -o -path /sys -o -path /dev -o -name .terraform \
    -o -name terraform-plugin-cache -o -name plugin-cache \) -prune -o \
    -type d -name "$HOST" -print 2>/dev/null | sort)
  return 1
}

# decide: sets SOURCE (mirror|registry|user) and MIRROR, NOTE; exits 2 on a wrong TF_PROVIDER_MIRROR.
decide() {
  local given="${TF_PROVIDER_MIRROR:-}"
  given="${given%/}"
  SOURCE="" MIRROR="" NOTE="" CONFIG=""
  if [[ "$given" == registry ]]; then
    SOURCE=registry NOTE="providers from the public registry (TF_PROVIDER_MIRROR=registry)"
    return 0
  fi
  if [[ -n "$given" ]]; then
    local how="TF_PROVIDER_MIRROR"
    if [[ "$(basename "$given")" == "$HOST" ]]; then
      given="$(dirname "$given")" how="TF_PROVIDER_MIRROR named its $HOST folder; taken as its parent"
    fi
    if [[ ! -d "$given" ]]; then
      echo "TF_PROVIDER_MIRROR=${TF_PROVIDER_MIRROR}: no such folder: set it to the folder that holds $HOST/ ($(suggestion)), or unset it" >&2
      exit 2
    fi
    if ! has_provider "$given"; then
      echo "TF_PROVIDER_MIRROR=${TF_PROVIDER_MIRROR} holds no $HOST/$PROVIDER/*/$(platform): set it to the folder that holds $HOST/ ($(suggestion)), or unset it" >&2
      exit 2
    fi
    SOURCE=mirror MIRROR="$(cd "$given" && pwd)"
    NOTE="providers from the mirror $MIRROR ($how)"
    return 0
  fi
  if [[ -n "${TF_CLI_CONFIG_FILE:-}" && -f "${TF_CLI_CONFIG_FILE}" ]]; then
    CONFIG="$TF_CLI_CONFIG_FILE"
    if [[ "$(head -n 1 "$CONFIG")" == "$MARKER"* ]]; then # one of ours (make wrote it): its decision
      NOTE="$(head -n 1 "$CONFIG")" NOTE="${NOTE#"$MARKER"}"
      MIRROR="$(sed -n 's/^ *path = "\(.*\)"$/\1/p' "$CONFIG")"
      SOURCE=registry
      [[ -n "$MIRROR" ]] && SOURCE=mirror
    else
      SOURCE=user NOTE="providers as TF_CLI_CONFIG_FILE=${TF_CLI_CONFIG_FILE} says"
    fi
    return 0
  fi
  if MIRROR="$(find_mirror)"; then
    SOURCE=mirror NOTE="providers from the mirror $MIRROR (found on this machine; TF_PROVIDER_MIRROR overrides)"
    return 0
  fi
  SOURCE=registry NOTE="providers from the public registry (no mirror found; TF_PROVIDER_MIRROR names one)"
}

suggestion() {
  local found
  if found="$(find_mirror)"; then
    echo "this machine has one: export TF_PROVIDER_MIRROR=$found"
  else
    echo "e.g. export TF_PROVIDER_MIRROR=/opt/tf-plugins"
  fi
}

if [[ "${1:-}" == --hint ]]; then
  decide
  case "$SOURCE" in
  mirror) echo "the provider mirror $MIRROR has no $PROVIDER matching $CONSTRAINT for $(platform): point TF_PROVIDER_MIRROR at a mirror that has it (\`terraform providers mirror DIR\` makes one where the registry is reachable)" ;;
  user) echo "Terraform could not install $PROVIDER ($CONSTRAINT) as TF_CLI_CONFIG_FILE=${TF_CLI_CONFIG_FILE} configures it: fix its provider_installation, or set TF_PROVIDER_MIRROR to a folder holding $HOST/$PROVIDER" ;;
  *)
    if [[ "${TF_PROVIDER_MIRROR:-}" == registry ]]; then
      echo "Terraform could not reach $HOST to install $PROVIDER ($CONSTRAINT), which TF_PROVIDER_MIRROR=registry asks for: set TF_PROVIDER_MIRROR to a folder holding $HOST/$PROVIDER, or allow access to the registry"
    else
      echo "Terraform could not reach $HOST to install $PROVIDER ($CONSTRAINT) and no provider mirror was found: set TF_PROVIDER_MIRROR to a folder holding $HOST/$PROVIDER (export TF_PROVIDER_MIRROR=/path/to/mirror), or allow access to the registry"
    fi
    ;;
  esac
  exit 0
fi

out="${1:-$repo_root/build/terraform.rc}"
decide
echo "terraform: $NOTE" >&2
if [[ -n "$CONFIG" ]]; then
  echo "$CONFIG"
  exit 0
fi
out_dir="$(dirname "$out")"
mkdir -p "$out_dir/terraform-plugin-cache"
out_dir="$(cd "$out_dir" && pwd)"
{
  echo "$MARKER$NOTE"
  if [[ "$SOURCE" == mirror ]]; then
    printf 'provider_installation {\n  filesystem_mirror {\n    path = "%s"\n  }\n}\n' "$MIRROR"
  fi
  printf 'plugin_cache_dir = "%s"\n' "$out_dir/terraform-plugin-cache"
} >"$out.tmp" && mv "$out.tmp" "$out"
echo "$out_dir/$(basename "$out")"
