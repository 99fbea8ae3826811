"""The load generator: fake user profiles written to both tables at once, like the baseline's loader.

Each side gets the same number of operations, paced at a fixed rate: inserts of new profiles,
updates of a few fields, deletes, and a share of deliberately conflicting writes where both sides
write the same key at the same moment (half of them with the very same timestamp, so that the
tie-breaker is exercised).

The version attributes are ``last_update_timestamp`` (a Number, epoch seconds) and
``last_updater_region``. Conflicting writes always set them from the generator's clock (microseconds,
strictly increasing), so that the oracle can order them. Writes to a side's own keys set them as real
applications do (docs/conflict-rules.md, "Versions" and "Writes without a newer version"), each
upsert drawn by ``LoadOptions``' shares:

- ``versioned``: the generator's clock;
- ``decimal-time``: ``Decimal(time.time())`` as is (31-32 significant digits), as the public sample's
  load generator writes it;
- ``unversioned``: no version at all, a ``PutItem`` without the version attributes, or an
  ``UpdateItem SET`` of a single field that leaves them as they are (the engine stamps both);
- ``string-timestamp`` and ``epoch-milliseconds``: invalid versions, a String timestamp (integration
  tools write those) or a timestamp in milliseconds (far beyond any allowed clock skew): the engine
  treats both as no version and stamps them, counting each reason.

Writes to one key from one side are serialised (one writer thread per key), as an application would
do; the two sides run independently. Each write is recorded with what DynamoDB returned (the old item
of puts and deletes, the new item of updates), which is what the oracle needs.
"""

from __future__ import annotations

import queue
import random
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Context, Decimal
from typing import Any

from faker import Faker

from replication_ops.local.config import (
    HASH_KEY,
    ORIGIN_ATTRIBUTE,
    RANGE_KEY,
    SIDE_NAMES,
    TIMESTAMP_ATTRIBUTE,
)

PUT = "put"
UPDATE = "update"
DELETE = "delete"

LOCALES = {"cn-north-1": ("zh_CN", "中国"), "us-east-1": ("en_US", "United States")}
UPDATED_FIELDS = ("email", "street_address", "city", "state", "zipcode")

# How an upsert sets the version attributes (Operation.style).
VERSIONED = "versioned"  # the generator's clock: microseconds, strictly increasing
DECIMAL_TIME = "decimal-time"  # Decimal(time.time()) as is
UNVERSIONED = "unversioned"  # no version: PutItem without it, UpdateItem SET of one field
STRING_TIMESTAMP = "string-timestamp"  # invalid: the timestamp as a String
EPOCH_MILLISECONDS = "epoch-milliseconds"  # invalid: far ahead of the clock
VALID_STYLES = (VERSIONED, DECIMAL_TIME)  # the styles that write a version the engine keeps
INVALID_STYLES = (STRING_TIMESTAMP, EPOCH_MILLISECONDS)

# What the report counts writes by (Write.kind).
WRITE_KINDS = (
    "versioned",
    "decimal_time",
    "unversioned_put",
    "unversioned_update",
    "invalid_version",
    DELETE,
)


@dataclass(frozen=True)
class LoadOptions:
    # 3,600 operations per side at 40/s: a 90 s load, so that the whole demo (Terraform of both sides
    # included) takes about three minutes on a 2-core machine.
    operations: int = 3600  # per side
    rate: float = 40.0  # operations per second, per side
    conflict_share: float = 0.1  # share of slots where both sides write the same key
    tie_share: float = 0.5  # share of conflicts written with the very same timestamp on both sides
    update_share: float = 0.35
    delete_share: float = 0.15
    # Of the upserts on a side's own keys (conflicting writes are always versioned by the clock):
    unversioned_share: float = 0.2  # no version (PutItem without it, UpdateItem SET of one field)
    decimal_time_share: float = 0.25  # Decimal(time.time()) as is
    invalid_version_share: float = 0.04  # a String timestamp or epoch milliseconds, half each
    threads: int = 4  # writer threads per side
    seed: int = 20240611

    def __post_init__(self) -> None:
        if self.operations < 1:
            raise ValueError("operations must be at least 1")
        if self.rate <= 0:
            raise ValueError("rate must be positive")
        for name in (
            "conflict_share",
            "tie_share",
            "update_share",
            "delete_share",
            "unversioned_share",
            "decimal_time_share",
            "invalid_version_share",
        ):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.update_share + self.delete_share > 1:
            raise ValueError("update_share + delete_share must not exceed 1")
        if self.unversioned_share + self.decimal_time_share + self.invalid_version_share > 1:
            raise ValueError(
                "unversioned_share + decimal_time_share + invalid_version_share must not exceed 1"
            )
        if self.threads < 1:
            raise ValueError("threads must be at least 1")

    @property
    def duration(self) -> float:
        return self.operations / self.rate


