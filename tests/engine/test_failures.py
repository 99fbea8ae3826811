"""Every failure is transient, permanent or configuration (docs/failure-handling.md). Error shapes are
botocore's own: a ClientError carries the service's error code and HTTP status, as DynamoDB, Kinesis
and SQS answer them (DynamoDB developer guide, "Error handling with DynamoDB")."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from replication.errors import ItemValidationError, WireFormatError
from replication.failures import FailureKind, classify_failure
from replication.table_writer import RetryableWriteError


def client_error(code: str, status: int = 400, reasons: list[str] | None = None) -> ClientError:
    response: dict = {
        "Error": {"Code": code, "Message": "..."},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    if reasons is not None:
        response["CancellationReasons"] = [{"Code": reason} for reason in reasons]
    return ClientError(response, "PutItem")


@pytest.mark.parametrize(
    "error",
    [
        client_error("ProvisionedThroughputExceededException"),
        client_error("ThrottlingException"),
        client_error("RequestLimitExceeded"),
        client_error("TransactionConflictException"),
        client_error("InternalServerError", 500),
        client_error("ServiceUnavailable", 503),
        client_error("SomethingNew", 502),
        client_error("TransactionCanceledException", reasons=["None", "ThrottlingError"]),
        client_error("KMSThrottlingException"),
        EndpointConnectionError(endpoint_url="https://kinesis.cn-north-1.amazonaws.com.cn"),
        ConnectTimeoutError(endpoint_url="https://kinesis.cn-north-1.amazonaws.com.cn"),
        ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
        RetryableWriteError("gave up after repeated ThrottlingException"),
    ],
    ids=repr,
)
def test_transient_failures(error: BaseException) -> None:
    assert classify_failure(error) is FailureKind.TRANSIENT


@pytest.mark.parametrize(
    "error",
    [
        client_error("ValidationException"),
        client_error("TransactionCanceledException", reasons=["None", "ValidationError"]),
        ItemValidationError("the item is 512,000 bytes"),
        WireFormatError("change[3]: malformed N value"),
    ],
    ids=repr,
)
def test_permanent_failures(error: BaseException) -> None:
    assert classify_failure(error) is FailureKind.PERMANENT


@pytest.mark.parametrize(
    "error",
    [
        client_error("AccessDeniedException"),
        client_error("ResourceNotFoundException"),
        client_error("UnrecognizedClientException"),
        client_error("KMSDisabledException"),
        client_error("ItemCollectionSizeLimitExceededException"),
        client_error("AWS.SimpleQueueService.NonExistentQueue"),
        client_error("TransactionCanceledException", reasons=["None", "ItemCollectionSizeLimitExceeded"]),
        NoCredentialsError(),
        TypeError("a defect"),
    ],
    ids=repr,
)
def test_configuration_failures_and_anything_unknown(error: BaseException) -> None:
    assert classify_failure(error) is FailureKind.CONFIGURATION
