"""Binary and structured CloudEvents HTTP modes, both ways; bad input names the field."""

from __future__ import annotations

import json

import pytest
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

from events import BadEvent, Event, T, from_http_request, from_json
from events.catalog import StageRequested
from events.codec import to_binary_http, to_structured_http


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


def test_inside_a_newer_producers_fields_are_ignored():
    """Functions deploy one at a time: an older consumer reads a newer producer's event."""
    event = from_json(json.dumps(NEWER))
    assert event.type == T.STAGE_REQUESTED and event.data.target == "t1" and event.runid == "r1"
    assert "reason" not in event.data.model_dump() and "priority" not in event.to_wire()


@pytest.mark.parametrize(("drop", "field"), [("reason", "priority"), ("priority", "data.reason")])
def test_the_edge_refuses_unknown_attributes_and_fields(drop, field):
    """``POST /events`` and ``upshift events validate`` read strictly: a typo is reported, not dropped."""
    obj = json.loads(json.dumps(NEWER))
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
