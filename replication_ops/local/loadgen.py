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

Every table of the demo (``config.DEMO_TABLES``) gets this mix: each slot goes to the next table in
turn. A table with cn-north-1 residency rules (``DemoTable.cn_residency``: ``profiles``) gets
``residency`` on every upsert that may be exported, ``GLOBAL``: both sides' puts and updates of
shared keys and us-east-1's own. cn-north-1's own puts there are ``CN-ONLY`` by
``LoadOptions.cn_only_share`` and carry the run's canary (``LoadOptions.canary``) in
``national_id`` (every one) and, ``CN-ONLY``, in ``restricted_note``; a share of its own-key updates
(``residency_toggle_share``) toggles the item between ``GLOBAL`` (the note removed) and
``CN-ONLY`` (the note set). Only cn-north-1's own keys are ever restricted: a key both sides write
must stay exportable, or the peer's older copy of it would stay there (a restricted write sends
nothing, docs/residency.md).

Writes to one key from one side are serialised (one writer thread per key), as an application would
do; the two sides run independently. Each write is recorded with what DynamoDB returned (the old item
of puts and deletes, the new item of updates), which is what the oracle needs.
"""

from __future__ import annotations

import queue
import random
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Context, Decimal
from typing import Any

from faker import Faker

from replication_ops.local.config import (
    DEMO_TABLES,
    ORIGIN_ATTRIBUTE,
    PROFILES,
    RESIDENCY_ATTRIBUTE,
    SIDE_NAMES,
    TIMESTAMP_ATTRIBUTE,
    DemoTable,
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

# The residency of a profiles item (docs/residency.md's example: what may leave cn-north-1).
GLOBAL = "GLOBAL"
CN_ONLY = "CN-ONLY"
RESTRICTED_SIDE = "cn-north-1"  # the side whose rules restrict (DemoTable.cn_residency)
NATIONAL_ID = "national_id"
RESTRICTED_NOTE = "restricted_note"  # the canary in a CN-ONLY item, outside the excluded attributes

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
    # Tables with cn-north-1 residency rules (profiles): cn-north-1's own puts written CN-ONLY, its
    # own-key updates that toggle GLOBAL <-> CN-ONLY; the canary of this run (never on the us side).
    cn_only_share: float = 0.3
    residency_toggle_share: float = 0.3
    canary: str = field(default_factory=lambda: f"canary-{uuid.uuid4().hex}")

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
            "cn_only_share",
            "residency_toggle_share",
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
    table: DemoTable = PROFILES
    removed: tuple[str, ...] = ()  # UPDATE: the attributes it removes

    @property
    def versioned(self) -> bool:
        """The write sets a valid version of its own (else the engine gives it one, a stamp)."""
        return self.kind != DELETE and self.style in VALID_STYLES

    @property
    def key(self) -> dict[str, dict[str, Any]]:
        return self.table.key(self.pk, self.sk)


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


def plan(options: LoadOptions, tables: tuple[DemoTable, ...] = DEMO_TABLES) -> dict[str, list[Operation]]:
    """The operations of both sides (deterministic for a seed), slot by slot over ``tables`` in turn.

    Styles other than ``versioned`` go only to a side's own keys, which one writer thread of that
    side serialises: the oracle can then tell which write an engine stamp belongs to
    (``verify.oracle``). They are drawn from a random stream of their own, so the operations (kinds,
    keys, values) are those of the same seed whatever the shares. A number key is digits: the side's
    number (1, 2) or 9 (shared keys) before the key's own; a hash-only key has no ``sk``."""
    return _Planner(options, tables).operations()


