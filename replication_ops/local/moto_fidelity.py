"""How our moto differs from stock moto 5.2.5, and why: each patch makes moto do what AWS documents.

The project's tests and its local environment run on moto, and moto is more lenient than DynamoDB
exactly where the engine's faults hid (issue 9). This module is the one list of the differences. It
is applied in both worlds: the moto servers of the local environment (``moto_launcher``) and the
in-process ``mock_aws`` of the test suite (``tests/conftest.py``). Each patch has a test that shows
the documented behaviour in both (``tests/local/test_moto_fidelity.py``; 8 and 9 through the launcher
in ``tests/local/test_partitions.py``).

DynamoDB (developer guide, "DG"; API reference, "API"):

1. Numbers are stored normalized (leading and trailing zeros trimmed, no exponent), with at most 38
   significant digits and a magnitude of 1E-130 to 9.9999999999999999999999999999999999999E+125;
   anything else is a ``ValidationException`` with DynamoDB's message (DG "Supported data types and
   naming rules", Number). Conditions' numbers are checked the same way, and ``SET a = b + c`` is
   computed exactly before that check (moto added in Python's 28-digit context, rounding silently).
   moto stored numbers as written and accepted 39 digits and 1E+126.
2. A PutItem or UpdateItem that changes nothing writes no stream record (DG "Change data capture for
   DynamoDB Streams", the note under "Reading and processing a stream"); moto wrote a MODIFY.
3. An UpdateItem is one change: it writes one stream record (moto wrote two INSERTs when the update
   created the item, the first with the key only) and, if it fails, leaves the item as it was (moto
   left an item half updated, or a key-only item, behind a failed update).
4. A condition comparing values of different types is false: ``{"S": "6"}`` does not equal
   ``{"N": "6"}``, and ``<``, ``<=``, ``>``, ``>=`` and ``BETWEEN`` between different types do not
   match (API "Condition": "If an item contains an AttributeValue element of a different type than
   the one provided in the request, the value does not match"). moto raised a ``TypeError`` (an HTTP
   500 on its servers), and took ``true`` for ``1``.
5. An item is at most 400 KB, 409,600 bytes, counted as DynamoDB counts (DG "DynamoDB item sizes and
   formats", DG "Service, account, and table quotas"); too large is ``ValidationException`` "Item
   size has exceeded the maximum allowed size", for UpdateItem "Item size to update has exceeded the
   maximum allowed size" (API "TransactWriteItems", ValidationError messages). moto counted numbers
   by their characters and refused from 405,000 bytes of its own accounting.
6. Binary values in a stream record's ``Keys`` are base64 once on the wire, like the images
   (API "StreamRecord", "AttributeValue" B); moto encoded them twice.

Moved here from the launcher (they make moto behave like AWS, so the tests need them too):

7. A cancelled ``TransactWriteItems`` changes nothing and writes no stream record, and the table
   stays the same object (moto swapped in a deep copy, so open stream iterators read a dead shard
   and never saw a later write; the copy also took seconds per call on a large table).
8. An unknown DynamoDB Streams iterator is an expired one (``ExpiredIteratorException``, moto
   answered HTTP 500); only the newest ``MAX_STREAM_ITERATORS`` are kept (moto kept every one).
9. ``ListEventSourceMappings`` takes a function name, ARN or partial ARN, and ``DescribeAlarms``
   applies all its filters together (moto used only the first one given).

Kinesis and Lambda (Kinesis Data Streams API reference, "KDS"; Lambda API reference, "Lambda"):

11. A stream consumer's ARN is the stream's followed by ``/consumer/<name>:<creation timestamp>``
    (KDS "RegisterStreamConsumer"; moto left the timestamp out), and ``CreateEventSourceMapping``
    takes a registered consumer's ARN as its ``EventSourceArn`` (Lambda "CreateEventSourceMapping":
    for Kinesis, "the ARN of the data stream or a stream consumer"); moto refused it
    (``ResourceNotFoundException`` "Invalid EventSourceArn").

EventBridge (EventBridge user guide, "Amazon EventBridge targets", which lists Amazon SNS topics):

12. A rule's SNS topic target receives each matching event, the event's JSON as the message (its
    ``time`` in ISO 8601 as EventBridge delivers it); moto raised NotImplementedError for an SNS
    target, failing the PutEvents that matched. Input transformers are not applied to SNS targets.

CloudWatch (API reference, "CW"; user guide, "CWUG"):

13. Percentile statistics are computed: ``ExtendedStatistics`` of ``GetMetricStatistics`` and a percentile
    ``Stat`` of ``GetMetricData`` ("any CloudWatch statistic or extended statistic", CW "MetricStat"). pNN
    is the value NN percent of the period's data are at or below ("p95 is the 95th percentile and means
    that 95 percent of the data within the period is lower than this value and 5 percent of the data is
    higher than this value", CWUG "Statistics definitions"). CloudWatch documents no interpolation between
    values: here the nearest rank, always a value that was put (the tests use data whose percentiles every
    usual definition agrees on). CloudWatch keeps the values of ``Values``/``Counts`` (and so of EMF
    metrics); of a statistic set only one whose ``SampleCount`` is 1 or whose ``Minimum`` equals its
    ``Maximum`` gives percentiles, and no metric with a negative value does (CW "GetMetricStatistics":
    "CloudWatch needs raw data points to calculate percentile statistics...", "Percentile statistics are
    not available for metrics when any of the metric values are negative numbers"): such a period has no
    percentile. ``GetMetricStatistics`` takes ``Statistics`` or ``ExtendedStatistics``, "but not both",
    each percentile "between p0.0 and p100" (CW "GetMetricStatistics"), with at most two decimals
    (``p95.45``, EC2 user guide, "Statistics for CloudWatch metrics"). moto ignored ``ExtendedStatistics``
    and failed on a percentile ``Stat`` (a ``TypeError``: HTTP 500 on its servers).

In process only (the moto servers serve one request at a time already: ``moto_launcher.serialized``):

10. Each request is atomic ("Individual write operations such as UpdateItem are atomic and always
    operate on the most recent version of the item, regardless of concurrency", DG "Best practices
    for handling concurrent updates"; a transaction is all or nothing, API "TransactWriteItems").
    ``mock_aws`` served the engine's worker threads (the forwarder's local writes and the
    replicator's applies run keys in parallel) without a lock: a request saw another's half-made
    change, and a cancelled transaction's rollback (7) cut the stream records other threads wrote
    meanwhile. In-process requests to DynamoDB and DynamoDB Streams are served one at a time, as
    the servers serve them.

Every patch hooks the narrowest point it can, and ``apply`` checks every moto internal the patches
rely on before it changes anything: another moto than ``MOTO_VERSION``, or one whose internals
moved, fails loudly (``MotoFidelityError``) instead of silently testing against stock moto.
"""

