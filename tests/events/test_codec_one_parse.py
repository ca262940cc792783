"""``from_json``'s tolerant fast path (every bus delivery) parses the text once and reads it as
:func:`from_dict` reads the parsed object: the same event for good input, the same
:class:`BadEvent` (field and message) for bad."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from events import CATALOG, BadEvent, from_dict, from_json
from events.schema import SAMPLES

_ECHO = {
    "specversion": "1.0",
    "type": "dev.upshift.echo",
    "source": "/upshift",
    "id": "e1",
    "time": "2026-01-05T00:00:00Z",
    "data": {"message": "hi"},
}

#: Inputs with nothing but envelope attributes and ``data`` (what the fast path takes), each wrong
#: in one place the envelope's or the data model's validation catches.
BAD = {
    "data field type": {**_ECHO, "data": {"message": 5}},
    "data field missing": {**_ECHO, "data": {}},
    "data not an object": {**_ECHO, "data": "x"},
    "time": {**_ECHO, "time": "yesterday"},
    "extension value": {**_ECHO, "stage": "not allowed!"},
    "specversion": {**_ECHO, "specversion": "0.3"},
    "subject type": {**_ECHO, "subject": 7},
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_on_the_fast_path_is_refused_as_from_dict_refuses_it(case):
    text = json.dumps(BAD[case])
    with pytest.raises(BadEvent) as want:
        from_dict(json.loads(text))
    with pytest.raises(BadEvent) as got:
        from_json(text)
    assert (got.value.field, got.value.message) == (want.value.field, want.value.message)


@pytest.mark.parametrize("type_", sorted(CATALOG))
def test_the_text_is_parsed_once(type_, monkeypatch):
    """pydantic is not handed the text to parse again (it validates the object parsed once)."""

    def reparse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the text was parsed a second time")

    text = (SAMPLES / f"{type_}.json").read_text()
    want = from_dict(json.loads(text))
    monkeypatch.setattr(BaseModel, "model_validate_json", classmethod(reparse))
    assert from_json(text) == want
