"""The price table ``ddb-replication plan`` costs a load with: a data file, read and checked here.

The default table is ``replication_ops/prices.json`` (package data): per partition (``aws``,
``aws-cn``), its currency and, per price, ``value`` (a number, or null where no price was found),
``unit`` (what one ``value`` buys), ``source`` (the page it was read on), ``read_on`` (the date,
YYYY-MM-DD) and an optional ``note``. A price that is null stays null: the plan says which costs it
could not compute, never fills one in. ``--prices FILE`` gives another table of the same shape;
every field is checked and the first bad one is named (``ConfigError``, exit 2).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from replication_ops.errors import ConfigError

PARTITIONS = {"aws": "USD", "aws-cn": "CNY"}

# Every price the plan uses, with the unit one value buys (the file must say the same unit, so a
# price per million cannot be read as a price per unit).
PRICE_UNITS = {
    "dynamodb_write_request_unit": "per million write request units",
    "dynamodb_read_request_unit": "per million read request units",
    "dynamodb_replicated_write_request_unit": "per million replicated write request units",
    "dynamodb_wcu_hour": "per WCU-hour",
    "dynamodb_rcu_hour": "per RCU-hour",
    "dynamodb_replicated_wcu_hour": "per replicated WCU-hour",
    "kinesis_shard_hour": "per shard-hour",
    "kinesis_put_payload_unit": "per million PUT payload units",
    "kinesis_efo_consumer_shard_hour": "per consumer-shard-hour",
    "kinesis_efo_data_retrieval_gb": "per GB",
    "kinesis_on_demand_stream_hour": "per stream-hour",
    "kinesis_on_demand_data_in_gb": "per GB",
    "kinesis_on_demand_data_retrieval_gb": "per GB",
    "kinesis_on_demand_efo_data_retrieval_gb": "per GB",
    "lambda_request": "per million requests",
    "lambda_gb_second_x86_64": "per GB-second",
    "lambda_gb_second_arm64": "per GB-second",
    "nat_gateway_data_processed_gb": "per GB",
    "data_transfer_out_internet_gb": "per GB",
    "inter_region_transfer_gb": "per GB",
}


@dataclass(frozen=True)
class Price:
    name: str
    value: float | None
    unit: str
    source: str
    read_on: str
    note: str | None


@dataclass(frozen=True)
class PriceTable:
    origin: str  # the file it was read from
    currency: dict[str, str]  # partition -> ISO 4217 code
    prices: dict[str, dict[str, Price]]  # partition -> name -> price

    def price(self, partition: str, name: str) -> Price:
        return self.prices[partition][name]


def default_path() -> Path:
    return Path(str(resources.files("replication_ops") / "prices.json"))


def load(path: Path | None = None) -> PriceTable:
    """The table in ``path`` (default: the package's), checked field by field."""
    path = path or default_path()
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"--prices {path}: cannot read it ({error.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"--prices {path}: not JSON ({error})") from None
    return parse(document, str(path))


def parse(document: Any, origin: str) -> PriceTable:
    def bad(where: str, what: str) -> ConfigError:
        return ConfigError(f"--prices {origin}: {where}: {what} (see replication_ops/prices.json)")

    if not isinstance(document, dict) or not isinstance(document.get("partitions"), dict):
        raise bad("partitions", 'missing: the file is {"partitions": {"aws": ..., "aws-cn": ...}}')
    currency: dict[str, str] = {}
    prices: dict[str, dict[str, Price]] = {}
    for partition, code in PARTITIONS.items():
        entry = document["partitions"].get(partition)
        where = f"partitions.{partition}"
        if not isinstance(entry, dict):
            raise bad(where, "missing")
        if entry.get("currency") != code:
            raise bad(
                f"{where}.currency",
                f"must be {code!r} (that partition bills in it), not {entry.get('currency')!r}",
            )
        currency[partition] = code
        table = entry.get("prices")
        if not isinstance(table, dict):
            raise bad(f"{where}.prices", "missing")
        unknown = sorted(set(table) - set(PRICE_UNITS))
        if unknown:
            raise bad(
                f"{where}.prices.{unknown[0]}",
                f"not a price the plan uses ({', '.join(sorted(PRICE_UNITS))})",
            )
        prices[partition] = {}
        for name, unit in PRICE_UNITS.items():
            field = f"{where}.prices.{name}"
            item = table.get(name)
            if not isinstance(item, dict):
                raise bad(field, "missing (give value null and a note where no price is known)")
            value = item.get("value")
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value < 0
            ):
                raise bad(f"{field}.value", f"{value!r} is not a price: a number of 0 or more, or null")
            if item.get("unit") != unit:
                raise bad(f"{field}.unit", f"must be {unit!r}, not {item.get('unit')!r}")
            source = item.get("source")
            if not isinstance(source, str) or not source.startswith("https://"):
                raise bad(f"{field}.source", "give the https:// page the price was read on")
            read_on = item.get("read_on")
            try:
                dt.date.fromisoformat(str(read_on))
            except ValueError:
                raise bad(f"{field}.read_on", f"{read_on!r} is not a date YYYY-MM-DD") from None
            note = item.get("note")
            if note is not None and not isinstance(note, str):
                raise bad(f"{field}.note", "text or absent")
            if value is None and not note:
                raise bad(f"{field}.note", "a null price needs a note saying why it is unknown")
            prices[partition][name] = Price(
                name, None if value is None else float(value), unit, source, str(read_on), note
            )
    return PriceTable(origin, currency, prices)


__all__ = ["PARTITIONS", "PRICE_UNITS", "Price", "PriceTable", "default_path", "load", "parse"]