@dataclass(frozen=True)
class Operation:
    side: str
    at: float  # seconds after the start
    kind: str
    pk: str
    sk: str
    attributes: dict[str, Any]  # PUT: the whole profile; UPDATE: the fields set
    conflict: int | None = None  # the conflict slot shared with the other side
    tie: bool = False
    style: str = VERSIONED  # upserts: how the version attributes are set

    @property
    def versioned(self) -> bool:
        """The write sets a valid version of its own (else the engine gives it one, a stamp)."""
        return self.kind != DELETE and self.style in VALID_STYLES

    @property
    def key(self) -> dict[str, dict[str, str]]:
        return {HASH_KEY: {"S": self.pk}, RANGE_KEY: {"S": self.sk}}


def profile(fake: Faker, rng: random.Random, country: str) -> dict[str, str]:
    """A fake user profile of about 300 bytes, the baseline's fields."""
    sex = rng.choice(("F", "M"))
    first = fake.first_name_female() if sex == "F" else fake.first_name_male()
    return {
        "first_name": first,
        "last_name": fake.last_name(),
        "email": fake.email(),
        "sex": sex,
        "street_address": fake.street_address(),
        "state": fake.province() if hasattr(fake, "province") else fake.state(),
        "city": fake.city(),
        "zipcode": fake.postcode(),
        "country": country,
        "government_id": fake.ssn(),
    }


def _changed_fields(fake: Faker, rng: random.Random, country: str) -> dict[str, str]:
    moved = profile(fake, rng, country)
    count = rng.randint(1, len(UPDATED_FIELDS))
    return {name: moved[name] for name in rng.sample(UPDATED_FIELDS, count)}


def version_style(roll: float, half: bool, options: LoadOptions) -> str:
    """The style of an own-key upsert for a uniform ``roll`` in [0, 1) (``half``: which invalid one)."""
    if roll < options.unversioned_share:
        return UNVERSIONED
    roll -= options.unversioned_share
    if roll < options.decimal_time_share:
        return DECIMAL_TIME
    roll -= options.decimal_time_share
    if roll < options.invalid_version_share:
        return STRING_TIMESTAMP if half else EPOCH_MILLISECONDS
    return VERSIONED


def plan(options: LoadOptions) -> dict[str, list[Operation]]:
    """The operations of both sides (deterministic for a seed).

    Styles other than ``versioned`` go only to a side's own keys, which one writer thread of that
    side serialises: the oracle can then tell which write an engine stamp belongs to
    (``verify.oracle``). They are drawn from a random stream of their own, so the operations (kinds,
    keys, values) are those of the same seed whatever the shares."""
    rng = random.Random(options.seed)
    styles = random.Random(f"{options.seed}:version-styles")
    fakes = {}
    for index, side in enumerate(SIDE_NAMES):
        fake = Faker(LOCALES[side][0])
        fake.seed_instance(options.seed + index)
        fakes[side] = fake
    codes = {side: side.split("-")[0] for side in SIDE_NAMES}
    own_keys: dict[str, list[tuple[str, str]]] = {side: [] for side in SIDE_NAMES}
    counters: Counter[str] = Counter()
    shared_pool = max(4, round(options.operations * options.conflict_share / 3))
    shared_keys = [(f"user#shared-{n:05d}", "profile") for n in range(shared_pool)]
    operations: dict[str, list[Operation]] = {side: [] for side in SIDE_NAMES}

    def own_operation(side: str, at: float) -> Operation:
        keys = own_keys[side]
        roll = rng.random()
        country = LOCALES[side][1]
        if keys and roll < options.delete_share:
            pk, sk = keys.pop(rng.randrange(len(keys)))
            return Operation(side, at, DELETE, pk, sk, {})
        style = version_style(styles.random(), styles.random() < 0.5, options)
        if keys and roll < options.delete_share + options.update_share:
            pk, sk = rng.choice(keys)
            fields = _changed_fields(fakes[side], rng, country)
            if style == UNVERSIONED:  # an application's UpdateItem of one field, the version untouched
                fields = dict(list(fields.items())[:1])
            return Operation(side, at, UPDATE, pk, sk, fields, style=style)
        number = counters[side]
        counters[side] += 1
        pk, sk = f"user#{codes[side]}-{number // 2:06d}", ("profile", "settings")[number % 2]
        keys.append((pk, sk))
        return Operation(side, at, PUT, pk, sk, profile(fakes[side], rng, country), style=style)

    def conflict_operation(side: str, at: float, key: tuple[str, str], slot: int, tie: bool) -> Operation:
        roll = rng.random()
        country = LOCALES[side][1]
        if roll < options.delete_share:
            return Operation(side, at, DELETE, *key, {}, conflict=slot, tie=tie)
        if roll < options.delete_share + options.update_share:
            return Operation(
                side, at, UPDATE, *key, _changed_fields(fakes[side], rng, country), conflict=slot, tie=tie
            )
        return Operation(side, at, PUT, *key, profile(fakes[side], rng, country), conflict=slot, tie=tie)

    slot = 0
    for index in range(options.operations):
        at = index / options.rate
        if rng.random() < options.conflict_share:
            key = rng.choice(shared_keys)
            tie = rng.random() < options.tie_share
            for side in SIDE_NAMES:
                operations[side].append(conflict_operation(side, at, key, slot, tie))
            slot += 1
        else:
            for side in SIDE_NAMES:
                operations[side].append(own_operation(side, at))
    return operations


