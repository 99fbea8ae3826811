"""``ddb-replication plan``: what a load costs on each side before it is deployed.

A load is a write rate per side (changes per second made by the applications on that side's table),
an item size and a mix of change kinds. Per side the plan gives what the module's settings make of
it (inbox shards, batch sizes, Lambda invocations, concurrency and duration), the DynamoDB capacity
the replication protocol adds (the steps of docs/conflict-rules.md, "The write protocol and what it
costs", each priced by AWS's rules in ``replication_ops.capacity``), the Kinesis units, the bytes
that cross the border, and a monthly cost in the partition's currency from the price table
(``replication_ops.prices``), beside what DynamoDB global tables would charge for the same
replication inside one partition (one replicated write unit per KB of each change, in the replica).

Units: rates per second, sizes in bytes, a month is 730 hours (AWS's pricing pages and calculator
price a month as 730 hours). A price the table lacks leaves its cost unknown and named, never zero.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replication.limits import item_size
from replication_ops.capacity import ReadConsistency, read_units, write_units
from replication_ops.errors import ConfigError
from replication_ops.prices import PriceTable

HOURS_PER_MONTH = 730
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
GB = 1024**3
KINDS = ("new", "update", "unversioned_update", "delete")
DEFAULT_MIX = {"new": 0.6, "update": 0.3, "delete": 0.1}  # issue 13's mix
SIDES = {"cn": ("cn-north-1", "aws-cn"), "us": ("us-east-1", "aws")}

# The module's defaults (modules/replication_endpoint/variables.tf and lambda.tf; the test
# tests/ops/test_plan.py reads them there, so a change of the module shows here).
MODULE_DEFAULTS: dict[str, Any] = {
    "forwarder_batch_size": 500,
    "forwarder_parallelization_factor": 1,
    "replicator_batch_size": 100,
    "replicator_batching_window_seconds": 0,
    "replicator_parallelization_factor": 1,
    "forwarder_memory_size": 512,
    "replicator_memory_size": 512,
    "peer_max_record_bytes": 1048576,
    "inbox_stream_mode": "ON_DEMAND",
    "inbox_shard_count": 1,
    "lambda_architecture": "x86_64",
    "latency_profile": "standard",
}
# forwarder_batching_window_seconds is null in the module: the profile's, 1 s standard, 0 low_latency.
PROFILE_BATCHING_WINDOW = {"standard": 1, "low_latency": 0}

# How often Lambda reads each source, as replication_ops/local/event_sources.py emulates it: a
# DynamoDB stream shard "at a base rate of 4 times per second" (Lambda developer guide, "Using Lambda
# with DynamoDB", Polling and batching streams), a Kinesis shard through a standard iterator "at a
# base rate of once per second" ("Using Lambda with Kinesis Data Streams"); an enhanced fan-out
# consumer is pushed each record, "typically an average of 70 ms" after it is written (Kinesis Data
# Streams developer guide, "Develop enhanced fan-out consumers with dedicated throughput").
STREAM_POLLS_PER_SECOND = 4.0
INBOX_POLLS_PER_SECOND = 1.0

# Kinesis billing units (Kinesis Data Streams pricing page): a PUT payload unit is 25 KB of a
# record; on-demand data in is each record rounded up to 1 KB.
PUT_PAYLOAD_UNIT_BYTES = 25 * 1024
ON_DEMAND_INGEST_ROUNDING = 1024
# PutRecords is a JSON request whose Data blob travels base64-encoded (Kinesis API reference,
# PutRecordsRequestEntry: "Data ... The data blob ... is base64-encoded when the blob is serialized").
BASE64_FACTOR = 4 / 3

# CPU per change when build/bench.json is absent: issue 13's figures with botocore doing its real work
# (forwarder 100 us, replicator 622 us per change; make bench measures them again).
DOCUMENTED_CPU_US = {"forwarder": 100.0, "replicator": 622.0}
CPU_FIELDS = {
    "forwarder": ("forwarder_us_per_change_realistic", "forwarder_us_per_change"),
    "replicator": ("replicator_us_per_change_realistic", "replicator_us_per_change"),
}

# The engine's tombstone row (functions/replication/table_writer.py, TableWriter._remember): the
# key's SHA-256 in hex, the key itself, the version, its source and its expiry.
_TOMBSTONE_WITHOUT_KEY = {
    "k": {"S": "0" * 64},
    "key": {"M": {}},
    "ts": {"N": "1764200000.123456"},
    "o": {"S": "cn-north-1"},
    "src": {"S": "replicator"},
    "expires_at": {"N": "1766792000"},
}


def tombstone_bytes(key_bytes: int) -> int:
    """DynamoDB size of a tombstone of a key of ``key_bytes`` (names and values)."""
    return item_size(_TOMBSTONE_WITHOUT_KEY) + key_bytes


# -- the protocol's capacity per change kind ------------------------------------------------------

# Each step: (side, operation, what it touches). "origin" is where the change was made, "peer" the
# other side. Touches: "item" (the item, its size), "tombstone" (a tombstone row), "missing" (an item
# that is not there: a read of it consumes one unit, as a write whose condition fails on it would).
# docs/conflict-rules.md, "The write protocol and what it costs", is the table this mirrors;
# scripts/bench_capacity.py measures it on the real engine, and tests/ops/test_plan.py compares the two.
PROTOCOL: dict[str, tuple[tuple[str, str, str], ...]] = {
    "new": (
        ("origin", "read", "tombstone"),  # the INSERT's tombstone read
        ("peer", "write", "item"),  # PutItem if absent or older
        ("peer", "read", "tombstone"),  # the read after a created item's put
    ),
    "update": (("peer", "write", "item"),),  # PutItem if older
    "unversioned_update": (
        ("origin", "read", "tombstone"),
        ("origin", "write", "item"),  # the stamp
        ("peer", "write", "item"),  # PutItem of the stamped item
    ),
    "delete": (
        ("origin", "write", "tombstone"),
        ("origin", "read", "missing"),  # the deleted item, read after its tombstone: gone
        ("peer", "write", "tombstone"),
        ("peer", "write", "item"),  # the mark
        ("peer", "write", "item"),  # DeleteItem
        ("peer", "read", "tombstone"),  # the marked REMOVE's read
    ),
}
# Stream records each change leaves in each side's table stream (what the forwarder reads there):
# the application's own write at the origin (an unversioned one: and its stamp), the replicator's
# write at the peer (a delete: the mark and the removal). Only the origin's are sent.
STREAM_RECORDS = {
    "new": {"origin": 1, "peer": 1},
    "update": {"origin": 1, "peer": 1},
    "unversioned_update": {"origin": 2, "peer": 1},
    "delete": {"origin": 1, "peer": 2},
}


def capacity_of_kind(kind: str, item_bytes: int, key_bytes: int) -> dict[str, dict[str, float]]:
    """{"origin"|"peer": {"wcu", "rcu"}} one change of ``kind`` costs (AWS's rules, capacity.py)."""
    sizes = {"item": item_bytes, "tombstone": tombstone_bytes(key_bytes), "missing": 0}
    out = {"origin": {"wcu": 0.0, "rcu": 0.0}, "peer": {"wcu": 0.0, "rcu": 0.0}}
    for side, operation, touches in PROTOCOL[kind]:
        if operation == "write":
            out[side]["wcu"] += write_units(sizes[touches])
        else:
            # a tombstone read is strongly consistent (docs/conflict-rules.md); a missing row: 1 RCU
            out[side]["rcu"] += float(read_units(sizes[touches], ReadConsistency.STRONG))
    return out


# -- inputs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    rates: dict[str, float]  # side -> changes/s made there
    item_bytes: int
    key_bytes: int = 64
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    latency_profile: str = MODULE_DEFAULTS["latency_profile"]
    inbox_stream_mode: str = MODULE_DEFAULTS["inbox_stream_mode"]
    inbox_shards: int = MODULE_DEFAULTS["inbox_shard_count"]
    stream_shards: int = 1  # DynamoDB stream shards per table (about one per table partition)
    billing_mode: str = "PAY_PER_REQUEST"
    lambda_architecture: str = MODULE_DEFAULTS["lambda_architecture"]
    bytes_per_change: float | None = None  # compressed bytes a change takes in a record
    forwarder_wait_ms: float = 0.0  # per invocation: waiting on AWS calls, on top of CPU
    replicator_wait_ms: float = 0.0


def parse_mix(text: str) -> dict[str, float]:
    """``new=60,update=30,delete=10`` (shares, any scale; unversioned_update too) -> fractions."""
    shares: dict[str, float] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in KINDS:
            raise ConfigError(
                f"--mix: {name!r} is not a change kind ({', '.join(KINDS)}): e.g. new=60,update=30,delete=10"
            )
        try:
            share = float(value)
        except ValueError:
            raise ConfigError(
                f"--mix: {part.strip()!r} has no number: give KIND=SHARE, e.g. delete=10"
            ) from None
        if not math.isfinite(share) or share < 0:
            raise ConfigError(f"--mix: {part.strip()!r}: a share is a finite number of 0 or more")
        if name in shares:
            raise ConfigError(f"--mix: {name} is given twice")
        shares[name] = share
    total = sum(shares.values())
    if total <= 0:
        raise ConfigError("--mix: the shares add up to 0: give at least one kind a share")
    return {name: share / total for name, share in shares.items()}


@dataclass(frozen=True)
class Measured:
    """CPU per change and compression, from build/bench.json or documented defaults."""

    cpu_us: dict[str, float]
    cpu_source: str
    compression_ratio: float | None  # compressed bytes per item byte
    compression_source: str


# Where make bench writes its figures (relative to the folder the CLI runs in: the repository's).
DEFAULT_BENCH = Path("build/bench.json")


def measured(bench: Path | None) -> Measured:
    """Figures of ``make bench`` from ``bench`` (None: :data:`DEFAULT_BENCH` when it exists); else
    issue 13's, said so. Raises ConfigError when the file is not a JSON object."""
    figures: dict[str, Any] = {}
    if bench is None and DEFAULT_BENCH.exists():
        bench = DEFAULT_BENCH
    if bench is not None:
        try:
            figures = json.loads(bench.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(f"--bench {bench}: not a bench.json ({error}): run make bench") from None
        if not isinstance(figures, dict):
            raise ConfigError(f"--bench {bench}: not a bench.json (not a JSON object): run make bench")
    cpu: dict[str, float] = {}
    sources = []
    for function, names in CPU_FIELDS.items():
        name = next((n for n in names if n in figures), None)
        if name:
            cpu[function] = _bench_figure(figures, name, bench)
            sources.append(f"{bench}:{name}")
        else:
            cpu[function] = DOCUMENTED_CPU_US[function]
            missing = f"not in {bench}" if bench else f"no {DEFAULT_BENCH}"
            sources.append(f"issue 13's measured {function} figure ({missing})")
    ratio, ratio_source = (
        None,
        "none: bytes per change taken as the item size (uncompressed); give --bytes-per-change",
    )
    if "bytes_per_change" in figures and "average_item_bytes" in figures:
        compressed = _bench_figure(figures, "bytes_per_change", bench)
        ratio = compressed / _bench_figure(figures, "average_item_bytes", bench, positive=True)
        ratio_source = f"{bench}: bytes_per_change / average_item_bytes (Faker profiles)"
    return Measured(cpu, "; ".join(sources), ratio, ratio_source)


def _bench_figure(figures: dict[str, Any], name: str, bench: Path | None, *, positive: bool = False) -> float:
    """``figures[name]``: a finite number, not below 0 (above 0 when ``positive``); else ConfigError."""
    value = figures[name]
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (positive and value == 0)
    ):
        bound = "above 0" if positive else "0 or more"
        raise ConfigError(f"--bench {bench}: {name} is {value!r}, not a number {bound}: run make bench")
    return float(value)


# -- the model ------------------------------------------------------------------------------------


def _changes_per_poll(arrivals: float, polls_per_second: float) -> float:
    """Expected records a non-empty poll returns when ``arrivals`` records/s come at random:
    (mean per interval) / P(at least one)."""
    mean = arrivals / polls_per_second
    return mean / -math.expm1(-mean) if mean > 0 else 0.0


def forwarder_batch(
    records_per_shard: float, window: int, batch_size: int, busy_seconds: Any = lambda batch: 0.0
) -> float:
    """Stream records per forwarder invocation on one stream shard. With a batching window W, the
    first record opens it and W seconds of records join it (MaximumBatchingWindowInSeconds: "the
    maximum amount of time, in seconds, that Lambda spends gathering records before invoking the
    function", Lambda API reference); with none, each poll's records (4 polls a second). A shard has one
    invocation at a time (parallelization factor 1), so records also pile up while one runs:
    ``busy_seconds(batch)``, the invocation's duration, solved to a fixed point."""
    if records_per_shard <= 0:
        return 0.0
    batch = 1.0
    for _ in range(100):
        busy = busy_seconds(batch)
        if window > 0:
            following = 1 + records_per_shard * max(window, busy)
        else:
            following = max(
                _changes_per_poll(records_per_shard, STREAM_POLLS_PER_SECOND), records_per_shard * busy
            )
        following = min(float(batch_size), following)
        if abs(following - batch) < 1e-9:
            break
        batch = following
    return batch


def _replicator_batch(load: Load, figures: Measured, per_shard: float, inbound: dict[str, float]) -> float:
    """Inbox records per replicator invocation on one shard: pushed as each arrives (enhanced fan-out)
    or each poll's (once a second), and what piles up while one invocation runs (one per shard)."""
    if per_shard <= 0:
        return 0.0
    changes_per_record = inbound["changes"] / inbound["records"] if inbound["records"] else 0.0
    arrived = (
        1.0 if load.latency_profile == "low_latency" else _changes_per_poll(per_shard, INBOX_POLLS_PER_SECOND)
    )
    batch = arrived
    for _ in range(100):
        busy = (
            batch * changes_per_record * figures.cpu_us["replicator"] / 1000 + load.replicator_wait_ms
        ) / 1000
        following = min(float(MODULE_DEFAULTS["replicator_batch_size"]), max(arrived, per_shard * busy))
        if abs(following - batch) < 1e-9:
            break
        batch = following
    return batch


def _per_change(load: Load, flows: dict[str, dict[str, float]], sides: dict[str, Any]) -> dict[str, Any]:
    """The local run's report (build/local/report.json, totals) defines these per change forwarded:
    inbox Kinesis data bytes, inbox Kinesis records, Lambda invocations of both functions and sides."""
    forwarded = sum(load.rates.values())
    records = sum(flows[label]["records"] for label in SIDES)
    inbox_bytes = sum(flows[label]["records"] * flows[label]["record_bytes"] for label in SIDES)
    invocations = sum(
        sides[label][f]["invocations_per_second"] for label in SIDES for f in ("forwarder", "replicator")
    )
    per_change = {
        "bytes_per_change": round(inbox_bytes / forwarded, 1) if forwarded else None,
        "kinesis_records_per_change": round(records / forwarded, 4) if forwarded else None,
        "invocations_per_change": round(invocations / forwarded, 4) if forwarded else None,
    }
    return per_change


def plan(load: Load, figures: Measured, prices: PriceTable) -> dict[str, Any]:
    """The plan as a JSON-able document: inputs, settings, per side units and costs, notes."""
    mix = load.mix
    window = PROFILE_BATCHING_WINDOW[load.latency_profile]
    per_kind = {kind: capacity_of_kind(kind, load.item_bytes, load.key_bytes) for kind in mix}
    ratio = figures.compression_ratio
    change_bytes = load.bytes_per_change or (load.item_bytes * ratio if ratio else float(load.item_bytes))
    sides: dict[str, Any] = {}
    flows: dict[str, dict[str, float]] = {}
    for label, (region, partition) in SIDES.items():
        peer = "us" if label == "cn" else "cn"
        rate, peer_rate = load.rates[label], load.rates[peer]
        origin_records = rate * sum(share * STREAM_RECORDS[k]["origin"] for k, share in mix.items())
        peer_records = peer_rate * sum(share * STREAM_RECORDS[k]["peer"] for k, share in mix.items())
        stream_records = origin_records + peer_records
        per_shard = stream_records / load.stream_shards
        batch = forwarder_batch(
            per_shard,
            window,
            MODULE_DEFAULTS["forwarder_batch_size"],
            lambda n: (n * figures.cpu_us["forwarder"] / 1000 + load.forwarder_wait_ms) / 1000,
        )
        invocations = load.stream_shards * (per_shard / batch) if batch else 0.0
        # a stamp replaces its write; min: the shares' float sum may make it 1 + 1e-16
        sent_share = min(1.0, rate / stream_records) if stream_records else 0.0
        sent_per_invocation = batch * sent_share
        # an invocation whose batch holds only echoes sends nothing
        sending = invocations * (1 - (1 - sent_share) ** batch) if batch else 0.0
        record_bytes = (
            sent_per_invocation / max(1e-12, 1 - (1 - sent_share) ** batch) * change_bytes if batch else 0.0
        )
        pieces = max(1, math.ceil(record_bytes / MODULE_DEFAULTS["peer_max_record_bytes"])) if sending else 0
        flows[label] = {
            "records": sending * pieces,
            "record_bytes": record_bytes / pieces if pieces else 0.0,
            "bytes": rate * change_bytes,
            "changes": rate,
        }
        cpu_ms = batch * figures.cpu_us["forwarder"] / 1000
        duration_ms = cpu_ms + load.forwarder_wait_ms
        sides[label] = {
            "region": region,
            "currency": prices.currency[partition],
            "changes_per_second": rate,
            "forwarder": {
                "stream_records_per_second": round(stream_records, 3),
                "batch_size": MODULE_DEFAULTS["forwarder_batch_size"],
                "batching_window_seconds": window,
                "changes_per_invocation": round(batch, 2),
                "invocations_per_second": round(invocations, 4),
                "duration_ms": round(duration_ms, 2),
                "cpu_ms": round(cpu_ms, 3),
                "concurrency": round(max(invocations * duration_ms / 1000, 0.0), 4),
                "memory_mb": MODULE_DEFAULTS["forwarder_memory_size"],
                "kinesis_records_per_second": round(sending * pieces, 4),
                "record_bytes": round(record_bytes / pieces, 1) if pieces else 0.0,
            },
        }
    for label, (_, partition) in SIDES.items():
        peer = "us" if label == "cn" else "cn"
        inbound = flows[peer]  # the peer's forwarder writes into this side's inbox
        per_shard = inbound["records"] / load.inbox_shards
        records_per_invocation = _replicator_batch(load, figures, per_shard, inbound)
        invocations = inbound["records"] / records_per_invocation if records_per_invocation else 0.0
        changes_per_invocation = inbound["changes"] / invocations if invocations else 0.0
        cpu_ms = changes_per_invocation * figures.cpu_us["replicator"] / 1000
        duration_ms = cpu_ms + load.replicator_wait_ms
        wcu = rcu = 0.0
        for kind, share in mix.items():
            wcu += (
                load.rates[label] * share * per_kind[kind]["origin"]["wcu"]
                + load.rates[peer] * share * per_kind[kind]["peer"]["wcu"]
            )
            rcu += (
                load.rates[label] * share * per_kind[kind]["origin"]["rcu"]
                + load.rates[peer] * share * per_kind[kind]["peer"]["rcu"]
            )
        replicated_wcu = load.rates[peer] * sum(
            share * write_units(load.item_bytes) for share in mix.values()
        )
        payload_units = (
            inbound["records"] * math.ceil(inbound["record_bytes"] / PUT_PAYLOAD_UNIT_BYTES)
            if inbound["records"]
            else 0.0
        )
        ingest_bytes = (
            inbound["records"]
            * ON_DEMAND_INGEST_ROUNDING
            * math.ceil(inbound["record_bytes"] / ON_DEMAND_INGEST_ROUNDING)
            if inbound["records"]
            else 0.0
        )
        out_bytes = flows[label]["records"] * flows[label]["record_bytes"] * BASE64_FACTOR
        side = sides[label]
        side["replicator"] = {
            "inbox_stream_mode": load.inbox_stream_mode,
            "inbox_shards": load.inbox_shards,
            "batch_size": MODULE_DEFAULTS["replicator_batch_size"],
            "batching_window_seconds": MODULE_DEFAULTS["replicator_batching_window_seconds"],
            "source": "enhanced fan-out consumer"
            if load.latency_profile == "low_latency"
            else "standard iterator, 1 poll/s per shard",
            "records_per_invocation": round(records_per_invocation, 3),
            "invocations_per_second": round(invocations, 4),
            "changes_per_invocation": round(changes_per_invocation, 2),
            "duration_ms": round(duration_ms, 2),
            "cpu_ms": round(cpu_ms, 3),
            "concurrency": round(invocations * duration_ms / 1000, 4),
            "memory_mb": MODULE_DEFAULTS["replicator_memory_size"],
        }
        side["dynamodb"] = {
            "wcu_per_second": round(wcu, 3),
            "rcu_per_second": round(rcu, 3),
            "global_tables_replicated_wcu_per_second": round(replicated_wcu, 3),
        }
        side["kinesis"] = {
            "records_in_per_second": round(inbound["records"], 4),
            "put_payload_units_per_second": round(payload_units, 4),
            "shard_hours_per_month": load.inbox_shards * HOURS_PER_MONTH
            if load.inbox_stream_mode == "PROVISIONED"
            else 0,
            "stream_hours_per_month": HOURS_PER_MONTH if load.inbox_stream_mode == "ON_DEMAND" else 0,
            "on_demand_gb_in_per_month": round(ingest_bytes * SECONDS_PER_MONTH / GB, 4),
            "gb_retrieved_per_month": round(
                inbound["records"] * inbound["record_bytes"] * SECONDS_PER_MONTH / GB, 4
            ),
            "efo_consumer_shard_hours_per_month": load.inbox_shards * HOURS_PER_MONTH
            if load.latency_profile == "low_latency"
            else 0,
        }
        side["border"] = {
            "bytes_out_per_second": round(out_bytes, 1),
            "gb_out_per_month": round(out_bytes * SECONDS_PER_MONTH / GB, 4),
            "direction": f"{label} forwarder -> {peer} inbox, through {label}'s NAT gateway",
        }
        side["cost"] = _cost(side, load, prices, partition)
    per_change = _per_change(load, flows, sides)
    return {
        "per_change_forwarded": per_change,
        "inputs": {
            "changes_per_second": load.rates,
            "item_bytes": load.item_bytes,
            "key_bytes": load.key_bytes,
            "mix": mix,
            "latency_profile": load.latency_profile,
            "inbox_stream_mode": load.inbox_stream_mode,
            "inbox_shards": load.inbox_shards,
            "stream_shards_per_side": load.stream_shards,
            "billing_mode": load.billing_mode,
            "lambda_architecture": load.lambda_architecture,
            "bytes_per_change": round(change_bytes, 1),
        },
        "per_change_kind": per_kind,
        "measured": {
            "cpu_us_per_change": figures.cpu_us,
            "cpu_source": figures.cpu_source,
            "compression_source": figures.compression_source
            if not load.bytes_per_change
            else "--bytes-per-change",
        },
        "module_defaults": MODULE_DEFAULTS,
        "prices": prices.origin,
        "sides": sides,
        "notes": _notes(load),
    }


def _notes(load: Load) -> list[str]:
    notes = [
        "Lambda duration is the engine's CPU per change times the batch"
        + (
            ""
            if load.forwarder_wait_ms or load.replicator_wait_ms
            else ", without waiting on AWS calls (give --forwarder-wait-ms/--replicator-wait-ms, "
            "e.g. from each function's Duration metric)"
        ),
        "DynamoDB capacity is what replication adds (the applications' own writes are not counted); "
        "provisioned capacity is costed at exactly the average rate",
        "bytes across the border are the PutRecords data base64-encoded, without HTTP/TLS overhead and "
        "the credential calls",
        "inbox retention above 24 h (the module's default is 48 h) is charged as extended retention: "
        "not in the price table",
    ]
    if load.inbox_stream_mode == "ON_DEMAND":
        notes.append(
            "an ON_DEMAND inbox's shards are Kinesis's to manage (\"Choose the data stream capacity mode\", "
            f"Kinesis developer guide): the replicator figures assume {load.inbox_shards} (--inbox-shards)"
        )
    return notes


def _line(
    prices: PriceTable, partition: str, price: str, quantity: float, scale: float = 1.0
) -> dict[str, Any]:
    entry = prices.price(partition, price)
    cost = None if entry.value is None else entry.value * quantity / scale
    line: dict[str, Any] = {
        "quantity": round(quantity, 4),
        "price": entry.value,
        "unit": entry.unit,
        "monthly": cost,
    }
    if entry.value is None:
        line["missing"] = entry.note
    return line


def _cost(side: dict[str, Any], load: Load, prices: PriceTable, partition: str) -> dict[str, Any]:
    month = SECONDS_PER_MONTH
    lines: dict[str, dict[str, Any]] = {}
    db = side["dynamodb"]
    if load.billing_mode == "PAY_PER_REQUEST":
        lines["dynamodb write request units"] = _line(
            prices, partition, "dynamodb_write_request_unit", db["wcu_per_second"] * month, 1e6
        )
        lines["dynamodb read request units"] = _line(
            prices, partition, "dynamodb_read_request_unit", db["rcu_per_second"] * month, 1e6
        )
        gt = _line(
            prices,
            partition,
            "dynamodb_replicated_write_request_unit",
            db["global_tables_replicated_wcu_per_second"] * month,
            1e6,
        )
    else:
        lines["dynamodb WCU-hours"] = _line(
            prices, partition, "dynamodb_wcu_hour", db["wcu_per_second"] * HOURS_PER_MONTH
        )
        lines["dynamodb RCU-hours"] = _line(
            prices, partition, "dynamodb_rcu_hour", db["rcu_per_second"] * HOURS_PER_MONTH
        )
        gt = _line(
            prices,
            partition,
            "dynamodb_replicated_wcu_hour",
            db["global_tables_replicated_wcu_per_second"] * HOURS_PER_MONTH,
        )
    kinesis = side["kinesis"]
    if load.inbox_stream_mode == "PROVISIONED":
        lines["kinesis shard-hours"] = _line(
            prices, partition, "kinesis_shard_hour", kinesis["shard_hours_per_month"]
        )
        lines["kinesis PUT payload units"] = _line(
            prices,
            partition,
            "kinesis_put_payload_unit",
            kinesis["put_payload_units_per_second"] * month,
            1e6,
        )
        if load.latency_profile == "low_latency":
            lines["kinesis enhanced fan-out consumer-shard-hours"] = _line(
                prices,
                partition,
                "kinesis_efo_consumer_shard_hour",
                kinesis["efo_consumer_shard_hours_per_month"],
            )
            lines["kinesis enhanced fan-out GB retrieved"] = _line(
                prices, partition, "kinesis_efo_data_retrieval_gb", kinesis["gb_retrieved_per_month"]
            )
    else:
        lines["kinesis on-demand stream-hours"] = _line(
            prices, partition, "kinesis_on_demand_stream_hour", kinesis["stream_hours_per_month"]
        )
        lines["kinesis on-demand GB in"] = _line(
            prices, partition, "kinesis_on_demand_data_in_gb", kinesis["on_demand_gb_in_per_month"]
        )
        retrieval = (
            "kinesis_on_demand_efo_data_retrieval_gb"
            if load.latency_profile == "low_latency"
            else "kinesis_on_demand_data_retrieval_gb"
        )
        lines["kinesis on-demand GB retrieved"] = _line(
            prices, partition, retrieval, kinesis["gb_retrieved_per_month"]
        )
    requests = (
        side["forwarder"]["invocations_per_second"] + side["replicator"]["invocations_per_second"]
    ) * month
    gb_seconds = sum(
        side[f]["invocations_per_second"]
        * side[f]["duration_ms"]
        / 1000
        * side[f]["memory_mb"]
        / 1024
        * month
        for f in ("forwarder", "replicator")
    )
    lines["lambda requests"] = _line(prices, partition, "lambda_request", requests, 1e6)
    lines["lambda GB-seconds"] = _line(
        prices, partition, f"lambda_gb_second_{load.lambda_architecture}", gb_seconds
    )
    lines["NAT gateway GB processed"] = _line(
        prices, partition, "nat_gateway_data_processed_gb", side["border"]["gb_out_per_month"]
    )
    lines["data transfer out GB"] = _line(
        prices, partition, "data_transfer_out_internet_gb", side["border"]["gb_out_per_month"]
    )
    known = sum(line["monthly"] for line in lines.values() if line["monthly"] is not None)
    missing = [name for name, line in lines.items() if line["monthly"] is None]
    return {
        "currency": prices.currency[partition],
        "lines": lines,
        "monthly_total": None if missing else round(known, 2),
        "monthly_known": round(known, 2),
        "missing": missing,
        "global_tables": {"replicated writes": gt, "monthly": gt["monthly"]},
    }


# -- text -----------------------------------------------------------------------------------------


def _money(value: float | None, currency: str) -> str:
    if value is None:
        return "unknown"
    return f"{currency} {value:,.2f}" if value >= 0.01 or value == 0 else f"{currency} {value:.2g}"


def render(document: dict[str, Any]) -> str:
    inputs = document["inputs"]
    rates = inputs["changes_per_second"]
    mix = ", ".join(f"{k} {v:.0%}" for k, v in inputs["mix"].items())
    cpu = document["measured"]["cpu_us_per_change"]
    out = [
        f"load: cn-north-1 {rates['cn']:g}/s, us-east-1 {rates['us']:g}/s changes; "
        f"items {inputs['item_bytes']:,} B "
        f"(keys {inputs['key_bytes']} B); mix {mix}; profile {inputs['latency_profile']}; inbox "
        f"{inputs['inbox_stream_mode']}; tables {inputs['billing_mode']}; "
        f"{inputs['bytes_per_change']} B per change on the wire "
        f"({document['measured']['compression_source']})",
        f"CPU per change: forwarder {cpu['forwarder']:g} us, replicator {cpu['replicator']:g} us "
        f"({document['measured']['cpu_source']})",
    ]
    for read in document.get("read_from_aws", {}).values():
        size = read["average_item_bytes"]
        out.append(
            f"read from {read['region']} table {read['table']}: {read['changes_per_second']:g} changes/s "
            f"on average over {read['period_hours']} h, "
            f"busiest hour {read['busiest_hour_changes_per_second']:g}/s "
            f"({read['metric']}); average item {'unknown' if size is None else f'{size:,} B'} (DescribeTable)"
        )
    out.append("")
    sides = document["sides"]
    rows = [
        ("forwarder changes per invocation", lambda s: s["forwarder"]["changes_per_invocation"]),
        ("forwarder invocations/s", lambda s: s["forwarder"]["invocations_per_second"]),
        (
            "forwarder duration ms / concurrency",
            lambda s: f"{s['forwarder']['duration_ms']} / {s['forwarder']['concurrency']}",
        ),
        (
            "Kinesis records sent/s (bytes each)",
            lambda s: f"{s['forwarder']['kinesis_records_per_second']} ({s['forwarder']['record_bytes']:,})",
        ),
        (
            "inbox shards (mode)",
            lambda s: f"{s['replicator']['inbox_shards']} ({s['replicator']['inbox_stream_mode']})",
        ),
        (
            "replicator batch size / records per invocation",
            lambda s: f"{s['replicator']['batch_size']} / {s['replicator']['records_per_invocation']}",
        ),
        ("replicator invocations/s", lambda s: s["replicator"]["invocations_per_second"]),
        (
            "replicator duration ms / concurrency",
            lambda s: f"{s['replicator']['duration_ms']} / {s['replicator']['concurrency']}",
        ),
        (
            "DynamoDB WCU/s + RCU/s added",
            lambda s: f"{s['dynamodb']['wcu_per_second']} + {s['dynamodb']['rcu_per_second']}",
        ),
        (
            "global tables: replicated WCU/s",
            lambda s: s["dynamodb"]["global_tables_replicated_wcu_per_second"],
        ),
        ("Kinesis PUT payload units/s (inbox)", lambda s: s["kinesis"]["put_payload_units_per_second"]),
        (
            "enhanced fan-out consumer-shard h/month",
            lambda s: s["kinesis"]["efo_consumer_shard_hours_per_month"],
        ),
        ("across the border GB/month (out)", lambda s: s["border"]["gb_out_per_month"]),
    ]
    width = max(len(label) for label, _ in rows) + 2
    out.append(f"{'per side':<{width}}{'cn-north-1':>22}{'us-east-1':>22}")
    for label, get in rows:
        out.append(f"{label:<{width}}{get(sides['cn'])!s:>22}{get(sides['us'])!s:>22}")
    per_change = document["per_change_forwarded"]
    out.append(
        f"per change forwarded (both sides): {per_change['bytes_per_change']} bytes, "
        f"{per_change['kinesis_records_per_change']} Kinesis records, "
        f"{per_change['invocations_per_change']} Lambda invocations"
    )
    out.append("")
    out.append(f"{'monthly cost':<{width}}{'cn-north-1 (CNY)':>22}{'us-east-1 (USD)':>22}")
    names = list(dict.fromkeys([*sides["cn"]["cost"]["lines"], *sides["us"]["cost"]["lines"]]))
    for name in names:
        cells = []
        for label in ("cn", "us"):
            line = sides[label]["cost"]["lines"].get(name)
            cells.append("" if line is None else _money(line["monthly"], ""))
        out.append(f"{name:<{width}}{cells[0].strip():>22}{cells[1].strip():>22}")
    totals = []
    for label in ("cn", "us"):
        cost = sides[label]["cost"]
        totals.append(
            _money(cost["monthly_total"], cost["currency"])
            if cost["monthly_total"] is not None
            else f">= {_money(cost['monthly_known'], cost['currency'])}"
            if cost["monthly_known"]
            else "unknown"
        )
    out.append(f"{'total':<{width}}{totals[0]:>22}{totals[1]:>22}")
    gt = [
        _money(sides[label]["cost"]["global_tables"]["monthly"], sides[label]["currency"])
        for label in ("cn", "us")
    ]
    out.append(f"{'global tables, same load, one partition':<{width}}{gt[0]:>22}{gt[1]:>22}")
    missing = {
        label: sides[label]["cost"]["missing"] for label in ("cn", "us") if sides[label]["cost"]["missing"]
    }
    if missing:
        out.append("")
        for label, names in missing.items():
            out.append(
                f"no price in {document['prices']} for {SIDES[label][0]}: {', '.join(names)} "
                "(give them with --prices FILE)"
            )
    out.append("")
    out.extend(f"note: {note}" for note in document["notes"])
    return "\n".join(out)


__all__ = [
    "DEFAULT_MIX",
    "MODULE_DEFAULTS",
    "PROTOCOL",
    "Load",
    "capacity_of_kind",
    "measured",
    "parse_mix",
    "plan",
    "render",
]
