"""Binary and structured CloudEvents HTTP modes, both ways; bad input names the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

from events import CATALOG, BadEvent, Event, T, from_dict, from_http_request, from_json
from events.catalog import Echo, StageRequested
from events.codec import to_binary_http, to_json, to_structured_http
from events.schema import SAMPLES


def _event() -> Event:
    data = StageRequested(target="t1", kind="cce", stage="upgrade", from_version="v1.27", to_version="v1.28")
    return Event(type=T.STAGE_REQUESTED, data=data, runid="r1", target="t1", stage="upgrade", kind="cce")


@pytest.mark.parametrize("writer", [to_binary_http, to_structured_http])
def test_round_trip_through_http(writer):
    e = _event()
    headers, body = writer(e)
    back = from_http_request(headers, body)
    assert back == e


def test_reads_what_the_sdk_writes_in_both_modes():
    ce = CloudEvent(
        {"type": T.STAGE_REQUESTED, "source": "/x", "runid": "r9", "kind": "cce", "stage": "upgrade"},
        {"target": "t1", "kind": "cce", "stage": "upgrade", "from_version": "1", "to_version": "2"},
    )
    for h, b in (to_binary(ce), to_structured(ce)):
        e = from_http_request(h, b)
        assert e.runid == "r9" and e.data.to_version == "2" and e.id == ce["id"]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{not json", ""),
        (json.dumps({"specversion": "1.0", "source": "/x", "id": "1", "data": {}}).encode(), "type"),
        (
            json.dumps(
                {"specversion": "1.0", "type": "dev.upshift.nope", "source": "/x", "id": "1", "data": {}}
            ).encode(),
            "type",
        ),
        (
            json.dumps({"specversion": "1.0", "type": T.ECHO, "id": "1", "data": {"message": "m"}}).encode(),
            "source",
        ),
        (
            json.dumps(
                {"specversion": "1.0", "type": T.ECHO, "source": "/x", "id": "1", "data": {"message": 5}}
            ).encode(),
            "data.message",
        ),
        (
            json.dumps(
                {
                    "specversion": "1.0",
                    "type": T.ECHO,
                    "source": "/x",
                    "id": "1",
                    "data": {"message": "m", "bogus": 1},
                }
            ).encode(),
            "data.bogus",
        ),
        (
            json.dumps(
                {"specversion": "0.3", "type": T.ECHO, "source": "/x", "id": "1", "data": {"message": "m"}}
            ).encode(),
            "specversion",
        ),
    ],
)
def test_bad_structured_input_names_the_field(raw, field):
    """At the external edge (strict) every problem, an unknown field included, names the field."""
    with pytest.raises(BadEvent) as err:
        from_json(raw, strict=True)
    assert err.value.field == field


NEWER = {
    "specversion": "1.0",
    "type": T.STAGE_REQUESTED,
    "source": "/upshift",
    "id": "e1",
    "runid": "r1",
    "priority": "high",  # an extension attribute a newer producer added
    "data": {
        "target": "t1",
        "kind": "cce",
        "stage": "upgrade",
        "from_version": "v1.29",
        "to_version": "v1.30",
        "reason": "operator",  # an optional field a newer producer added
    },
}


def test_inside_a_newer_producers_fields_are_ignored_and_its_extensions_carried():
    """Functions deploy one at a time: an older consumer reads a newer producer's event. Its
    extension attribute is carried (the spec lets producers add them); its data field dropped."""
    obj = json.loads(json.dumps(NEWER))
    obj["Bad_Name"] = "x"  # not a valid attribute name: ignored inside
    event = from_json(json.dumps(obj))
    assert event.type == T.STAGE_REQUESTED and event.data.target == "t1" and event.runid == "r1"
    assert "reason" not in event.data.model_dump()
    assert event.extensions == {"priority": "high"} and event.to_wire()["priority"] == "high"
    assert "Bad_Name" not in event.to_wire()


@pytest.mark.parametrize(("drop", "field"), [("reason", "Priority"), ("Priority", "data.reason")])
def test_the_edge_refuses_unknown_attributes_and_fields(drop, field):
    """``POST /events`` and ``upshift events validate`` read strictly: a typo in data is reported,
    not dropped, and so is an attribute whose name no CloudEvent may have."""
    obj = json.loads(json.dumps(NEWER))
    obj["Priority"] = obj.pop("priority")
    obj.pop(drop, None)
    obj["data"].pop(drop, None)
    with pytest.raises(BadEvent) as err:
        from_json(json.dumps(obj), strict=True)
    assert err.value.field == field
    headers = {"content-type": "application/cloudevents+json"}
    with pytest.raises(BadEvent) as err:
        from_http_request(headers, json.dumps(obj).encode(), strict=True)
    assert err.value.field == field


def test_bad_binary_input_names_the_field():
    headers = {"ce-specversion": "1.0", "ce-type": T.ECHO, "ce-id": "1", "content-type": "application/json"}
    with pytest.raises(BadEvent) as err:
        from_http_request(headers, b'{"message": "m"}')
    assert err.value.field == "source"
    headers["ce-source"] = "/x"
    with pytest.raises(BadEvent) as err:
        from_http_request(headers, b'{"message": ""}')
    assert err.value.field == "data.message"


# -- issue 10, items 1, 2, 8 and 11: the spec's own rules, and what readers choke on ---------------

ECHO = {"specversion": "1.0", "type": T.ECHO, "source": "/x", "id": "1", "data": {"message": "m"}}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"specversion": None}, "specversion"),  # required (None: dropped)
        ({"data_base64": "bQ=="}, "data_base64"),  # data and data_base64 together
        ({"time": "2026-01-05T00:00:00"}, "time"),  # no UTC offset
        ({"type": ["dev.upshift.echo"]}, "type"),  # item 1: a list is not a type
        ({"type": {"a": 1}}, "type"),
        ({"source": "/x\ud800"}, "source"),  # a lone surrogate is not Unicode
        ({"comexampleextension1": {"nested": 1}}, "comexampleextension1"),  # an object is no attribute value
        ({"comexampleextension123456": "v"}, "comexampleextension123456"),  # over 20 characters
        ({"com-example": "v"}, "com-example"),
        ({"source": "/" + "x" * 5000}, "source"),
    ],
)
def test_strict_follows_the_cloudevents_spec(change, field):
    obj = {**ECHO, **change}
    obj = {k: v for k, v in obj.items() if v is not None}
    raw = json.dumps(obj).replace("\\ud800", "\ud800")
    with pytest.raises(BadEvent) as err:
        from_json(raw, strict=True)
    assert err.value.field == field


def test_time_with_an_offset_is_accepted():
    event = from_json(json.dumps({**ECHO, "time": "2026-01-05T09:00:00+09:00"}), strict=True)
    assert event.time.utcoffset() is not None


@pytest.mark.parametrize("value", ["value", 42, True])
def test_a_well_formed_extension_is_accepted_and_carried(value):
    """The CloudEvents conformance cases' ``comexampleextension1``: accepted at the edge, carried
    through JSON as given and through both HTTP modes in its canonical string form."""
    event = from_json(json.dumps({**ECHO, "comexampleextension1": value}), strict=True)
    assert event.extensions == {"comexampleextension1": value}
    assert from_json(to_json(event), strict=True) == event
    canonical = "true" if value is True else str(value)
    for writer in (to_binary_http, to_structured_http):
        headers, body = writer(event)
        back = from_http_request(headers, body, strict=True)
        assert back.extensions == {"comexampleextension1": canonical}


def test_a_binary_mode_extension_header_is_carried_and_a_bad_name_refused():
    headers = {"ce-specversion": "1.0", "ce-type": T.ECHO, "ce-id": "1", "ce-source": "/x"}
    headers |= {"content-type": "application/json", "ce-comexampleextension1": "v"}
    assert from_http_request(headers, b'{"message": "m"}', strict=True).extensions == {
        "comexampleextension1": "v"
    }
    headers["ce-com-example"] = "v"
    with pytest.raises(BadEvent) as err:
        from_http_request(headers, b'{"message": "m"}', strict=True)
    assert err.value.field == "com-example"


def test_a_non_utf8_header_is_refused_naming_the_attribute():
    headers = {"ce-specversion": "1.0", "ce-type": T.ECHO, "ce-id": "1", "content-type": "application/json"}
    headers["ce-source"] = b"/x\xff".decode("utf-8", "surrogateescape")  # as aiohttp hands it over
    with pytest.raises(BadEvent) as err:
        from_http_request(headers, b'{"message": "m"}', strict=True)
    assert err.value.field == "source"


@pytest.mark.parametrize("strict", [True, False])
def test_deep_nesting_is_refused_not_a_recursion_error(strict):
    deep = '{"a":' * 5000 + "1" + "}" * 5000
    with pytest.raises(BadEvent) as err:
        from_json(json.dumps(ECHO).replace('{"message": "m"}', deep), strict=strict)
    assert err.value.field == "data"
    with pytest.raises(BadEvent) as err:
        from_json("[" * 5000 + "]" * 5000, strict=strict)
    assert err.value.field == ""


@pytest.mark.parametrize("type_", sorted(CATALOG))
def test_json_is_the_wire_object_and_reads_back_as_the_event(type_):
    """``to_json``'s one-pass writer makes what ``to_wire`` describes, for every catalog sample
    (and ``from_json``'s fast path reads it back as the same event)."""
    event = from_dict(json.loads((SAMPLES / f"{type_}.json").read_text()))
    assert json.loads(to_json(event)) == event.to_wire()
    assert from_json(to_json(event)) == event


def test_json_of_an_unparametrised_event_with_a_subject_and_a_whole_second():
    event = Event(type=T.ECHO, data=Echo(message="é"), subject="s", time=datetime(2026, 1, 5, tzinfo=UTC))
    assert json.loads(to_json(event)) == event.to_wire()
    assert from_json(to_json(event)) == event
