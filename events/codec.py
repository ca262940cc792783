"""Reading and writing events: dicts, JSON, and CloudEvents HTTP (binary and structured modes).

This is the one module that imports the ``cloudevents`` SDK (pinned < 2.0 by
functions-framework), so the move to 2.x touches this file only.

**Tolerant inside, strict at the edge.** The catalog promises that optional fields may be added
without breaking consumers, and functions deploy one at a time, so a consumer may read an event
from a newer producer: inside (the bus, a functions-framework target) unknown attributes and
``data`` fields are ignored. At the external edge (``POST /events``, ``upshift publish``) a
caller's unknown field is a typo to report, not data to drop: ``strict=True`` refuses it as a
:class:`BadEvent` naming the field.

**Extension attributes** follow the CloudEvents spec: a producer may add any attribute whose name
is lower-case ASCII letters and digits, at most 20 characters (``comexampleextension1``), with a
string, integer or boolean value. Such an attribute is accepted in both modes and carried in
:attr:`Event.extensions`; an attribute whose *name* is not valid is refused at the edge (naming
it) and ignored inside.

**Strict also means the spec's own rules**: ``specversion`` is required, ``data`` and
``data_base64`` are exclusive, ``time`` carries a UTC offset (RFC 3339). Everywhere: ``type`` is a
string, no text holds invalid Unicode (a ``ce-*`` header's non-UTF-8 bytes, a lone surrogate
escape), and JSON nesting stops at :data:`shared.limits.LIMITS` ``.max_depth``.

An event read off the wire is an ``Event[Any]``: its ``data`` model is chosen at run time from
the catalog by ``type``; a handler's ``Event[StageRequested]`` annotation is what narrows it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent, from_http
from pydantic import BaseModel, ValidationError

from events.catalog import CATALOG
from events.envelope import EXTENSION_NAME, Event
from shared.limits import LIMITS, JsonRefused, check_bounded, loads_bounded

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


#: What a structured-mode object may hold besides the envelope's fields (``extensions`` is not an
#: attribute: it is where the others are carried).
_ATTRIBUTES = frozenset(_known(Event) - {"extensions"}) | {"data_base64"}


def _extensions(obj: Mapping[str, Any], *, strict: bool) -> dict[str, str | int | bool]:
    """The extension attributes of ``obj``: validly named ones kept, others refused (strict) or
    dropped."""
    out: dict[str, str | int | bool] = {}
    for name in sorted(set(obj) - _ATTRIBUTES):
        value = obj[name]
        if not isinstance(name, str) or not EXTENSION_NAME.match(name):
            if strict:
                raise BadEvent(
                    str(name)[:64],
                    "not a valid attribute name (CloudEvents: lower-case letters and digits, at most "
                    f"{LIMITS.max_extension_name} characters)",
                )
            continue
        if value is None:
            continue  # the spec: an attribute with a null value is absent
        if not isinstance(value, str | int | bool):
            if strict:
                raise BadEvent(name, "an extension attribute is a string, an integer or a boolean")
            continue
        if isinstance(value, str) and len(value) > LIMITS.max_extension_value:
            if strict:
                raise BadEvent(name, f"longer than {LIMITS.max_extension_value} characters")
            continue
        out[name] = value
    if len(out) > LIMITS.max_extensions and strict:
        raise BadEvent(sorted(out)[LIMITS.max_extensions], f"more than {LIMITS.max_extensions} extensions")
    return out


def _strict_spec(obj: Mapping[str, Any], model: type[BaseModel]) -> None:
    """The spec's rules a tolerant reader lets pass, and unknown ``data`` fields."""
    if "specversion" not in obj:
        raise BadEvent("specversion", "required attribute is missing")
    if "data_base64" in obj:
        raise BadEvent("data_base64", "give data (a JSON object), not data_base64")
    time = obj.get("time")
    if "time" in obj and not isinstance(time, str):  # pydantic would take a number as Unix time
        raise BadEvent("time", "must be an RFC 3339 timestamp string")
    if isinstance(time, str) and not _OFFSET.search(time):
        raise BadEvent("time", "must carry a UTC offset (RFC 3339), e.g. 2026-01-05T00:00:00Z")
    data = obj["data"]
    fields = sorted(set(data) - _known(model)) if isinstance(data, Mapping) else []
    if fields:
        raise BadEvent(f"data.{fields[0]}", "unknown field for this event type")


_OFFSET = re.compile(r"(?:[Zz]|[+-]\d{2}:\d{2})$")


def _text(obj: Mapping[str, Any]) -> None:
    """No attribute is text that is not Unicode; the document's nesting is bounded."""
    try:
        check_bounded(obj)
    except JsonRefused as exc:
        raise BadEvent(exc.field, exc.message) from None


def from_dict(obj: Mapping[str, Any], *, strict: bool = False) -> Event[Any]:
    """Parse a structured-mode dict into a typed ``Event``; raises :class:`BadEvent` naming the field.

    ``strict`` (the external edge) refuses unknown ``data`` fields, invalid attribute names and
    what the spec forbids (see the module); otherwise those are ignored (a tolerant reader of
    newer producers). Validly named extension attributes are carried either way."""
    if not isinstance(obj, Mapping):
        raise BadEvent("", "an event must be a JSON object")
    _text(obj)
    return _parse(obj, strict=strict)


