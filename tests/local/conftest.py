"""Fixtures of the local-environment tests: a moto partition process and fake function zips."""

from __future__ import annotations

import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from replication_ops.local.config import SIDES
from replication_ops.local.partitions import LocalPartition

# A stand-in for a function zip: stdlib only. It records every record it gets in the table named by
# SEEN_TABLE (through AWS_ENDPOINT_URL, as a deployed function reaches its partition), fails on a
# record whose key is "poison", prints an EMF line, and answers with a partial batch response.
FAKE_HANDLER = textwrap.dedent(
    """
    import json, os, time
    import boto3  # from the runtime, as in Lambda
    import replication  # must come from this zip, never from the repository

    dynamodb = boto3.client("dynamodb")  # AWS_ENDPOINT_URL and AWS_REGION come from the runner

    def handler(event, context):
        failures = []
        for record in event["Records"]:
            if "dynamodb" in record:
                key = record["dynamodb"]["Keys"]["pk"]["S"]
                seq = record["dynamodb"]["SequenceNumber"]
            else:
                key = record["kinesis"]["partitionKey"]
                seq = record["kinesis"]["sequenceNumber"]
            if key == "poison":
                raise ValueError("poison record")
            marker = os.path.join(os.environ["MARKER_DIR"], "fail-once-" + os.environ["RUN_ID"])
            if key == "fail-once" and not os.path.exists(marker):
                open(marker, "w").close()
                failures.append({"itemIdentifier": seq})
                break
            body = {"region": record["awsRegion"], "arn": record["eventSourceARN"],
                    "remaining": context.get_remaining_time_in_millis(), "function": context.function_name,
                    "zipped": replication.ZIPPED}
            dynamodb.put_item(TableName=os.environ["SEEN_TABLE"],
                              Item={"pk": {"S": key}, "body": {"S": json.dumps(body)}})
        print(json.dumps({"_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [
            {"Namespace": "T", "Dimensions": [[]], "Metrics": [{"Name": "Records", "Unit": "Count"}]}]},
            "Records": len(event["Records"])}))
        return {"batchItemFailures": failures}
    """
)


def write_fake_zip(path: Path, handler: str = FAKE_HANDLER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("app.py", handler)
        archive.writestr("replication/__init__.py", "ZIPPED = True\n")
    return path


@pytest.fixture(scope="module")
def partition(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPartition]:
    logs = tmp_path_factory.mktemp("moto-logs")
    started = LocalPartition(SIDES["cn-north-1"], logs / "moto.log")
    started.start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def fresh_partition(tmp_path: Path) -> Iterator[LocalPartition]:
    """A partition of the test's own (the runner runs every mapping it finds)."""
    started = LocalPartition(SIDES["cn-north-1"], tmp_path / "moto.log")
    started.start()
    try:
        yield started
    finally:
        started.stop()
