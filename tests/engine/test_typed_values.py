"""Binary values between the event/wire form (base64 text, as Lambda's JSON carries them) and the
boto3 client form (bytes, as the low-level client takes and returns them), at any depth
(functions/replication/typed_values.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from replication.typed_values import from_client, to_client

from .test_admission import names, values


def test_every_binary_becomes_its_bytes_wherever_it_is() -> None:
    item = {
        "pk": {"S": "user#1"},
        "photo": {"B": "AAE="},
        "doc": {"L": [{"M": {"thumb": {"B": "/w=="}, "n": {"N": "1"}}}, {"BS": ["AAI=", "AAM="]}]},
    }
    assert to_client(item) == {
        "pk": {"S": "user#1"},
        "photo": {"B": b"\x00\x01"},
        "doc": {"L": [{"M": {"thumb": {"B": b"\xff"}, "n": {"N": "1"}}}, {"BS": [b"\x00\x02", b"\x00\x03"]}]},
    }


@given(st.dictionaries(names, values, min_size=1, max_size=8))
def test_an_item_comes_back_from_the_client_form_as_it_went(item: dict) -> None:
    assert from_client(to_client(item)) == item
