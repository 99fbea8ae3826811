"""The Makefile's own errors (a mistyped target, Python too old, a wrong provider mirror) are one line
naming the fix, exit 2; build/terraform.rc follows TF_PROVIDER_MIRROR every run."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _make(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    return subprocess.run(
        ["make", "--no-print-directory", *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**environment, **(env or {})},
        check=False,
    )


def _mirror(root: Path) -> Path:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    (root / "registry.terraform.io/hashicorp/aws/5.100.0" / f"linux_{arch}").mkdir(parents=True)
    return root


def test_a_mistyped_target_says_make_help() -> None:
    done = _make("dmeo")
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == "make: there is no target 'dmeo': `make help` lists them"


def test_clean_stops_a_running_local_environment_before_it_removes_build() -> None:
    """`make down` finds the environment by build/local/up.pid: a `make clean` that removed it first
    would leave the servers running, unreachable by `make down` (found by a fresh user)."""
    recipe = _make("-n", "clean").stdout
    assert "build/local/up.pid" in recipe and "-m replication_ops.local down" in recipe
    assert recipe.index("-m replication_ops.local down") < recipe.index("rm -rf build dist")


def test_a_python_older_than_3_11_is_refused_before_the_venv(tmp_path: Path) -> None:
    old = tmp_path / "python3.9"
    old.write_text("#!/bin/sh\nexec python3 -c 'import sys; sys.exit(1)'\n")
    old.chmod(0o755)
    done = _make("venv", f"PYTHON={old}", f"VENV={tmp_path / 'venv'}")
    assert done.returncode == 2
    assert f"make: '{old}' is not Python 3.11 or newer: install it" in done.stderr.splitlines()[0]
    assert not (tmp_path / "venv").exists()


def test_a_wrong_mirror_is_one_line_naming_tf_provider_mirror(tmp_path: Path) -> None:
    wrong = tmp_path / "nope"
    done = _make("terraform-config", f"TF_PROVIDER_MIRROR={wrong}", f"TF_CONFIG_OUT={tmp_path / 'rc'}")
    assert done.returncode == 2
    first = done.stderr.splitlines()[0]
    assert first.startswith(f"TF_PROVIDER_MIRROR={wrong}: no such folder: set it to the folder that holds")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("how", ["command line", "environment"])
def test_terraform_rc_follows_a_corrected_mirror(tmp_path: Path, how: str) -> None:
    """The slip from the issue: the registry.terraform.io folder itself, then another mirror."""
    first, second = _mirror(tmp_path / "first"), _mirror(tmp_path / "second")
    rc = tmp_path / "build" / "terraform.rc"
    for mirror, expected in ((first / "registry.terraform.io", first), (second, second)):
        setting = f"TF_PROVIDER_MIRROR={mirror}"
        if how == "command line":
            done = _make("terraform-config", setting, f"TF_CONFIG_OUT={rc}")
        else:
            done = _make("terraform-config", f"TF_CONFIG_OUT={rc}", env={"TF_PROVIDER_MIRROR": str(mirror)})
        assert done.returncode == 0, done.stderr
        assert f'path = "{expected}"' in rc.read_text()
        assert done.stderr.startswith(f"terraform: providers from the mirror {expected} (TF_PROVIDER_MIRROR")


def _config(tmp_path: Path, *argv: str, search: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if k not in ("TF_PROVIDER_MIRROR", "TF_CLI_CONFIG_FILE")
    }
    return subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "terraform_config.sh"), *argv],
        capture_output=True,
        text=True,
        env={**environment, "TF_MIRROR_SEARCH_ROOT": str(search), **env},
        check=False,
    )


def test_a_mirror_terraform_providers_mirror_made_is_taken(tmp_path: Path) -> None:
    """The packed layout `terraform providers mirror DIR` writes (zips, not folders), which the
    script's own hint recommends: Terraform's filesystem_mirror reads it
    (https://developer.hashicorp.com/terraform/cli/config/config-file#filesystem_mirror)."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    mirror = tmp_path / "tf-mirror"
    packed = mirror / "registry.terraform.io" / "hashicorp" / "aws"
    packed.mkdir(parents=True)
    (packed / f"terraform-provider-aws_5.100.0_linux_{arch}.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    done = _config(
        tmp_path, str(tmp_path / "rc"), search=tmp_path / "nowhere", TF_PROVIDER_MIRROR=str(mirror)
    )
    assert done.returncode == 0, done.stderr
    assert f'path = "{mirror}"' in (tmp_path / "rc").read_text()


def test_a_mirror_on_the_machine_is_found_by_itself(tmp_path: Path) -> None:
    machine = tmp_path / "machine"
    mirror = _mirror(machine / "opt" / "tf-plugins")
    _mirror(machine / "build" / "terraform-plugin-cache")  # a plugin cache is no mirror (sorts first)
    done = _config(tmp_path, str(tmp_path / "rc"), search=machine)
    assert done.returncode == 0, done.stderr
    assert f'path = "{mirror}"' in (tmp_path / "rc").read_text()
    assert "found on this machine" in done.stderr


def test_without_a_mirror_the_registry_and_the_hint_names_tf_provider_mirror(tmp_path: Path) -> None:
    empty = tmp_path / "machine"
    empty.mkdir()
    done = _config(tmp_path, str(tmp_path / "rc"), search=empty)
    assert done.returncode == 0
    assert "provider_installation" not in (tmp_path / "rc").read_text()
    assert done.stderr.strip() == (
        "terraform: providers from the public registry (no mirror found; TF_PROVIDER_MIRROR names one)"
    )
    hint = _config(tmp_path, "--hint", search=empty).stdout.strip()
    assert hint.startswith("Terraform could not reach registry.terraform.io")
    assert "no provider mirror was found: set TF_PROVIDER_MIRROR to a folder holding" in hint
    assert "\n" not in hint


# What makes a suite unsafe to run beside another in make test's two xdist workers: Terraform (one
# plugin cache), dist/ and the shared local pair.
SHARED_STATE = (
    "local_pair",
    "lambda_zips",
    "LocalEnvironment(",
    '"terraform"',
    "terraform_config",
    "build_lambdas",
)


def test_every_suite_that_runs_terraform_or_deploys_dist_runs_in_the_serial_worker() -> None:
    from tests.conftest import work_unit

    suites = sorted((REPO_ROOT / "tests").glob("*/test_*.py"))
    sharing = [
        p.relative_to(REPO_ROOT).as_posix() for p in suites if any(s in p.read_text() for s in SHARED_STATE)
    ]
    assert "tests/ops/test_e2e_local.py" in sharing
    assert [path for path in sharing if work_unit(f"{path}::test") != "serial"] == []
    assert work_unit("tests/engine/test_wire.py::test_a[1]") == "tests/engine/test_wire.py"
