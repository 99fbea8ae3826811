"""Which kind of failure an exception is, and so what the functions do about it.

The classes, and what each function does with them, are the table in docs/failure-handling.md:

- ``TRANSIENT``: throttling, a server error (5xx), a timeout or a lost connection. It passes by
  itself: retried with backoff inside the invocation, then by Lambda from the first record that
  failed.
- ``PERMANENT``: this one change can never be applied as it is (DynamoDB refuses it, or it breaks the
  wire format). It goes to the failure queue with its reason; the rest of the batch is applied and
  the shard moves on. Only what certainly cannot succeed is permanent: everything else is retried.
- ``CONFIGURATION``: the deployment is wrong (access denied, a table or stream missing, a key the
  peer does not know), or the failure is unknown (a defect). Retrying cannot help until a person
  acts, but dropping the change would lose it: it is retried like a transient failure, counted in
  ``ConfigurationErrors`` and alarmed.

Throttling and transient codes are botocore's own lists (its ``standard`` retry mode), not ours; see
also the DynamoDB developer guide, "Error handling with DynamoDB" (which errors are "OK to retry").
"""

from __future__ import annotations

from enum import Enum

from botocore.exceptions import ClientError
from botocore.retries.standard import RetryContext, ThrottledRetryableChecker, TransientRetryableChecker

from replication.errors import PermanentChangeError
from replication.table_writer import RetryableWriteError

# DynamoDB answers ValidationException for a request it will never accept as it is: an item over
# 400 KB, a key that does not match the schema, a number out of range ("OK to retry? No").
PERMANENT_ERROR_CODES = frozenset({"ValidationException"})
# Codes botocore's lists do not hold that pass by themselves.
MORE_TRANSIENT_ERROR_CODES = frozenset({"TransactionConflictException", "KMSThrottlingException"})
# A transaction cancelled for these reasons only is worth retrying (per-item CancellationReasons).
TRANSIENT_CANCELLATION_REASONS = frozenset(
    {"ThrottlingError", "TransactionConflict", "ProvisionedThroughputExceeded"}
)
SERVER_ERROR_STATUS = 500
THROTTLING_STATUS = 429

_THROTTLED = ThrottledRetryableChecker()
_TRANSIENT = TransientRetryableChecker()


class FailureKind(Enum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    CONFIGURATION = "configuration"


def classify_failure(error: BaseException) -> FailureKind:
    """The kind of ``error`` (see the module docstring). Unknown errors are CONFIGURATION: retried
    and alarmed, never dropped."""
    if isinstance(error, PermanentChangeError):
        return FailureKind.PERMANENT
    if isinstance(error, ClientError):
        return _classify_client_error(error)
    if isinstance(error, RetryableWriteError):  # throttling outlasted the backoff of this invocation
        return FailureKind.TRANSIENT
    # Connection errors and timeouts (botocore's HTTPClientError and ConnectionError).
    if _TRANSIENT.is_retryable(RetryContext(attempt_number=1, caught_exception=error)):
        return FailureKind.TRANSIENT
    return FailureKind.CONFIGURATION


def _classify_client_error(error: ClientError) -> FailureKind:
    code = error.response.get("Error", {}).get("Code", "")
    if code == "TransactionCanceledException":
        reasons = {r.get("Code") for r in error.response.get("CancellationReasons", []) if r}
        if "ValidationError" in reasons:
            return FailureKind.PERMANENT
        if reasons - {"None", "ConditionalCheckFailed", None} <= TRANSIENT_CANCELLATION_REASONS:
            return FailureKind.TRANSIENT
        return FailureKind.CONFIGURATION
    if code in PERMANENT_ERROR_CODES:
        return FailureKind.PERMANENT
    context = RetryContext(attempt_number=1, parsed_response=error.response)
    if (
        code in MORE_TRANSIENT_ERROR_CODES
        or _THROTTLED.is_retryable(context)
        or _TRANSIENT.is_retryable(context)
    ):
        return FailureKind.TRANSIENT
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    if status >= SERVER_ERROR_STATUS or status == THROTTLING_STATUS:
        return FailureKind.TRANSIENT
    return FailureKind.CONFIGURATION
