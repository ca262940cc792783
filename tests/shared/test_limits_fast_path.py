"""``loads_bounded`` skips the walk over every value when the text cannot hold what the walk
refuses; whatever the text, it refuses exactly what the walk (``check_bounded``) refuses."""

from __future__ import annotations

import json

import pytest

from shared.limits import LIMITS, JsonRefused, check_bounded, loads_bounded


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


CASES = [
    '{"a":"plain"}',
    '{"a":"\\ud800"}',  # a lone surrogate escape
    '{"a":"\\uDC00x"}',
    '{"a":"\\ud83d\\ude00"}',  # a valid pair: one character
    '{"a":"\\\\ud800"}',  # an escaped backslash, then text: no surrogate
    '{"a":"\ud800"}',  # the surrogate itself in a str (what aiohttp's decoding can hand over)
    b'{"a":"\xed\xa0\x80"}',  # UTF-8 bytes of a surrogate (json decodes with surrogatepass)
    '{"a":"{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[ brackets in a string"}',
    '{"a":"' + "[" * 40 + '","b":' + _nested(LIMITS.max_depth - 1) + "}",
    _nested(LIMITS.max_depth),
    _nested(LIMITS.max_depth + 1),
    "[" * LIMITS.max_depth + "]" * LIMITS.max_depth,
    "[" * (LIMITS.max_depth + 1) + "]" * (LIMITS.max_depth + 1),
    '{"a":"x"}'.encode("utf-16"),
    '{"a":"\\ud800"}'.encode("utf-16-le"),
    b'\xef\xbb\xbf{"a":"bom"}',
]


@pytest.mark.parametrize("raw", CASES, ids=range(len(CASES)))
def test_refuses_exactly_what_the_walk_refuses(raw):
    doc = json.loads(raw)
    try:
        check_bounded(doc)
    except JsonRefused as exc:
        with pytest.raises(JsonRefused) as got:
            loads_bounded(raw)
        assert (got.value.field, got.value.message) == (exc.field, exc.message)
    else:
        assert loads_bounded(raw) == doc
