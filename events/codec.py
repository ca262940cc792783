"""Reading and writing events: dicts, JSON, and CloudEvents HTTP (binary and structured modes).

This is the one module that imports the ``cloudevents`` SDK (pinned < 2.0 by
functions-framework), so the move to 2.x touches this file only.

**Tolerant inside, strict at the edge.** The catalog promises that optional fields may be added
without breaking consumers, and functions deploy one at a time, so a consumer may read an event
from a newer producer: inside (the bus, a functions-framework target) unknown attributes and
``data`` fields are ignored. At the external edge (``POST /events``, ``upshift publish``) a
caller's unknown field is a typo to report, not data to drop: ``strict=True`` refuses it as a
:class:`BadEvent` naming the field.

An event read off the wire is an ``Event[Any]``: its ``data`` model is chosen at run time from
the catalog by ``type``; a handler's ``Event[StageRequested]`` annotation is what narrows it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent, from_http
from pydantic import BaseModel, ValidationError

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


def _known(model: type[BaseModel]) -> set[str]:
    """The keys a model reads: field names and their aliases."""
    names = set(model.model_fields)
    names.update(f.alias for f in model.model_fields.values() if f.alias)
    return names


def _refuse_unknown(obj: Mapping[str, Any], model: type[BaseModel]) -> None:
    """Strict edge: the first attribute or ``data`` field no model reads, as a :class:`BadEvent`."""
    attrs = sorted(set(obj) - _known(Event) - {"data_base64"})
    if attrs:
        raise BadEvent(attrs[0], "unknown attribute (not a CloudEvents or Upshift attribute)")
    data = obj["data"]
    fields = sorted(set(data) - _known(model)) if isinstance(data, Mapping) else []
    if fields:
        raise BadEvent(f"data.{fields[0]}", "unknown field for this event type")


def from_dict(obj: Mapping[str, Any], *, strict: bool = False) -> Event[Any]:
    """Parse a structured-mode dict into a typed ``Event``; raises :class:`BadEvent` naming the field.

    ``strict`` (the external edge) refuses unknown attributes and ``data`` fields; otherwise they
    are ignored (a tolerant reader of newer producers)."""
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
    if strict:
        _refuse_unknown(obj, model)
    try:
        data = model.model_validate(obj["data"])
    except ValidationError as exc:
        raise _first_error(exc, "data.") from None
    attrs = {k: v for k, v in obj.items() if k not in ("data", "data_base64")}
    try:
        return Event[model](data=data, **attrs)  # type: ignore[valid-type]
    except ValidationError as exc:
        raise _first_error(exc) from None


def from_json(raw: str | bytes, *, strict: bool = False) -> Event[Any]:
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadEvent("", f"malformed JSON: {exc}") from None
    return from_dict(obj, strict=strict)


def to_json(event: Event[Any]) -> str:
    return json.dumps(event.to_wire(), separators=(",", ":"))


def to_cloudevent(event: Event[Any]) -> CloudEvent:
    return CloudEvent(event.attributes(), event.data.model_dump(mode="json"))


def from_cloudevent(ce: CloudEvent, *, strict: bool = False) -> Event[Any]:
    """Typed event from an SDK ``CloudEvent`` (as functions-framework hands it over)."""
    obj: dict[str, Any] = dict(ce.get_attributes())
    data = ce.get_data()
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except ValueError:
            raise BadEvent("data", "must be a JSON object") from None
    obj["data"] = data
    return from_dict(obj, strict=strict)


def from_http_request(headers: Mapping[str, str], body: bytes, *, strict: bool = False) -> Event[Any]:
    """Parse an HTTP request in binary (``ce-*`` headers) or structured mode."""
    lower = {k.lower(): v for k, v in headers.items()}
    if "ce-specversion" not in lower:
        # Structured mode (application/cloudevents+json), or plain JSON: the body is the event.
        return from_json(body, strict=strict)
    # The SDK reports any missing binary-mode attribute as "specversion": name the real one.
    for attr in ("type", "source", "id"):
        if not lower.get(f"ce-{attr}"):
            raise BadEvent(attr, f"required attribute is missing (header ce-{attr})")
    try:
        ce = from_http(lower, body)
    except Exception as exc:  # the SDK raises a zoo of types; all mean "not a CloudEvent"
        raise BadEvent(_sdk_field(exc), _sdk_message(exc)) from None
    return from_cloudevent(ce, strict=strict)


def _sdk_field(exc: Exception) -> str:
    text = str(exc)
    for attr in ("specversion", "type", "source", "id"):
        if attr in text:
            return attr
    return ""


def _sdk_message(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def to_binary_http(event: Event[Any]) -> tuple[dict[str, str], bytes]:
    headers, body = to_binary(to_cloudevent(event))
    return dict(headers), body


def to_structured_http(event: Event[Any]) -> tuple[dict[str, str], bytes]:
    headers, body = to_structured(to_cloudevent(event))
    return dict(headers), body