def _parse(obj: Mapping[str, Any], *, strict: bool) -> Event[Any]:
    """:func:`from_dict` after the nesting and text check (which ``loads_bounded`` also makes)."""
    type_ = obj.get("type")
    if not type_:
        raise BadEvent("type", "required attribute is missing")
    if not isinstance(type_, str):
        raise BadEvent("type", "must be a string")
    if type_ not in CATALOG:
        raise BadEvent("type", f"unknown event type {type_[:100]!r} (see `upshift events list`)")
    if "data" not in obj:
        raise BadEvent("data", "required: the event's payload")
    model = CATALOG[type_].model
    for attr in ("id", "source"):
        if not obj.get(attr):
            raise BadEvent(attr, "required attribute is missing")
    if strict:
        _strict_spec(obj, model)
    extensions = _extensions(obj, strict=strict)
    try:
        data = model.model_validate(obj["data"])
    except ValidationError as exc:
        raise _first_error(exc, "data.") from None
    attrs = {k: v for k, v in obj.items() if k in _ATTRIBUTES and k not in ("data", "data_base64")}
    try:
        return _typed(model)(data=data, extensions=extensions, **attrs)
    except ValidationError as exc:
        raise _first_error(exc) from None


def from_json(raw: str | bytes, *, strict: bool = False) -> Event[Any]:
    """Parse structured-mode JSON text into a typed ``Event``; raises :class:`BadEvent` naming the
    field. The text is parsed once (by ``loads_bounded``, which words malformed, too deep or
    non-Unicode input); the rest is :func:`from_dict`'s work on that object."""
    try:
        obj = loads_bounded(raw)
    except JsonRefused as exc:
        raise BadEvent(exc.field, exc.message) from None
    if not isinstance(obj, Mapping):
        raise BadEvent("", "an event must be a JSON object")
    if not strict and obj.keys() <= _ATTRIBUTES:
        fast = _validate_whole(obj)
        if fast is not None:
            return fast
    return _parse(obj, strict=strict)  # loads_bounded made from_dict's check: not twice per event


def _validate_whole(obj: Mapping[str, Any]) -> Event[Any] | None:
    """The tolerant reader's fast path (a bus delivery): an event with nothing but envelope
    attributes and ``data`` (no extension to collect, nothing to drop), validated in one pass by
    ``Event[model]`` — what :func:`_parse` makes of it (envelope and data validated the same way,
    from the same parsed object), at half the cost. None when it cannot say: :func:`_parse` then
    decides, and words any error as it always has."""
    type_ = obj.get("type")
    if not isinstance(type_, str) or "data" not in obj or not obj.get("id") or not obj.get("source"):
        return None
    validate = _WHOLE.get(type_) or _whole(type_)
    if validate is None:
        return None
    try:
        event: Event[Any] = validate(obj)
    except ValidationError:
        return None
    return event


def _whole(type_: str) -> Callable[[Any], Any] | None:
    """``Event[model].model_validate`` for a catalog type, as its schema validator's own method:
    the same validation without pydantic's per-call wrapper (a third of the cost of validating a
    delivery). Cached per type; None for a type not in the catalog."""
    entry = CATALOG.get(type_)
    if entry is None:
        return None
    typed = _typed(entry.model)
    if not typed.__pydantic_complete__:
        typed.model_rebuild()
    validate = _WHOLE[type_] = typed.__pydantic_validator__.validate_python
    return validate


_WHOLE: dict[str, Callable[[Any], Any]] = {}


def _typed(model: type[BaseModel]) -> type[Event[Any]]:
    """``Event[model]``, built once per model (pydantic's own lookup is a cost per event)."""
    typed = _TYPED.get(model)
    if typed is None:
        typed = _TYPED[model] = Event[model]  # type: ignore[valid-type]
    return typed


_TYPED: dict[type[BaseModel], type[Event[Any]]] = {}


def to_json(event: Event[Any]) -> str:
    """The structured-mode JSON text: :meth:`Event.to_wire`, serialised. Without extensions (every
    event Upshift emits) pydantic writes it in one pass — the same object (attributes left out
    where absent, ``time`` in RFC 3339 with ``Z``), at a third of the cost per event."""
    if event.extensions:
        return json.dumps(event.to_wire(), separators=(",", ":"))
    absent = {"extensions", *(name for name in _OPTIONAL if getattr(event, name) is None)}
    return event.model_dump_json(exclude=absent)


#: The attributes :func:`to_json` leaves out when absent.
_OPTIONAL = ("subject", "runid", "target", "stage", "kind")


def to_cloudevent(event: Event[Any]) -> CloudEvent:
    return CloudEvent(event.attributes(), event.data.model_dump(mode="json"))


def from_cloudevent(ce: CloudEvent, *, strict: bool = False) -> Event[Any]:
    """Typed event from an SDK ``CloudEvent`` (as functions-framework hands it over)."""
    obj: dict[str, Any] = dict(ce.get_attributes())
    data = ce.get_data()
    if isinstance(data, bytes | str):
        try:
            data = loads_bounded(data)
        except JsonRefused as exc:
            raise BadEvent("data", exc.message) from None
    obj["data"] = data
    return from_dict(obj, strict=strict)


def from_http_request(headers: Mapping[str, str], body: bytes, *, strict: bool = False) -> Event[Any]:
    """Parse an HTTP request in binary (``ce-*`` headers) or structured mode."""
    lower = {k.lower(): v for k, v in headers.items()}
    for name, value in lower.items():
        if name.startswith("ce-") and not _unicode(value):
            raise BadEvent(name[3:], f"header {name} is not valid UTF-8")
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


def _unicode(text: str) -> bool:
    """False for text holding surrogates (aiohttp decodes a header's non-UTF-8 bytes to them)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
