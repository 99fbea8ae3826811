"""The wire format: what a forwarder puts into the peer's inbox (see docs/wire-format.md).

A Kinesis record's data is ``b"DR" | format version (1 byte) | codec (1 byte) | compressed body``.
The body is compact JSON: a header (kind, origin, sender table, logical table, version attribute
names, send time) and, for ``changes``, many changes of that table, so one record carries a whole
stream batch.

Versioning (docs/wire-format.md, "Versions"): the header's format version changes only when an older
reader would misread a record; a body field an older reader may ignore and stay correct is added in
the same version, and a reader handles its absence explicitly. The logical table name ``n`` is such a
field: an older replicator ignores it and checks ``t`` (its one peer table), and a record without it
(from an older forwarder) is routed by ``t`` (``Envelope.name`` is None). So is ``sc``, the changes'
stream record seconds (``stream_created_runs``): an older reader ignores it, and without it a change's
``stream_created`` is None (its lag then starts at its version timestamp: ``replication.lag``).
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from replication.changes import Change
from replication.errors import BodyTooLargeError, ConfigurationError, WireFormatError
from replication.keys import key_digest, without_key
from replication.limits import number_problem
from replication.settings import VersionAttributes
from replication.typed_values import validate_item
from replication.versions import Version, format_timestamp, version_of

MAGIC = b"DR"
FORMAT_VERSION = 1
CODEC_ZLIB = 1
HEADER_BYTES = len(MAGIC) + 2
KIND_CHANGES = "changes"
KIND_PROBE = "probe"
# A forwarder packs the changes of one invocation, and Lambda passes a function at most 6 MB of event
# ("up to the payload limit for synchronous invocation (6 MB)", Lambda API reference,
# EventSourceMappingConfiguration.BatchSize); a body is smaller than the stream records it comes from
# (no old image, keys once, UTF-8 unescaped): no forwarder's body is larger than this.
FORWARDER_BODY_BYTES = 6 * 1024 * 1024
# What one record's body may inflate to: anything larger is not from a forwarder. A reader may bound it
# lower (the replicator does, by its memory).
MAX_BODY_BYTES = 8 * 1024 * 1024
# Kinesis counts the partition key with the data against the record size limit ("The record size limit
# applies to the total size of the partition key and data blob", Kinesis API reference, PutRecords).
# The partition key is ``key_digest`` of the record's first change: 64 hexadecimal characters.
PARTITION_KEY_BYTES = 2 * hashlib.sha256().digest_size
# zlib's default level, chosen by measuring bytes against CPU on the forwarder's bodies
# (scripts/bench_cpu.py, ``zlib_levels``; docs/wire-format.md, Sizes): on items of 4 KB and more,
# levels 6 and 9 give the same bytes and 9 costs more CPU; on ~300-byte profiles 9 saves about 3 bytes
# a change (3%) for more than twice the CPU, and levels 1 and 3 send 10-20% more bytes, which cost
# more across the partition border (data transfer out and NAT processing) than the CPU they save.
ZLIB_LEVEL = 6
# When a run of changes does not fit one record, it is split into runs whose JSON is at most this
# share of what the run's measured compression ratio lets fit, so that each run fits at the first try.
SPLIT_MARGIN = 0.9
# JSON bytes compressed to estimate a run's compression ratio before compressing all of it: twice
# zlib's 32 KB window, so the estimate sees matches as the whole run's compression does.
SAMPLE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Envelope:
    kind: str
    origin: str
    table: str  # the sender's DynamoDB table
    version_attributes: VersionAttributes
    sent_at_ms: int
    changes: tuple[Change, ...] = ()
    probe_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Changes of a decoded record that are malformed: (position in the record's changes, reason). The
    # valid ones are in ``changes``, in order, at the other positions.
    refused: tuple[tuple[int, str], ...] = ()
    # The logical table (``n``): the name both sides give the table in their table maps. None only in a
    # record from a forwarder older than the table map; the replicator then routes it by ``table``.
    name: str | None = None


def encode(envelope: Envelope) -> bytes:
    if envelope.kind == KIND_PROBE:
        return _frame(_json({**_header(envelope), "p": envelope.probe_id}))
    return _frame(
        _changes_body(
            _changes_prefix(envelope), [_json(_encode_change(c)) for c in envelope.changes], envelope.changes
        )
    )


def _header(envelope: Envelope) -> dict[str, Any]:
    return {
        "k": envelope.kind,
        "o": envelope.origin,
        "t": envelope.table,
        **({"n": envelope.name} if envelope.name is not None else {}),
        "va": [envelope.version_attributes.timestamp, envelope.version_attributes.origin],
        "at": envelope.sent_at_ms,
    }


# ``json.dumps(value, separators=(",", ":"), ensure_ascii=False)``, its encoder made once (issue 13).
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _json(value: Any) -> bytes:
    return _COMPACT.encode(value).encode("utf-8")


def _changes_prefix(envelope: Envelope) -> bytes:
    """The body of a changes record up to its first change: the header, then ``"c":[`` (``c`` last)."""
    return _json(_header(envelope))[:-1] + b',"c":['


def _changes_body(prefix: bytes, encoded: Sequence[bytes], changes: Sequence[Change]) -> bytes:
    """A changes body from its prefix and its changes, each already JSON: each change is encoded once,
    however many records are tried for it (``pack_changes``). The changes' stream seconds (``sc``,
    ``stream_created_runs``) follow ``c``: they belong to the record's own changes."""
    runs = stream_created_runs(changes)
    suffix = b',"sc":' + _json(runs) if runs else b""
    return prefix + b",".join(encoded) + b"]" + suffix + b"}"


