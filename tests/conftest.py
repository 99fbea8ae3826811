"""Suite-wide settings: fake AWS credentials, moto as DynamoDB documents it, the --slow switch for
long property runs, and the Lambda zips the end-to-end suites deploy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from replication_ops.local import moto_fidelity
from replication_ops.local.config import DIST_DIR

REPO_ROOT = Path(__file__).resolve().parents[1]

# Never reach a real account from a test, whatever the developer's shell holds.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        # botocore >= 1.37 sends ARN-addressed calls to account endpoints moto does not intercept.
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "POWERTOOLS_METRICS_NAMESPACE": "DynamoDBReplication",
        "POWERTOOLS_SERVICE_NAME": "ddb-replication-tests",
    }
)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)


def pytest_configure(config: pytest.Config) -> None:
    """Every in-process moto (``mock_aws``) behaves as the local environment's moto servers do: as
    DynamoDB and the other services document it, not as stock moto (see ``moto_fidelity``)."""
    moto_fidelity.apply()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="run property tests with thousands of examples")
    parser.addoption(
        "--interleaving-case",
        action="append",
        default=[],
        metavar="SCENARIO@REGION/BOUNDARY/WRITE",
        help="run only this case of tests/engine/test_interleaving.py and print its trace (repeatable)",
    )


# Suites that run Terraform (two `terraform init` sharing one plugin cache race: hashicorp/terraform
# issue 31964) or build and deploy dist/ and share one local pair per package: with pytest-xdist
# (`make test` runs `-n auto --dist loadscope`) they all run in one worker, one after the other.
SERIAL_SUITES = (
    "tests/build/",
    "tests/chaos/",
    "tests/ops/",
    "tests/terraform/",
    "tests/local/test_e2e.py",
    "tests/local/test_environment.py",
    "tests/local/test_main_errors.py",
    "tests/local/test_report.py",
    "tests/local/test_rolesanywhere_terraform.py",
    "tests/local/test_terraform.py",
)


def work_unit(nodeid: str) -> str:
    """The xdist work unit of a test: ``serial`` for ``SERIAL_SUITES``, else its file (so a module's
    fixtures, such as a moto server, start once)."""
    path = nodeid.split("::", maxsplit=1)[0]
    return "serial" if path.startswith(SERIAL_SUITES) else path


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadscope`` with ``work_unit`` as the scope. (xdist's ``loadgroup`` marks do not
    reach the scheduler with pytest 9: it rewrites ``item._nodeid``, which pytest 9 no longer reads.)"""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SerialSuitesScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return SerialSuitesScheduling(config, log)


@pytest.fixture(scope="session")
def lambda_zips() -> Path:
    """dist/ built from the current sources (the builder is reproducible, so this is cheap and safe):
    the folder of this machine's architecture, whose zips the local environment runs."""
    subprocess.run(
        [sys.executable, "scripts/build_lambdas.py"], cwd=REPO_ROOT, check=True, capture_output=True
    )
    return DIST_DIR