class _Planner:
    def __init__(self, options: LoadOptions, tables: tuple[DemoTable, ...]) -> None:
        self.options = options
        self.tables = tables
        self.rng = random.Random(options.seed)
        self.styles = random.Random(f"{options.seed}:version-styles")
        self.residency = random.Random(f"{options.seed}:residency")
        self.fakes = {}
        for index, side in enumerate(SIDE_NAMES):
            fake = Faker(LOCALES[side][0])
            fake.seed_instance(options.seed + index)
            self.fakes[side] = fake
        self.own_keys: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self.restricted: set[tuple[str, str, str]] = set()  # (table, pk, sk) of cn-north-1's CN-ONLY items
        self.counters: Counter[tuple[str, str]] = Counter()
        pool = max(4, round(options.operations * options.conflict_share / 3 / len(tables)))
        self.shared_keys = {table.name: [_shared_key(table, n) for n in range(pool)] for table in tables}

    def operations(self) -> dict[str, list[Operation]]:
        operations: dict[str, list[Operation]] = {side: [] for side in SIDE_NAMES}
        slot = 0
        for index in range(self.options.operations):
            at = index / self.options.rate
            table = self.tables[index % len(self.tables)]
            if self.rng.random() < self.options.conflict_share:
                key = self.rng.choice(self.shared_keys[table.name])
                tie = self.rng.random() < self.options.tie_share
                for side in SIDE_NAMES:
                    operations[side].append(self.conflict(side, at, table, key, (slot, tie)))
                slot += 1
            else:
                for side in SIDE_NAMES:
                    operations[side].append(self.own(side, at, table))
        return operations

    def own_key(self, side: str, table: DemoTable) -> tuple[str, str]:
        number = self.counters[(side, table.name)]
        self.counters[(side, table.name)] += 1
        code = side.split("-", maxsplit=1)[0]
        if table.hash_key[1] == "N":
            return f"{SIDE_NAMES.index(side) + 1}{number:09d}", ""
        if not table.range_key:
            return f"user#{code}-{number:06d}", ""
        return f"user#{code}-{number // 2:06d}", ("profile", "settings")[number % 2]

    def own(self, side: str, at: float, table: DemoTable) -> Operation:
        options, rng = self.options, self.rng
        keys = self.own_keys.setdefault((side, table.name), [])
        roll = rng.random()
        country = LOCALES[side][1]
        if keys and roll < options.delete_share:
            pk, sk = keys.pop(rng.randrange(len(keys)))
            self.restricted.discard((table.name, pk, sk))
            return Operation(side, at, DELETE, pk, sk, {}, table=table)
        style = version_style(self.styles.random(), self.styles.random() < 0.5, options)
        if keys and roll < options.delete_share + options.update_share:
            pk, sk = rng.choice(keys)
            fields = _changed_fields(self.fakes[side], rng, country)
            if style == UNVERSIONED:  # an application's UpdateItem of one field, the version untouched
                fields = dict(list(fields.items())[:1])
            removed: tuple[str, ...] = ()
            if table.cn_residency is not None:
                removed = self.residency_of_update(side, (table.name, pk, sk), fields)
            return Operation(side, at, UPDATE, pk, sk, fields, style=style, table=table, removed=removed)
        pk, sk = self.own_key(side, table)
        keys.append((pk, sk))
        attributes: dict[str, Any] = profile(self.fakes[side], rng, country)
        if table.cn_residency is not None:
            attributes.update(self.residency_of_put(side, (table.name, pk, sk)))
        return Operation(side, at, PUT, pk, sk, attributes, style=style, table=table)

    def conflict(
        self, side: str, at: float, table: DemoTable, key: tuple[str, str], slot: tuple[int, bool]
    ) -> Operation:
        roll = self.rng.random()
        country = LOCALES[side][1]
        number, tie = slot
        if roll < self.options.delete_share:
            return Operation(side, at, DELETE, *key, {}, conflict=number, tie=tie, table=table)
        if roll < self.options.delete_share + self.options.update_share:
            kind, attributes = UPDATE, _changed_fields(self.fakes[side], self.rng, country)
        else:
            kind, attributes = PUT, profile(self.fakes[side], self.rng, country)
        if table.cn_residency is not None:  # a key both sides write stays exportable
            attributes[RESIDENCY_ATTRIBUTE] = GLOBAL
        return Operation(side, at, kind, *key, attributes, conflict=number, tie=tie, table=table)

    def residency_of_put(self, side: str, key: tuple[str, str, str]) -> dict[str, str]:
        """The residency attributes of a new item of a table with rules: cn-north-1's carry the canary
        in ``national_id``, and a share of them are ``CN-ONLY`` with the canary in ``restricted_note``."""
        if side != RESTRICTED_SIDE:
            return {RESIDENCY_ATTRIBUTE: GLOBAL}
        canary = self.options.canary
        attributes = {RESIDENCY_ATTRIBUTE: GLOBAL, NATIONAL_ID: f"{canary}-{key[1]}-{key[2]}"}
        if self.residency.random() < self.options.cn_only_share:
            attributes.update({RESIDENCY_ATTRIBUTE: CN_ONLY, RESTRICTED_NOTE: canary})
            self.restricted.add(key)
        return attributes

    def residency_of_update(
        self, side: str, key: tuple[str, str, str], fields: dict[str, Any]
    ) -> tuple[str, ...]:
        """Sets an own-key update's residency attributes in ``fields``; returns the attributes it
        removes. A share of cn-north-1's toggle the item between GLOBAL (the note removed) and CN-ONLY
        (the note set); the others, and us-east-1's, leave it as it was (their items were put with
        it)."""
        if side != RESTRICTED_SIDE or self.residency.random() >= self.options.residency_toggle_share:
            return ()
        fields.clear()
        if key in self.restricted:
            self.restricted.discard(key)
            fields[RESIDENCY_ATTRIBUTE] = GLOBAL
            return (RESTRICTED_NOTE,)
        self.restricted.add(key)
        fields.update({RESIDENCY_ATTRIBUTE: CN_ONLY, RESTRICTED_NOTE: self.options.canary})
        return ()


