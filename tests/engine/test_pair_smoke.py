from __future__ import annotations

from .harness import Pair

KEY = {"pk": {"S": "user#1"}, "sk": {"S": "profile"}}


def test_an_insert_on_one_side_appears_on_the_other(pair: Pair) -> None:
    pair.china.put(KEY, {"city": {"S": "Beijing"}}, "1764200000.5")
    pair.settle()
    assert pair.us.get(KEY) == pair.china.get(KEY)
    assert pair.us.get(KEY)["city"] == {"S": "Beijing"}
