"""Exit codes and the errors that carry them; AWS and botocore failures turned into plain messages."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
)

EXIT_OK = 0
EXIT_DIFFERENCES = 1  # differences found, a check failed, work left undone
EXIT_BAD_INPUT = 2  # bad arguments, configuration, Terraform outputs, unknown table or secret
EXIT_AWS_ACCESS = 3  # no credentials, access denied, endpoint unreachable

ACCESS_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "IncompleteSignature",
        "AuthFailure",
        "MissingAuthenticationToken",
    }
)
NOT_FOUND_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "NoSuchEntity",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    }
)


class OpsError(Exception):
    """A failure to report as one line, with the exit code it means."""

    exit_code = EXIT_DIFFERENCES

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(OpsError):
    exit_code = EXIT_BAD_INPUT


class AccessError(OpsError):
    exit_code = EXIT_AWS_ACCESS


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def describe(error: ClientError) -> str:
    info = error.response.get("Error", {})
    return f"{info.get('Code', 'Error')}: {info.get('Message', '')}".rstrip(": ")


@contextlib.contextmanager
def aws_errors(where: str) -> Iterator[None]:
    """Turn botocore exceptions into OpsErrors that name the side (``where``) and say what to do."""
    try:
        yield
    except OpsError:
        raise
    except ProfileNotFound as error:
        raise ConfigError(f"{where}: {error} (check --*-profile and ~/.aws/config)") from None
    except (NoCredentialsError, PartialCredentialsError) as error:
        raise AccessError(
            f"{where}: {error}: give a profile (--cn-profile/--us-profile) or credentials in the environment"
        ) from None
    except ParamValidationError as error:
        raise ConfigError(f"{where}: {error}".replace("\n", " ")) from None
    except NoRegionError:
        raise ConfigError(f"{where}: no region: give --cn-region/--us-region or Terraform outputs") from None
    except EndpointConnectionError as error:
        raise AccessError(
            f"{where}: cannot reach {error.kwargs.get('endpoint_url', 'the endpoint')}"
        ) from None
    except ClientError as error:
        code = error_code(error)
        operation = error.operation_name
        if code in ACCESS_CODES:
            raise AccessError(
                f"{where}: {operation} refused ({describe(error)}): these credentials have no access "
                "there (wrong partition, profile or policy?)"
            ) from None
        if code in NOT_FOUND_CODES:
            raise ConfigError(
                f"{where}: {operation}: {describe(error)} (do the Terraform outputs match this account "
                "and region?)"
            ) from None
        raise OpsError(f"{where}: {operation} failed ({describe(error)})") from None
    except BotoCoreError as error:
        raise AccessError(f"{where}: {error}") from None