def _frame(raw: bytes) -> bytes:
    return MAGIC + bytes([FORMAT_VERSION, CODEC_ZLIB]) + zlib.compress(raw, ZLIB_LEVEL)


def stream_created_runs(changes: Sequence[Change]) -> list[list[int]]:
    """The changes' stream record seconds (``Change.stream_created``) as runs ``[second, count]`` in
    change order: a stream batch spans few seconds, so a record carries a few runs, not a time per
    change. Empty unless every change has one (the field is then left out)."""
    runs: list[list[int]] = []
    for change in changes:
        if change.stream_created is None:
            return []
        if runs and runs[-1][0] == change.stream_created:
            runs[-1][1] += 1
        else:
            runs.append([change.stream_created, 1])
    return runs


def _stream_created(runs: Any, count: int) -> list[int | None]:
    """Each change's stream record second from ``sc`` (``stream_created_runs``). A missing or
    malformed ``sc`` (runs of anything but two positive whole numbers, or not covering exactly the
    record's changes) gives None for all: it only times the changes, so it never refuses them."""
    unknown: list[int | None] = [None] * count
    if not isinstance(runs, list):
        return unknown
    seconds: list[int | None] = []
    for run in runs:
        if not (
            isinstance(run, list)
            and len(run) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in run)
        ):
            return unknown
        seconds.extend([run[0]] * run[1])
        if len(seconds) > count:
            return unknown
    return seconds if len(seconds) == count else unknown


def _encode_change(change: Change) -> list[Any]:
    if change.item is None:
        return [change.key, format_timestamp(change.version.timestamp), change.version.origin]
    # An upsert's version is read back from its own version attributes: not sent twice.
    return [change.key, without_key(change.item, change.key)]


def decode(data: bytes, *, max_body_bytes: int = MAX_BODY_BYTES) -> Envelope:
    """Decode and validate one record.

    Raises WireFormatError (a poison message) when the record as a whole cannot be read: bad header,
    corrupt compression, a body inflating beyond ``max_body_bytes`` (checked while inflating: no more
    is ever inflated) or nested deeper than the JSON decoder's recursion limit, a bad envelope. A
    malformed change inside a good record is returned in ``Envelope.refused`` instead, so the other
    changes of the record can still be applied.
    """
    return decode_body(inflate(data, max_body_bytes=max_body_bytes))


def inflate(data: bytes, *, max_body_bytes: int = MAX_BODY_BYTES) -> bytes:
    """The body of a record, inflated: checks the header and inflates at most ``max_body_bytes``."""
    if len(data) < HEADER_BYTES or data[:2] != MAGIC:
        raise WireFormatError("not a replication record (bad magic bytes)")
    if data[2] != FORMAT_VERSION:
        raise WireFormatError(
            f"unsupported format version {data[2]} (this replicator reads {FORMAT_VERSION})"
        )
    if data[3] != CODEC_ZLIB:
        raise WireFormatError(f"unknown codec {data[3]}")
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(data[HEADER_BYTES:], max_body_bytes)
    except zlib.error as error:
        raise WireFormatError(f"corrupt compressed body: {error}") from None
    if inflater.unconsumed_tail:
        raise BodyTooLargeError(f"body inflates beyond {max_body_bytes:,} bytes")
    if not inflater.eof:
        raise WireFormatError("truncated compressed body")
    return raw