class VersionClock:
    """Strictly increasing microsecond timestamps, shared by both sides' writers (one machine clock)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> Decimal:
        with self._lock:
            micros = max(int(self._clock() * 1_000_000), self._last + 1)
            self._last = micros
        return (Decimal(micros) / Decimal(1_000_000)).normalize()


EXACT = Context(prec=100)


def format_number(value: Decimal) -> str:
    """Plain digits, zeros trimmed, exactly (DynamoDB's 38 digits; the default context has 28)."""
    return format(value.normalize(EXACT), "f")


def typed(attributes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, value in attributes.items():
        if isinstance(value, Decimal):
            out[name] = {"N": format_number(value)}
        elif isinstance(value, int | float):
            out[name] = {"N": str(value)}
        else:
            out[name] = {"S": str(value)}
    return out


@dataclass
class Write:
    """One operation as executed, with what DynamoDB said."""

    operation: Operation
    version: tuple[Decimal, str] | None  # the valid version written (upserts in VALID_STYLES)
    item: dict[str, Any] | None  # the item after the write (PUT: as sent; UPDATE: ALL_NEW)
    old: dict[str, Any] | None  # the item it replaced or removed (PUT/DELETE: ALL_OLD)
    started: float
    finished: float
    error: str | None = None

    @property
    def side(self) -> str:
        return self.operation.side

    @property
    def kind(self) -> str:
        """What the report counts the write as (one of WRITE_KINDS)."""
        op = self.operation
        if op.kind == DELETE:
            return DELETE
        if op.style == UNVERSIONED:
            return f"unversioned_{op.kind}"
        if op.style in INVALID_STYLES:
            return "invalid_version"
        return "decimal_time" if op.style == DECIMAL_TIME else "versioned"

    @property
    def key(self) -> str:
        from replication_ops.local.watcher import key_of

        return key_of(self.operation.key)


@dataclass
class LoadResult:
    writes: list[Write] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    def by_side(self, side: str) -> list[Write]:
        return [w for w in self.writes if w.side == side]

    def counts(self, side: str) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for write in self.by_side(side):
            if write.error:
                counts["errors"] += 1
            elif write.operation.kind == DELETE and not write.old:
                counts["delete_noop"] += 1
            else:
                counts[write.operation.kind] += 1
            if write.operation.conflict is not None and not write.error:
                counts["conflicting"] += 1
        return dict(counts)

    def by_kind(self, side: str) -> dict[str, int]:
        """Acknowledged writes of a side by WRITE_KINDS (a delete of nothing included)."""
        counts = Counter(w.kind for w in self.by_side(side) if not w.error)
        return {kind: counts.get(kind, 0) for kind in WRITE_KINDS}

    def changes(self, side: str) -> int:
        """Writes that changed the table (a delete of a missing item changes nothing)."""
        return sum(
            1 for w in self.by_side(side) if not w.error and not (w.operation.kind == DELETE and not w.old)
        )


class LoadGenerator:
    def __init__(
        self,
        clients: dict[str, Any],
        table: str,
        options: LoadOptions,
        *,
        progress: bool = True,
        clock: VersionClock | None = None,
    ) -> None:
        self._clients = clients  # side -> DynamoDB client
        self._table = table
        self._options = options
        self._progress = progress
        self._clock = clock or VersionClock()
        self._tie_versions: dict[int, Decimal] = {}
        self._tie_lock = threading.Lock()
        self._results: list[Write] = []
        self._results_lock = threading.Lock()
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self, operations: dict[str, list[Operation]] | None = None) -> LoadResult:
        operations = operations or plan(self._options)
        total = sum(len(ops) for ops in operations.values())
        bar = _progress_bar(total, self._progress)
        threads: list[threading.Thread] = []
        start = time.time() + 0.2
        for side, ops in operations.items():
            queues: list[queue.Queue[Operation | None]] = [
                queue.Queue() for _ in range(self._options.threads)
            ]
            for q in queues:
                thread = threading.Thread(
                    target=self._writer, args=(q, bar), daemon=True, name=f"load-{side}"
                )
                thread.start()
                threads.append(thread)
            pacer = threading.Thread(
                target=self._pace, args=(ops, queues, start), daemon=True, name=f"pace-{side}"
            )
            pacer.start()
            threads.append(pacer)
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.5)
        except KeyboardInterrupt:
            self._stop.set()
            raise
        finally:
            bar.close()
        writes = sorted(self._results, key=lambda w: w.started)
        return LoadResult(writes, start, max((w.finished for w in writes), default=start))

    def _pace(self, ops: list[Operation], queues: list[queue.Queue[Operation | None]], start: float) -> None:
        for op in ops:
            delay = start + op.at - time.time()
            if delay > 0 and self._stop.wait(delay):
                break
            if self._stop.is_set():
                break
            queues[zlib.crc32(f"{op.pk}\x00{op.sk}".encode()) % len(queues)].put(op)
        for q in queues:
            q.put(None)

    def _writer(self, ops: queue.Queue[Operation | None], bar: Any) -> None:
        while True:
            op = ops.get()
            if op is None:
                return
            write = self._execute(op)
            with self._results_lock:
                self._results.append(write)
            bar.update(1)

    def _version(self, op: Operation) -> Decimal:
        if op.conflict is not None and op.tie:
            with self._tie_lock:
                if op.conflict not in self._tie_versions:
                    self._tie_versions[op.conflict] = self._clock.next()
                return self._tie_versions[op.conflict]
        return self._clock.next()

    def _version_values(self, op: Operation) -> dict[str, Any]:
        """The version attributes the upsert sets, as its style writes them (none: unversioned)."""
        if op.style == UNVERSIONED:
            return {}
        now = time.time()
        timestamp: Decimal | str
        if op.style == DECIMAL_TIME:
            timestamp = Decimal(now)  # the float's exact binary value: 31-32 significant digits
        elif op.style == STRING_TIMESTAMP:
            timestamp = str(int(now))  # a String: no version, whatever it says
        elif op.style == EPOCH_MILLISECONDS:
            timestamp = Decimal(int(now * 1000))
        else:
            timestamp = self._version(op)
        return {TIMESTAMP_ATTRIBUTE: timestamp, ORIGIN_ATTRIBUTE: op.side}

    def _execute(self, op: Operation) -> Write:
        client = self._clients[op.side]
        started = time.time()
        try:
            if op.kind == DELETE:
                response = client.delete_item(TableName=self._table, Key=op.key, ReturnValues="ALL_OLD")
                return Write(op, None, None, response.get("Attributes"), started, time.time())
            version_values = self._version_values(op)
            version = (version_values[TIMESTAMP_ATTRIBUTE], op.side) if op.versioned else None
            if op.kind == PUT:
                item = {**op.key, **typed(op.attributes), **typed(version_values)}
                response = client.put_item(TableName=self._table, Item=item, ReturnValues="ALL_OLD")
                return Write(op, version, item, response.get("Attributes"), started, time.time())
            values = {**op.attributes, **version_values}
            names = {f"#a{i}": name for i, name in enumerate(values)}
            response = client.update_item(
                TableName=self._table,
                Key=op.key,
                UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values))),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={f":v{i}": v for i, v in enumerate(typed(values).values())},
                ReturnValues="ALL_NEW",
            )
            return Write(op, version, response.get("Attributes"), None, started, time.time())
        except Exception as error:
            return Write(op, None, None, None, started, time.time(), error=f"{type(error).__name__}: {error}")


def _progress_bar(total: int, enabled: bool) -> Any:
    if enabled:
        import sys

        from tqdm import tqdm

        # On a terminal the bar redraws in place; in a log file, a line every 10 s is enough.
        interval = 0.1 if sys.stderr.isatty() else 10.0
        return tqdm(
            total=total, desc="writes (both sides)", unit="write", smoothing=0.1, mininterval=interval
        )

    class _Silent:
        def update(self, _n: int) -> None:
            pass

        def close(self) -> None:
            pass

    return _Silent()