from __future__ import annotations

import base64
import copy
import importlib
import inspect
import itertools
import re
import threading
from decimal import Context, localcontext
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

MOTO_VERSION = "5.2.5"

MAX_ITEM_BYTES = 400 * 1024
MAX_NUMBER_DIGITS = 38
MAX_NUMBER_EXPONENT = 125  # 9.99...E+125: the adjusted exponent of the largest magnitude
MIN_NUMBER_EXPONENT = -130  # 1E-130: the adjusted exponent of the smallest non-zero magnitude
MAX_STREAM_ITERATORS = 20_000

# DynamoDB's messages (as its API returns them; the range ones are also listed by the API reference).
NOT_A_NUMBER = "The parameter cannot be converted to a numeric value: {}"
TOO_MANY_DIGITS = "Attempting to store more than 38 significant digits in a Number"
OVERFLOW = "Number overflow. Attempting to store a number with magnitude larger than supported range"
UNDERFLOW = "Number underflow. Attempting to store a number with magnitude smaller than supported range"

# What DynamoDB reads as a number: ASCII digits, optional sign, point and exponent ("+3", ".123",
# "1e+5" are numbers; " 1", "NaN", "Infinity" and "1_000" are not, though Python's float takes some).
_NUMBER_SYNTAX = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?")

# Exact for any sum or difference of two DynamoDB numbers (their digits span at most 38 + 255 places).
_EXACT = Context(prec=400, Emax=999_999, Emin=-999_999)

# -- what the patches rely on --------------------------------------------------------------------

