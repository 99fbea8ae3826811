"""The forwarder's CPU shortcuts give what the computations they replace give (issue 13): parsed
numbers kept per text, version readings kept per batch, JSON encoders made once."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from replication import wire
from replication.classify import ClassifyContext
from replication.keys import canonical_key
from replication.limits import _parse_number, parse_number
from replication.settings import VersionAttributes
from replication.versions import clock_now, read_version

from .test_admission import names, values

NAMES = VersionAttributes()
number_texts = st.one_of(
    st.from_regex(
        r"[+-]?(?:[0-9]{1,45}\.?[0-9]{0,45}|\.[0-9]{1,40})(?:[eE][+-]?[0-9]{1,4})?", fullmatch=True
    ),
    st.text(max_size=70),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
)
version_values = st.one_of(
    st.none(),
    values,
    number_texts.map(lambda text: {"N": text}),
    st.text(max_size=12).map(lambda text: {"S": text}),
)


@given(st.lists(number_texts, max_size=6))
def test_a_parsed_number_is_what_parsing_it_again_gives(texts: list[str]) -> None:
    for text in texts + texts:
        assert parse_number(text) == _parse_number(text)
        parsed = parse_number(text)
        assert parsed is None or (isinstance(parsed, Decimal) and str(parsed) == str(_parse_number(text)))


@given(
    st.lists(
        st.tuples(st.dictionaries(names, values, max_size=4), version_values, version_values), max_size=6
    ),
    st.integers(min_value=0, max_value=2_000_000_000),
)
def test_a_kept_reading_is_what_reading_the_image_gives(
    images: list[tuple[dict[str, Any], Any, Any]], now: int
) -> None:
    context = ClassifyContext(NAMES, "cn-north-1", "us-east-1", False, clock_now(now), 300)
    built = []
    for attributes, timestamp, origin in images:
        image = dict(attributes)
        for name, value in ((NAMES.timestamp, timestamp), (NAMES.origin, origin)):
            if value is not None:
                image[name] = value
        built.append(image)
    for image in built + [dict(image) for image in built] + [None, {}]:  # copies share the values
        assert context.reading(image) == read_version(image, NAMES, context.latest)
    assert context.latest == ClassifyContext(NAMES, "x", "y", False, clock_now(now), 300).latest


@given(st.dictionaries(names, values, max_size=3))
def test_the_encoders_made_once_give_json_dumps_bytes(key: dict[str, Any]) -> None:
    assert canonical_key(key) == json.dumps(key, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    expected = json.dumps([key, time.time()], separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert wire._json(json.loads(expected)) == expected
