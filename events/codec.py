"""Reading and writing events: dicts, JSON, and CloudEvents HTTP (binary and structured modes).

This is the one module that imports the ``cloudevents`` SDK (pinned < 2.0 by
functions-framework), so the move to 2.x touches this file only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent, from_http
from pydantic import ValidationError

from events.catalog import CATALOG
from events.envelope import Event

__all__ = [
    "BadEvent",
    "from_cloudevent",
    "from_dict",
    "from_http_request",
    "from_json",
    "to_binary_http",
    "to_cloudevent",
    "to_json",
    "to_structured_http",
]


class BadEvent(ValueError):
    """An event that cannot be accepted; ``field`` is the dotted path of the first problem."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def _first_error(exc: ValidationError, prefix: str = "") -> BadEvent:
    err = exc.errors(include_url=False)[0]
    path = ".".join(str(p) for p in err["loc"])
    return BadEvent(f"{prefix}{path}" if path else prefix.rstrip("."), err["msg"])


def from_dict(obj: Mapping[str, Any]) -> Event:
    """Parse a structured-mode dict into a typed ``Event``; raises :class:`BadEvent` naming the field."""
    if not isinstance(obj, Mapping):
        raise BadEvent("", "an event must be a JSON object")
    type_ = obj.get("type")
    if not type_:
        raise BadEvent("type", "required attribute is missing")
    if type_ not in CATALOG:
        raise BadEvent("type", f"unknown event type {type_!r} (see `upshift events list`)")
    if "data" not in obj:
        raise BadEvent("data", "required: the event's payload")
    model = CATALOG[type_].model
    for attr in ("id", "source"):
        if not obj.get(attr):
            raise BadEvent(attr, "required attribute is missing")
    try:
        data = model.model_validate(obj["data"])
    except ValidationError as exc:
        raise _first_error(exc, "data.") from None
    attrs = {k: v for k, v in obj.items() if k not in ("data", "data_base64")}
    try:
        return Event[model](data=data, **attrs)  # type: ignore[valid-type]
    except ValidationError as exc:
        raise _first_error(exc) from None


def from_json(raw: str | bytes) -> Event:
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadEvent("", f"malformed JSON: {exc}") from None
    return from_dict(obj)


def to_json(event: Event) -> str:
    return json.dumps(event.to_wire(), separators=(",", ":"))


def to_cloudevent(event: Event) -> CloudEvent:
    return CloudEvent(event.attributes(), event.data.model_dump(mode="json"))


def from_cloudevent(ce: CloudEvent) -> Event:
    """Typed event from an SDK ``CloudEvent`` (as functions-framework hands it over)."""
    obj: dict[str, Any] = dict(ce.get_attributes())
    data = ce.get_data()
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except ValueError:
            raise BadEvent("data", "must be a JSON object") from None
    obj["data"] = data
    return from_dict(obj)


def from_http_request(headers: Mapping[str, str], body: bytes) -> Event:
    """Parse an HTTP request in binary (``ce-*`` headers) or structured mode."""
    lower = {k.lower(): v for k, v in headers.items()}
    if "ce-specversion" not in lower:
        # Structured mode (application/cloudevents+json), or plain JSON: the body is the event.
        return from_json(body)
    # The SDK reports any missing binary-mode attribute as "specversion": name the real one.
    for attr in ("type", "source", "id"):
        if not lower.get(f"ce-{attr}"):
            raise BadEvent(attr, f"required attribute is missing (header ce-{attr})")
    try:
        ce = from_http(lower, body)
    except Exception as exc:  # the SDK raises a zoo of types; all mean "not a CloudEvent"
        raise BadEvent(_sdk_field(exc), _sdk_message(exc)) from None
    return from_cloudevent(ce)


def _sdk_field(exc: Exception) -> str:
    text = str(exc)
    for attr in ("specversion", "type", "source", "id"):
        if attr in text:
            return attr
    return ""


def _sdk_message(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def to_binary_http(event: Event) -> tuple[dict[str, str], bytes]:
    headers, body = to_binary(to_cloudevent(event))
    return dict(headers), body


def to_structured_http(event: Event) -> tuple[dict[str, str], bytes]:
    headers, body = to_structured(to_cloudevent(event))
    return dict(headers), body