# (module, attribute path, leading parameter names the patch calls it with)
ANCHORS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("moto.dynamodb.models.dynamo_type", "DynamoType.__init__", ("self", "type_as_dict")),
    ("moto.dynamodb.models.dynamo_type", "DynamoType.__add__", ("self", "other")),
    ("moto.dynamodb.models.dynamo_type", "DynamoType.__sub__", ("self", "other")),
    ("moto.dynamodb.models.dynamo_type", "LimitedSizeDict.__setitem__", ("self", "key", "value")),
    ("moto.dynamodb.models.dynamo_type", "Item.__init__", ("self", "hash_key", "range_key", "attrs")),
    ("moto.dynamodb.comparisons", "AttributeValue.__init__", ("self", "value")),
    ("moto.dynamodb.comparisons", "AttributePath.get_type", ("self", "item")),
    ("moto.dynamodb.comparisons", "FuncSize.expr", ("self", "item")),
    ("moto.dynamodb.comparisons", "FuncBetween.expr", ("self", "item")),
    ("moto.dynamodb.comparisons", "FuncIn.expr", ("self", "item")),
    ("moto.dynamodb.comparisons", "OpEqual.expr", ("self", "item")),
    ("moto.dynamodb.comparisons", "OpNotEqual.expr", ("self", "item")),
    ("moto.dynamodb.comparisons", "OpLessThan.expr", ("self", "item")),
    ("moto.dynamodb.comparisons", "OpLessThanOrEqual.expr", ("self", "item")),
    ("moto.dynamodb.comparisons", "OpGreaterThan.expr", ("self", "item")),
    ("moto.dynamodb.comparisons", "OpGreaterThanOrEqual.expr", ("self", "item")),
    ("moto.dynamodb.models.table", "StreamShard.add", ("self", "old", "new")),
    (
        "moto.dynamodb.models.table",
        "StreamRecord.__init__",
        ("self", "table", "stream_type", "event_name", "old", "new", "seq"),
    ),
    ("moto.dynamodb.models.table", "Table.put_item", ("self", "item_attrs")),
    ("moto.dynamodb.models.table", "Table.get_item", ("self", "hash_key", "range_key")),
    ("moto.dynamodb.models", "DynamoDBBackend.update_item", ("self", "table_name", "key")),
    ("moto.dynamodb.models", "DynamoDBBackend.get_keys_value", ("self", "table", "keys")),
    ("moto.dynamodb.models", "DynamoDBBackend.transact_write_items", ("self", "transact_items")),
    ("moto.dynamodb.models", "copy", ()),
    ("moto.dynamodb.exceptions", "MockValidationException", ()),
    ("moto.dynamodb.exceptions", "ConditionalCheckFailed", ()),
    ("moto.dynamodb.exceptions", "ItemSizeTooLarge", ()),
    ("moto.dynamodb.exceptions", "ItemSizeToUpdateTooLarge", ()),
    ("moto.dynamodbstreams.models", "DynamoDBStreamsBackend.get_records", ("self", "iterator_arn", "limit")),
    ("moto.awslambda.models", "LambdaBackend.list_event_source_mappings", ("self",)),
    ("moto.awslambda.models", "LambdaBackend.create_event_source_mapping", ("self", "spec")),
    ("moto.awslambda.models", "EventSourceMapping.__init__", ("self", "spec")),
    ("moto.kinesis.models", "Consumer.__init__", ("self", "consumer_name", "account_id", "region_name")),
    ("moto.kinesis.models", "Stream.get_consumer_by_arn", ("self", "consumer_arn")),
    ("moto.kinesis.models", "kinesis_backends", ()),
    ("moto.cloudwatch.responses", "CloudWatchResponse.describe_alarms", ("self",)),
    ("moto.cloudwatch.responses", "CloudWatchResponse.get_metric_statistics", ("self",)),
    ("moto.cloudwatch.models", "Statistics.__init__", ("self", "stats", "dt")),
    ("moto.cloudwatch.models", "Statistics.get_statistics_for_type", ("self", "stat")),
    (
        "moto.cloudwatch.models",
        "CloudWatchBackend.get_metric_statistics",
        ("self", "namespace", "metric_name", "start_time", "end_time", "period", "stats", "dimensions"),
    ),
    (
        "moto.cloudwatch.models",
        "CloudWatchBackend.get_metric_data",
        ("self", "queries", "start_time", "end_time"),
    ),
    ("moto.cloudwatch.models", "MetricDatum.__init__", ("self", "namespace", "name", "value")),
    (
        "moto.cloudwatch.models",
        "MetricAggregatedDatum.__init__",
        ("self", "namespace", "name", "min_stat", "max_stat", "sample_count", "sum_stat"),
    ),
    ("moto.cloudwatch.exceptions", "InvalidParameterCombination", ()),
    ("moto.cloudwatch.exceptions", "InvalidParameterValue", ()),
    ("moto.core.botocore_stubber", "BotocoreStubber.process_request", ("self", "request")),
    ("moto.events.models", "Rule.send_to_targets", ("self", "original_event")),
    ("moto.sns.models", "Topic.publish", ("self", "message")),
    ("moto.sns.models", "sns_backends", ()),
)


class MotoFidelityError(RuntimeError):
    """The installed moto is not the one these patches were written against."""


def check_anchors() -> None:
    """Raise ``MotoFidelityError`` unless moto is ``MOTO_VERSION`` with every internal in ``ANCHORS``."""
    import moto

    if moto.__version__ != MOTO_VERSION:
        raise MotoFidelityError(
            f"moto {moto.__version__} is installed, the fidelity patches are written against moto "
            f"{MOTO_VERSION} (requirements-dev.txt): check each patch in {__name__} against it, then "
            "update MOTO_VERSION"
        )
    for module_name, path, params in ANCHORS:
        target: Any = importlib.import_module(module_name)
        for part in path.split("."):
            target = getattr(target, part, None)
            if target is None:
                raise MotoFidelityError(f"moto {MOTO_VERSION} has no {module_name}.{path}")
        if params:
            actual = tuple(inspect.signature(target).parameters)[: len(params)]
            if actual != params:
                raise MotoFidelityError(f"{module_name}.{path} takes {actual}, the patch expects {params}")