def decode_body(raw: bytes) -> Envelope:
    """Decode an inflated body (see ``decode``)."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WireFormatError(f"body is not JSON: {error.__class__.__name__}") from None
    except RecursionError:
        # The C decoder counts its nesting against the interpreter's recursion limit and stops there,
        # having built no more than that many containers: a cheap, exact bound on depth.
        raise WireFormatError("body nests deeper than the JSON decoder's recursion limit") from None
    return _envelope_from_body(body)


def _envelope_from_body(body: Any) -> Envelope:
    if not isinstance(body, dict):
        raise WireFormatError("body is not an object")
    kind, origin, table, names, sent_at = (body.get(f) for f in ("k", "o", "t", "va", "at"))
    if kind not in (KIND_CHANGES, KIND_PROBE):
        raise WireFormatError(f"unknown message kind {kind!r}")
    if not isinstance(origin, str) or not origin or not isinstance(table, str) or not table:
        raise WireFormatError("origin and table must be non-empty strings")
    if not (isinstance(names, list) and len(names) == 2 and all(isinstance(n, str) and n for n in names)):
        raise WireFormatError("version attribute names missing")
    if not isinstance(sent_at, int) or isinstance(sent_at, bool):
        raise WireFormatError("send time missing")
    name = body.get("n")
    if name is not None and (not isinstance(name, str) or not name):
        raise WireFormatError("the logical table name, when present, must be a non-empty string")
    version_attributes = VersionAttributes(names[0], names[1])
    if kind == KIND_PROBE:
        probe_id = body.get("p")
        if not isinstance(probe_id, str) or not probe_id:
            raise WireFormatError("probe without an id")
        return Envelope(kind, origin, table, version_attributes, sent_at, probe_id=probe_id, name=name)
    entries = body.get("c")
    if not isinstance(entries, list) or not entries:
        raise WireFormatError("a changes message carries no changes")
    changes: list[Change] = []
    refused: list[tuple[int, str]] = []
    created = _stream_created(body.get("sc"), len(entries))
    for index, entry in enumerate(entries):
        try:
            changes.append(_decode_change(entry, version_attributes, f"change[{index}]", created[index]))
        except WireFormatError as error:
            refused.append((index, str(error)))
    return Envelope(
        kind,
        origin,
        table,
        version_attributes,
        sent_at,
        changes=tuple(changes),
        refused=tuple(refused),
        name=name,
    )


def _decode_change(entry: Any, names: VersionAttributes, where: str, created: int | None = None) -> Change:
    if not isinstance(entry, list) or len(entry) not in (2, 3):
        raise WireFormatError(f"{where}: expected [key, attributes] or [key, timestamp, origin]")
    key = validate_item(entry[0], f"{where}.key")
    if len(key) > 2:
        raise WireFormatError(f"{where}: a key has one or two attributes")
    if len(entry) == 3:
        problem = number_problem(entry[1])
        if problem is not None or not isinstance(entry[2], str) or not entry[2]:
            detail = f" (version timestamp: {problem})" if problem else ""
            raise WireFormatError(f"{where}: malformed delete version{detail}")
        timestamp = Decimal(entry[1])
        return Change(key, Version(timestamp, entry[2], True), stream_created=created)
    attributes = entry[1]
    if not isinstance(attributes, dict):
        raise WireFormatError(f"{where}: attributes must be a map")
    item = validate_item({**attributes, **key}, f"{where}.item")
    version = version_of(item, names)
    if version is None:
        raise WireFormatError(f"{where}: upsert without its version attributes")
    return Change(key, version, item, created)


def now_ms() -> int:
    return int(time.time() * 1000)


def pack_changes(
    changes: Sequence[Change],
    *,
    origin: str,
    table: str,
    name: str,
    version_attributes: VersionAttributes,
    max_record_bytes: int,
) -> list[tuple[bytes, range]]:
    """Encode changes into as few records as fit ``max_record_bytes``; each record covers a
    contiguous range of ``changes`` (so a failed record maps back to the stream records it holds).
    ``table`` is the sender's DynamoDB table, ``name`` its logical name (the same on both sides).

    ``max_record_bytes`` is the inbox's record size limit, which Kinesis applies to the data and the
    partition key together: each record's data is at most ``max_record_bytes - PARTITION_KEY_BYTES``,
    so with its partition key (``partition_key``) it fits.

    Raises ConfigurationError for a single change that cannot fit a record on its own (the limit is
    set below what a DynamoDB item can need).
    """
    max_data_bytes = max_record_bytes - PARTITION_KEY_BYTES
    prefix = _changes_prefix(Envelope(KIND_CHANGES, origin, table, version_attributes, now_ms(), name=name))
    # Linear in bytes: each change is encoded to JSON once; a run whose JSON is larger than a record
    # is cut before it is compressed if a sample of it says it cannot fit, and a run that still does
    # not fit is split by the changes' JSON sizes and its measured compression ratio (not halved and
    # re-encoded). Runs cut to fit are compressed once each.
    encoded = [_json(_encode_change(change)) for change in changes]
    records: list[tuple[bytes, range]] = []
    pending: list[tuple[range, bool]] = [(range(0, len(changes)), False)] if changes else []
    while pending:
        span, sized = pending.pop(0)
        sizes = [len(encoded[i]) + 1 for i in span]
        json_bytes = len(prefix) + sum(sizes)
        if not sized and len(span) > 1 and json_bytes > max_data_bytes:
            ratio = _sampled_ratio(encoded[span.start : span.stop])
            if json_bytes * ratio > max_data_bytes * SPLIT_MARGIN:
                budget = max_data_bytes * SPLIT_MARGIN / ratio
                pending[:0] = [(run, True) for run in _runs(span, sizes, budget)]
                continue
        raw = _changes_body(prefix, encoded[span.start : span.stop], changes[span.start : span.stop])
        data = _frame(raw)
        if len(data) <= max_data_bytes:
            records.append((data, span))
            continue
        if len(span) == 1:
            raise ConfigurationError(
                f"one change compresses to {len(data)} bytes, above the inbox record limit of "
                f"{max_record_bytes} bytes with its {PARTITION_KEY_BYTES}-byte partition key "
                "(raise MAX_RECORD_BYTES with the stream's max record size)"
            )
        budget = max_data_bytes * SPLIT_MARGIN * len(raw) / len(data)
        pending[:0] = [(run, True) for run in _runs(span, sizes, budget)]
    return records


def _sampled_ratio(encoded: Sequence[bytes]) -> float:
    """Compressed bytes per JSON byte of the first ``SAMPLE_BYTES`` of these changes, at the records'
    zlib level (a run's changes are alike more often than not; a wrong guess costs one more try)."""
    sample = bytearray()
    for change in encoded:
        sample += change + b","
        if len(sample) >= SAMPLE_BYTES:
            break
    del sample[SAMPLE_BYTES:]
    return len(zlib.compress(bytes(sample), ZLIB_LEVEL)) / len(sample)


def _runs(span: range, sizes: list[int], budget: float) -> list[range]:
    """``span`` cut into contiguous runs of at most ``budget`` bytes of JSON each (a change larger than
    that alone); at least two runs, so that splitting always progresses."""
    runs: list[range] = []
    start, total = span.start, 0
    for offset, size in enumerate(sizes):
        index = span.start + offset
        if index > start and total + size > budget:
            runs.append(range(start, index))
            start, total = index, 0
        total += size
    runs.append(range(start, span.stop))
    if len(runs) == 1:  # the estimate said it fits, the measurement did not: halve
        middle = span.start + len(span) // 2
        runs = [range(span.start, middle), range(middle, span.stop)]
    return runs


def partition_key(change: Change) -> str:
    """The Kinesis partition key of a record whose first change is ``change`` (PARTITION_KEY_BYTES long)."""
    return key_digest(change.key)


def chunk(items: Iterable[Any], size: int) -> list[list[Any]]:
    batch: list[Any] = []
    out: list[list[Any]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            out.append(batch)
            batch = []
    if batch:
        out.append(batch)
    return out
