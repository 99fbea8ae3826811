"""The module's variables whose bounds come from the functions' code stay in step with that code."""

from __future__ import annotations

import re
from pathlib import Path

from hcl_blocks import read_blocks

from replication.applying import decode_budget_bytes
from replication.kinesis_sender import DEADLINE_MARGIN_SECONDS
from replication.peer_session import LONGEST_CALL_SECONDS
from replication.settings import KINESIS_DEFAULT_MAX_RECORD_BYTES
from replication.wire import FORWARDER_BODY_BYTES

MODULE = Path(__file__).resolve().parents[2] / "modules" / "replication_endpoint"


def minimum(variable: str) -> int:
    (block,) = [b for b in read_blocks(MODULE, "variable") if b.name == variable]
    found = re.search(rf"var\.{variable} >= (\d+)", block.body)
    assert found, f"variable {variable} has no lower bound"
    return int(found.group(1))


def test_forwarder_timeout_leaves_room_for_one_put_records_attempt() -> None:
    assert minimum("forwarder_timeout") >= LONGEST_CALL_SECONDS + DEADLINE_MARGIN_SECONDS


def test_the_smallest_replicator_decodes_any_record_a_forwarder_makes() -> None:
    assert decode_budget_bytes(minimum("replicator_memory_size")) >= FORWARDER_BODY_BYTES


def test_the_record_limit_starts_at_the_kinesis_default() -> None:
    assert minimum("peer_max_record_bytes") == KINESIS_DEFAULT_MAX_RECORD_BYTES