def apply() -> None:
    """Patch moto (idempotent). Raises ``MotoFidelityError`` before changing anything if it cannot."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    if getattr(DynamoType.__init__, "_fidelity", False):
        return
    check_anchors()
    _numbers()
    _stream_writes()
    _typed_comparisons()
    _item_size()
    _stream_keys()
    _transactions()
    _stream_iterators()
    _list_filters()
    _stream_consumers()
    _eventbridge_sns_targets()
    _percentiles()
    _one_request_at_a_time()


def _mark(function: Any) -> Any:
    function._fidelity = True
    return function


# -- 1. numbers ----------------------------------------------------------------------------------


def dynamodb_number(text: str) -> str:
    """``text`` as DynamoDB stores it: plain digits, leading and trailing zeros trimmed, ``-0`` as ``0``.

    Raises moto's ``MockValidationException`` (``ValidationException`` on the wire) with DynamoDB's
    message for anything DynamoDB refuses. String arithmetic only: no decimal context can round.
    """
    from moto.dynamodb.exceptions import MockValidationException

    match = _NUMBER_SYNTAX.fullmatch(text)
    if match is None or not (match.group(2) or match.group(3)):
        raise MockValidationException(NOT_A_NUMBER.format(text))
    sign, whole, fraction, exponent_text = match.groups()
    fraction = fraction or ""
    digits = (whole + fraction).lstrip("0")
    if not digits:
        return "0"
    exponent = int(exponent_text or 0) - len(fraction)  # value = digits * 10**exponent
    trimmed = digits.rstrip("0")
    exponent += len(digits) - len(trimmed)
    adjusted = exponent + len(trimmed) - 1  # the power of ten of the first significant digit
    if adjusted > MAX_NUMBER_EXPONENT:
        raise MockValidationException(OVERFLOW)
    if adjusted < MIN_NUMBER_EXPONENT:
        raise MockValidationException(UNDERFLOW)
    if len(trimmed) > MAX_NUMBER_DIGITS:
        raise MockValidationException(TOO_MANY_DIGITS)
    if exponent >= 0:
        plain = trimmed + "0" * exponent
    elif len(trimmed) + exponent > 0:
        plain = f"{trimmed[: len(trimmed) + exponent]}.{trimmed[len(trimmed) + exponent :]}"
    else:
        plain = "0." + "0" * -(len(trimmed) + exponent) + trimmed
    return ("-" if sign == "-" else "") + plain


def _numbers() -> None:
    from moto.dynamodb import comparisons
    from moto.dynamodb.models.dynamo_type import DynamoType

    original_init = DynamoType.__init__

    def __init__(self: Any, type_as_dict: Any) -> None:
        original_init(self, type_as_dict)
        if self.type == "N" and isinstance(self.value, str):
            self.value = dynamodb_number(self.value)
        elif self.type == "NS" and isinstance(self.value, list):
            self.value = [dynamodb_number(v) if isinstance(v, str) else v for v in self.value]

    def exact(operation: Any) -> Any:
        def compute(self: Any, other: Any) -> Any:
            with localcontext(_EXACT):
                return operation(self, other)  # its result is a DynamoType: checked as above

        return compute

    original_value = comparisons.AttributeValue.__init__

    def value_init(self: Any, value: dict[str, Any]) -> None:
        original_value(self, value)
        if self.type == "N" and isinstance(self.value, str):
            dynamodb_number(self.value)
        elif self.type == "NS" and isinstance(self.value, list):
            for member in self.value:
                dynamodb_number(member)

    DynamoType.__init__ = _mark(__init__)  # type: ignore[method-assign]
    DynamoType.__add__ = exact(DynamoType.__add__)  # type: ignore[method-assign]
    DynamoType.__sub__ = exact(DynamoType.__sub__)  # type: ignore[method-assign]
    comparisons.AttributeValue.__init__ = value_init  # type: ignore[method-assign]


# -- 2 and 3. stream records of writes -----------------------------------------------------------


def _typed(value: Any) -> Any:
    """A DynamoType as comparable data: type tags kept at every level, sets unordered, binary as bytes."""
    if value.type == "M":
        return ("M", {name: _typed(member) for name, member in value.value.items()})
    if value.type == "L":
        return ("L", [_typed(member) for member in value.value])
    if value.type == "B":
        return ("B", _raw_bytes(value.value))
    if value.type == "BS":
        return ("BS", frozenset(_raw_bytes(member) for member in value.value))
    if value.type in ("SS", "NS"):
        return (value.type, frozenset(value.value))
    return (value.type, value.value)


def _raw_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else base64.b64decode(value)


def same_data(old: Any, new: Any) -> bool:
    """Whether two moto items hold the same data (what decides that a write changed nothing)."""
    return {k: _typed(v) for k, v in old.attrs.items()} == {k: _typed(v) for k, v in new.attrs.items()}


# The UpdateItem running in this thread, if any: moto's in-process backends are called from the
# engine's worker threads (the launcher serves one request at a time).
_updating = threading.local()


def _stream_writes() -> None:
    from moto.dynamodb.exceptions import ConditionalCheckFailed
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import StreamShard

    original_add = StreamShard.add

    def add(self: Any, old: Any, new: Any) -> None:
        held = getattr(_updating, "shard", None)
        if held is self:  # inside this thread's UpdateItem: it writes its one record when it is done
            _updating.records += 1
            return None
        if old is not None and new is not None and same_data(old, new):
            return None
        return original_add(self, old, new)

    original_update = DynamoDBBackend.update_item

    def update_item(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        table = self.get_table(table_name)
        try:
            hash_key, range_key = self.get_keys_value(table, key)
            before = table.get_item(hash_key, range_key)
        except Exception:  # moto itself refuses the key: nothing to keep or restore
            return original_update(self, table_name, key, *args, **kwargs)
        snapshot = copy.deepcopy(before)
        shard = table.stream_shard
        _updating.shard, _updating.records = shard, 0
        try:
            item = original_update(self, table_name, key, *args, **kwargs)
            _check_update_size(item)
        except ConditionalCheckFailed:
            raise  # refused before anything changed
        except BaseException:
            _put_back(table, hash_key, range_key, snapshot)
            raise
        finally:
            written, _updating.shard = _updating.records, None
        if shard is not None and written:
            shard.add(snapshot, item)
        return item

    StreamShard.add = _mark(add)  # type: ignore[method-assign]
    DynamoDBBackend.update_item = _mark(update_item)  # type: ignore[method-assign]


def _put_back(table: Any, hash_key: Any, range_key: Any, item: Any) -> None:
    """The item as it was (None: absent), without a stream record or a condition."""
    if range_key is not None:
        if item is None:
            table.items[hash_key].pop(range_key, None)
        else:
            table.items[hash_key][range_key] = item
    elif item is None:
        table.items.pop(hash_key, None)
    else:
        table.items[hash_key] = item


# -- 4. conditions between different types -------------------------------------------------------


def _typed_comparisons() -> None:
    from moto.dynamodb import comparisons as c

    def operand_type(operand: Any, item: Any) -> str | None:
        if isinstance(operand, c.FuncSize):
            return "N"
        get_type = getattr(operand, "get_type", None)
        return get_type(item) if get_type is not None else None

    def differ(item: Any, first: Any, *others: Any) -> bool:
        kind = operand_type(first, item)
        if kind is None:
            return False  # absent (or not an operand): moto's own handling
        return any((other_kind := operand_type(o, item)) is not None and other_kind != kind for o in others)

    def when_types_differ(op_class: Any, result: bool) -> None:
        original = op_class.expr

        def expr(self: Any, item: Any) -> bool:
            if differ(item, self.lhs, self.rhs):
                return result
            return original(self, item)

        op_class.expr = _mark(expr)

    for op_class in (c.OpEqual, c.OpLessThan, c.OpLessThanOrEqual, c.OpGreaterThan, c.OpGreaterThanOrEqual):
        when_types_differ(op_class, False)
    when_types_differ(c.OpNotEqual, True)

    original_between = c.FuncBetween.expr

    def between(self: Any, item: Any) -> bool:
        if differ(item, self.attr, self.start, self.end):
            return False
        return original_between(self, item)

    def is_in(self: Any, item: Any) -> bool:
        value = self.attr.expr(item)
        return any(
            not differ(item, self.attr, candidate) and value == candidate.expr(item)
            for candidate in self.possible_values
        )

    c.FuncBetween.expr = _mark(between)  # type: ignore[method-assign]
    c.FuncIn.expr = _mark(is_in)  # type: ignore[method-assign]


# -- 5. item size --------------------------------------------------------------------------------


def value_size(value: Any) -> int:
    """Bytes DynamoDB counts for one moto DynamoType, without its attribute name (DG "DynamoDB item
    sizes and formats"): strings their UTF-8 bytes; numbers about 1 byte per two significant digits
    plus 1; binary its raw bytes; null and Boolean 1; a List or Map 3 bytes plus each element and 1
    byte per element (a Map element's name counts); a set the sum of its members."""
    kind = value.type
    if kind == "S":
        return _utf8(value.value)
    if kind == "N":
        return _number_size(value.value)
    if kind == "B":
        return len(_raw_bytes(value.value))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(_utf8(member) for member in value.value)
    if kind == "NS":
        return sum(_number_size(member) for member in value.value)
    if kind == "BS":
        return sum(len(_raw_bytes(member)) for member in value.value)
    if kind == "M":
        return 3 + sum(_utf8(name) + value_size(member) + 1 for name, member in value.value.items())
    if kind == "L":
        return 3 + sum(value_size(member) + 1 for member in value.value)
    raise ValueError(f"unknown type {kind!r}")


def item_size(attributes: dict[str, Any]) -> int:
    """Bytes DynamoDB counts for an item (name -> moto DynamoType) against its 409,600-byte limit."""
    return sum(_utf8(name) + value_size(value) for name, value in attributes.items())


def _utf8(text: Any) -> int:
    return len(str(text).encode("utf-8", "surrogatepass"))


def _number_size(text: Any) -> int:
    # Stored numbers are plain digits (see dynamodb_number); a malformed one is moto's to refuse.
    digits = len(str(text).lstrip("-").replace(".", "").strip("0")) or 1
    return (digits + 1) // 2 + 1


def _check_update_size(item: Any) -> None:
    from moto.dynamodb.exceptions import ItemSizeToUpdateTooLarge

    if item is not None and item_size(item.attrs) > MAX_ITEM_BYTES:
        raise ItemSizeToUpdateTooLarge()


def _item_size() -> None:
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict
    from moto.dynamodb.models.table import Table

    # moto's own accounting (numbers by their characters, a limit of 405,000) is off; ours decides.
    LimitedSizeDict.__setitem__ = dict.__setitem__  # type: ignore[method-assign,assignment]
    original_put = Table.put_item

    def put_item(self: Any, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if item_size({name: DynamoType(value) for name, value in item_attrs.items()}) > MAX_ITEM_BYTES:
            raise ItemSizeTooLarge()
        return original_put(self, item_attrs, *args, **kwargs)

    Table.put_item = _mark(put_item)  # type: ignore[method-assign]


# -- 6. binary keys of stream records ------------------------------------------------------------


def _stream_keys() -> None:
    from moto.dynamodb.models.table import StreamRecord

    original_init = StreamRecord.__init__

    def __init__(  # noqa: PLR0917 (moto's signature)
        self: Any, table: Any, stream_type: str, event_name: str, old: Any, new: Any, seq: int
    ) -> None:
        original_init(self, table, stream_type, event_name, old, new, seq)
        item = old if old is not None else new
        # The stored value, as the images carry it: binary stays bytes and is encoded once on the wire.
        keys = {table.hash_key_attr: {item.hash_key.type: item.hash_key.value}}
        if table.range_key_attr is not None:
            keys[table.range_key_attr] = {item.range_key.type: item.range_key.value}
        self.record["dynamodb"]["Keys"] = keys

    StreamRecord.__init__ = _mark(__init__)  # type: ignore[method-assign]


# -- 7. cancelled transactions -------------------------------------------------------------------


class _TableSparingCopy:
    """Stands in for the ``copy`` module inside ``moto.dynamodb.models``: a deep copy of a whole table
    (the rollback backup of ``transact_write_items``) is the table itself; the rollback is a
    per-item compensation instead (``_transactions``). Every other deep copy is a real one."""

    def __init__(self, table_type: type) -> None:
        self._table_type = table_type

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if isinstance(value, self._table_type):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def _transaction_snapshot(
    backend: Any, transact_items: list[dict[str, Any]]
) -> tuple[list[Any], dict[str, int]]:
    touched: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    streams: dict[str, int] = {}
    for entry in transact_items:
        try:
            op_type, op = next(iter(entry.items()))
            name = op["TableName"]
            table = backend.tables[name]
            if op_type == "Put":
                attrs = op["Item"]
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            current = backend.get_item(name, key)
        except Exception:
            continue  # moto itself rejects the request: nothing of it is applied
        touched.append((name, key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
        if table.stream_shard is not None:
            streams.setdefault(name, len(table.stream_shard.items))
    return touched, streams


def _transaction_restore(backend: Any, snapshot: tuple[list[Any], dict[str, int]]) -> None:
    touched, streams = snapshot
    for name, key, old in reversed(touched):
        current = backend.get_item(name, key)
        if old is None:
            if current is not None:
                backend.delete_item(name, key)
        else:
            backend.put_item(name, old)
    for name, length in streams.items():
        shard = backend.tables[name].stream_shard
        if shard is not None:
            del shard.items[length:]  # a cancelled transaction leaves no stream record


def _transactions() -> None:
    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    models.copy = _TableSparingCopy(Table)  # type: ignore[assignment]
    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        snapshot = _transaction_snapshot(self, transact_items)
        try:
            return original(self, transact_items)
        except Exception:
            _transaction_restore(self, snapshot)
            raise

    models.DynamoDBBackend.transact_write_items = _mark(transact_write_items)  # type: ignore[method-assign]


# -- 8. stream iterators -------------------------------------------------------------------------


def _stream_iterators() -> None:
    from moto.core.exceptions import JsonRESTError
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    original = DynamoDBStreamsBackend.get_records

    def get_records(self: Any, iterator_arn: str, limit: int) -> dict[str, Any]:
        if iterator_arn not in self.shard_iterators:
            raise JsonRESTError("ExpiredIteratorException", "Iterator expired or unknown")
        result = original(self, iterator_arn, limit)
        excess = len(self.shard_iterators) - MAX_STREAM_ITERATORS
        if excess > 0:  # pollers use each iterator once, right away: the oldest are dead
            for stale in list(itertools.islice(self.shard_iterators, excess)):
                del self.shard_iterators[stale]
        return result

    DynamoDBStreamsBackend.get_records = _mark(get_records)  # type: ignore[method-assign]


# -- 9. list filters -----------------------------------------------------------------------------


def _function_name(name_or_arn: str) -> str:
    """``f``, ``arn:...:function:f`` and ``arn:...:function:f:$LATEST`` all name ``f``."""
    return name_or_arn.rsplit(":function:", maxsplit=1)[-1].split(":", maxsplit=1)[0]


def _list_filters() -> None:
    from moto.awslambda.models import LambdaBackend
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.responses import ActionResult

    def list_event_source_mappings(self: Any, event_source_arn: str, function_name: str) -> list[Any]:
        mappings = list(self._event_source_mappings.values())
        if event_source_arn:
            mappings = [m for m in mappings if m.event_source_arn == event_source_arn]
        if function_name:
            wanted = _function_name(function_name)
            mappings = [m for m in mappings if _function_name(m.function_arn) == wanted]
        return mappings

    def describe_alarms(self: Any) -> Any:
        alarms = list(self.cloudwatch_backend.describe_alarms())
        action_prefix = self._get_param("ActionPrefix")
        name_prefix = self._get_param("AlarmNamePrefix")
        names = self._get_param("AlarmNames", [])
        state = self._get_param("StateValue")
        if action_prefix:
            alarms = [a for a in alarms if any(x.startswith(action_prefix) for x in a.alarm_actions)]
        if name_prefix:
            alarms = [a for a in alarms if a.name.startswith(name_prefix)]
        if names:
            alarms = [a for a in alarms if a.name in names]
        if state:
            alarms = [a for a in alarms if a.state_value == state]
        return ActionResult(
            {
                "MetricAlarms": [a for a in alarms if a.rule is None],
                "CompositeAlarms": [a for a in alarms if a.rule is not None],
            }
        )

    LambdaBackend.list_event_source_mappings = _mark(list_event_source_mappings)  # type: ignore[method-assign]
    CloudWatchResponse.describe_alarms = _mark(describe_alarms)  # type: ignore[method-assign]


# -- 11. stream consumers as event sources ---------------------------------------------------------


def _stream_consumers() -> None:
    from moto.awslambda.models import EventSourceMapping, LambdaBackend
    from moto.kinesis.models import Consumer, kinesis_backends

    make_consumer = Consumer.__init__
    create_mapping = LambdaBackend.create_event_source_mapping

    def consumer_init(self: Any, consumer_name: str, account_id: str, region_name: str, *args: Any) -> None:
        make_consumer(self, consumer_name, account_id, region_name, *args)
        self.consumer_arn = f"{self.consumer_arn}:{int(self.created.timestamp())}"

    def create_event_source_mapping(self: Any, spec: dict[str, Any]) -> Any:
        arn = spec.get("EventSourceArn") or ""
        if "/consumer/" in arn and ":kinesis:" in arn:
            streams = kinesis_backends[self.account_id][self.region_name].streams.values()
            if any(stream.get_consumer_by_arn(arn) for stream in streams):
                function = self._lambdas.get_function_by_name_or_arn_with_qualifier(
                    spec.get("FunctionName", "")
                )
                spec.update({"RegionName": self.region_name, "AccountId": self.account_id})
                spec.update({"FunctionArn": function.function_arn})
                mapping = EventSourceMapping(spec)
                self._event_source_mappings[mapping.uuid] = mapping
                return mapping
        return create_mapping(self, spec)

    Consumer.__init__ = _mark(consumer_init)  # type: ignore[method-assign]
    LambdaBackend.create_event_source_mapping = _mark(create_event_source_mapping)  # type: ignore[method-assign]


# -- 12. EventBridge rules' SNS topic targets ------------------------------------------------------


def _eventbridge_sns_targets() -> None:
    import json
    import time

    from moto.events.models import Rule
    from moto.sns.models import sns_backends
    from moto.utilities.arns import parse_arn

    send = Rule.send_to_targets

    def send_to_targets(self: Any, original_event: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        topics = [t for t in self.targets if parse_arn(t["Arn"]).service == "sns"]
        if topics and self.event_pattern.matches_event(original_event):
            event = {k: v for k, v in original_event.items() if k != "ingestion-time"}
            if isinstance(event.get("time"), int | float):
                event["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event["time"]))
            for target in topics:
                arn = parse_arn(target["Arn"])
                sns_backends[arn.account][arn.region].get_topic(target["Arn"]).publish(json.dumps(event))
        others = [t for t in self.targets if t not in topics]
        if not topics:
            send(self, original_event, *args, **kwargs)
        elif others:
            kept, self.targets = self.targets, others
            try:
                send(self, original_event, *args, **kwargs)
            finally:
                self.targets = kept

    Rule.send_to_targets = _mark(send_to_targets)  # type: ignore[method-assign]


# -- 13. CloudWatch percentile statistics ---------------------------------------------------------

# pNN or pNN.NN from p0 to p100 (CW "GetMetricStatistics", ExtendedStatistics).
_PERCENTILE = re.compile(r"p(\d{1,3}(?:\.\d{1,2})?)")


def percentile_fraction(statistic: str) -> Fraction | None:
    """``p99`` as 99/100 (exactly: ``p99.9`` is 999/1000); None for any other statistic or a
    percentile outside p0 to p100."""
    match = _PERCENTILE.fullmatch(statistic)
    if match is None:
        return None
    fraction = Fraction(match.group(1)) / 100
    return fraction if fraction <= 1 else None


def percentile(weighted: list[tuple[float, float]], fraction: Fraction) -> float | None:
    """The nearest-rank percentile of ``(value, count)`` pairs: the smallest value that at least
    ``fraction`` of the data (by count) are at or below; None without data."""
    counted = sorted((value, Fraction(count)) for value, count in weighted if count > 0)
    wanted = fraction * sum(count for _, count in counted)
    below = Fraction(0)
    for value, count in counted:
        below += count
        if below >= wanted:
            return value
    return None


def period_values(data: list[Any]) -> list[tuple[float, float]] | None:
    """The ``(value, count)`` pairs a period's stored data give percentiles from (moto keeps each
    value of ``Values``/``Counts`` as a ``MetricDatum``; a statistic set is a
    ``MetricAggregatedDatum``), or None when CloudWatch gives that period no percentile: a statistic
    set with more than one sample and different minimum and maximum, or a negative value."""
    weighted: list[tuple[float, float]] = []
    for datum in data:
        if hasattr(datum, "value"):
            weighted.append((float(datum.value), 1.0))
        elif datum.min == datum.max:
            weighted.append((float(datum.min), float(datum.sample_count)))
        elif datum.sample_count == 1:
            weighted.append((float(datum.sum), 1.0))
        else:
            return None
    if any(value < 0 for value, _ in weighted):
        return None
    return weighted


def _period_percentile(statistics: Any, fraction: Fraction) -> float | None:
    weighted = period_values(statistics.metric_data)
    return None if weighted is None else percentile(weighted, fraction)


def _percentiles() -> None:
    from moto.cloudwatch import models
    from moto.cloudwatch.exceptions import InvalidParameterCombination, InvalidParameterValue
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.responses import ActionResult

    statistic_for_type = models.Statistics.get_statistics_for_type
    metric_data = models.CloudWatchBackend.get_metric_data

    def get_statistics_for_type(self: Any, stat: str) -> Any:
        fraction = percentile_fraction(stat)
        if fraction is None:
            return statistic_for_type(self, stat)
        return _period_percentile(self, fraction)

    def get_metric_data(
        self: Any, queries: Any, start_time: Any, end_time: Any, *args: Any, **kwargs: Any
    ) -> Any:
        results = metric_data(self, queries, start_time, end_time, *args, **kwargs)
        for result in results:  # a period without the statistic has no value (moto gave None)
            kept = [
                (t, v) for t, v in zip(result["timestamps"], result["values"], strict=True) if v is not None
            ]
            result["timestamps"] = [t for t, _ in kept]
            result["values"] = [v for _, v in kept]
        return results

    def get_metric_statistics(self: Any) -> Any:
        statistics = self._get_param("Statistics", [])
        extended = self._get_param("ExtendedStatistics", [])
        if statistics and extended:
            raise InvalidParameterCombination(
                "Must specify either Statistics or ExtendedStatistics, but not both"
            )
        if not statistics and not extended:
            raise InvalidParameterCombination("Must specify either Statistics or ExtendedStatistics")
        fractions = {}
        for name in extended:
            fractions[name] = percentile_fraction(name)
            if fractions[name] is None:
                raise InvalidParameterValue(
                    f"The value {name} for parameter ExtendedStatistics is not supported."
                )
        datapoints = self.cloudwatch_backend.get_metric_statistics(
            self._get_param("Namespace"),
            self._get_param("MetricName"),
            self._get_param("StartTime"),
            self._get_param("EndTime"),
            self._get_int_param("Period"),
            statistics,
            unit=self._get_param("Unit"),
            dimensions=self._get_param("Dimensions", []),
        )
        for datapoint in datapoints:
            found = {name: _period_percentile(datapoint, f) for name, f in fractions.items()}
            datapoint.extended_statistics = {k: v for k, v in found.items() if v is not None} or None
        return ActionResult({"Label": self._get_param("MetricName"), "Datapoints": datapoints})

    models.Statistics.get_statistics_for_type = _mark(get_statistics_for_type)  # type: ignore[method-assign]
    models.CloudWatchBackend.get_metric_data = _mark(get_metric_data)  # type: ignore[method-assign]
    CloudWatchResponse.get_metric_statistics = _mark(get_metric_statistics)  # type: ignore[method-assign]


# -- 10. one in-process request at a time ------------------------------------------------------


def _one_request_at_a_time() -> None:
    from moto.core.botocore_stubber import BotocoreStubber

    serve = BotocoreStubber.process_request
    lock = threading.Lock()

    def process_request(self: Any, request: Any) -> Any:
        # DynamoDB and DynamoDB Streams only (endpoints dynamodb.<region>... and
        # streams.dynamodb.<region>...): no request of theirs waits for another, while others may
        # (an SQS long poll holding a lock would stop the sends it waits for).
        host = urlsplit(request.url).hostname or ""
        if not host.startswith(("dynamodb.", "streams.dynamodb.")):
            return serve(self, request)
        with lock:
            return serve(self, request)

    BotocoreStubber.process_request = _mark(process_request)  # type: ignore[method-assign]
