from __future__ import annotations

from collections.abc import Iterator

import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from replication.telemetry import metrics

from .harness import Pair
from .moto_stopgap import moto_as_dynamodb

moto_as_dynamodb()


@pytest.fixture(autouse=True)
def reset_powertools() -> Iterator[None]:
    """Cached secrets and buffered metrics must not leak from one test into the next."""
    parameters.clear_caches()
    metrics.clear_metrics()
    yield
    parameters.clear_caches()
    metrics.clear_metrics()


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def pair(aws: None) -> Pair:
    return Pair()