def _shared_key(table: DemoTable, number: int) -> tuple[str, str]:
    if table.hash_key[1] == "N":
        return f"9{number:09d}", ""
    return f"user#shared-{number:05d}", "profile" if table.range_key else ""


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

    def of_table(self, name: str) -> LoadResult:
        """The writes to one logical table."""
        writes = [w for w in self.writes if w.operation.table.name == name]
        return LoadResult(writes, self.started, self.finished)

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
        tables: dict[str, str],
        options: LoadOptions,
        *,
        progress: bool = True,
        clock: VersionClock | None = None,
    ) -> None:
        self._clients = clients  # side -> DynamoDB client
        self._tables = tables  # logical table -> its DynamoDB table (the same on both sides)
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
        tables = tuple(t for t in DEMO_TABLES if t.name in self._tables)
        operations = operations or plan(self._options, tables)
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
            queues[zlib.crc32(f"{op.table.name}\x00{op.pk}\x00{op.sk}".encode()) % len(queues)].put(op)
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
        table = self._tables[op.table.name]
        started = time.time()
        try:
            if op.kind == DELETE:
                response = client.delete_item(TableName=table, Key=op.key, ReturnValues="ALL_OLD")
                return Write(op, None, None, response.get("Attributes"), started, time.time())
            version_values = self._version_values(op)
            version = (version_values[TIMESTAMP_ATTRIBUTE], op.side) if op.versioned else None
            if op.kind == PUT:
                item = {**op.key, **typed(op.attributes), **typed(version_values)}
                response = client.put_item(TableName=table, Item=item, ReturnValues="ALL_OLD")
                return Write(op, version, item, response.get("Attributes"), started, time.time())
            values = {**op.attributes, **version_values}
            names = {f"#a{i}": name for i, name in enumerate(values)}
            names.update({f"#r{i}": name for i, name in enumerate(op.removed)})
            expression = "SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values)))
            if op.removed:
                expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(op.removed)))
            response = client.update_item(
                TableName=table,
                Key=op.key,
                UpdateExpression=expression,
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
