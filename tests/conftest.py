"""Suite-wide settings: fake AWS credentials, and the --slow switch for long property runs."""

from __future__ import annotations

import os

import pytest

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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="run property tests with thousands of examples")
