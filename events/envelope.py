"""The typed CloudEvents 1.0 envelope every Upshift event travels in.

``Event[D]`` carries the CloudEvents context attributes, the correlation extensions
(``runid``, ``target``, ``stage``, ``kind``) and a typed ``data`` payload. Any other extension
attribute a producer added (the spec allows them: a lower-case alphanumeric name of at most 20
characters, a string, integer or boolean value) is carried in ``extensions``, written back as a
top-level attribute; Upshift reads none of them.

Causes (webhooks, timers, chat) get a random id (:func:`new_id`). *Consequences* — every event a
handler emits — are built by :func:`consequence`, the one builder: its id is
:func:`consequence_id` of a ``key`` the caller names explicitly (the parts that make the event
unique: the run and the step, or the cause's id for :meth:`Event.follow`), so a re-run of the
same handler on the same input emits the same ids and the bus drops the copy. A key, once in
use, never changes: events in flight across a deploy are deduplicated by id.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.limits import LIMITS

__all__ = ["EXTENSIONS", "EXTENSION_NAME", "SOURCE", "Event", "consequence", "consequence_id", "new_id"]

D = TypeVar("D", bound=BaseModel)
D2 = TypeVar("D2", bound=BaseModel)

SOURCE = "/upshift"
#: Correlation extension attributes: lower-case alphanumerics, at most 20 characters (CloudEvents naming rule).
EXTENSIONS = ("runid", "target", "stage", "kind")
_EXT_VALUE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_TYPE = re.compile(r"^[a-z0-9]+(\.[a-z0-9_]+)+$")
#: A CloudEvents attribute name: lower-case ASCII letters and digits, at most 20 characters.
EXTENSION_NAME = re.compile(rf"^[a-z0-9]{{1,{LIMITS.max_extension_name}}}$")


def new_id() -> str:
    """A fresh random id, for events that are causes (webhooks, timers, chat), not consequences."""
    return uuid.uuid4().hex


def consequence_id(*parts: object) -> str:
    """Deterministic id from the parts that make an event unique (e.g. run, stage, attempt, type).

    Same parts, same id: the bus deduplicates re-emissions of a redelivered handler.
    """
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return h[:32]


class Event(BaseModel, Generic[D]):
    """A CloudEvents 1.0 event with Upshift's correlation extensions and a typed ``data``."""

    # Tolerant inside (an invalidly named attribute is ignored); the external edge refuses it
    # (events.codec, strict=True). Validly named extensions are carried in ``extensions``.
    model_config = ConfigDict(extra="ignore", frozen=True)

    specversion: str = "1.0"
    type: str
    source: str = Field(SOURCE, min_length=1, max_length=LIMITS.max_uri)
    id: str = Field(default_factory=new_id, min_length=1, max_length=128)
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    subject: str | None = Field(None, max_length=LIMITS.max_uri)
    datacontenttype: str = "application/json"
    runid: str | None = None
    target: str | None = None
    stage: str | None = None
    kind: str | None = None
    #: Other producers' extension attributes, by name (not Upshift's: it reads none of them).
    extensions: dict[str, str | int | bool] = Field(default_factory=dict)
    data: D

    @field_validator("specversion")
    @classmethod
    def _v1(cls, v: str) -> str:
        if v != "1.0":
            raise ValueError("only CloudEvents specversion 1.0 is supported")
        return v

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        if not _TYPE.match(v):
            raise ValueError("type must be reverse-DNS, e.g. dev.upshift.stage.requested")
        return v

    @field_validator("runid", "target", "stage", "kind")
    @classmethod
    def _ext(cls, v: str | None) -> str | None:
        if v is not None and not _EXT_VALUE.match(v):
            raise ValueError("must be 1-128 characters of letters, digits, '.', '_', ':' or '-'")
        return v

    @field_validator("extensions")
    @classmethod
    def _extensions(cls, v: dict[str, str | int | bool]) -> dict[str, str | int | bool]:
        for name, value in v.items():
            if not EXTENSION_NAME.match(name) or name in _RESERVED:
                raise ValueError(f"{name!r} is not an extension attribute name")
            if isinstance(value, str) and len(value) > LIMITS.max_extension_value:
                raise ValueError(f"{name}: longer than {LIMITS.max_extension_value} characters")
        return v

    def attributes(self) -> dict[str, str]:
        """The CloudEvents context attributes (everything but ``data``) as strings, None dropped."""
        out: dict[str, str] = {
            "specversion": self.specversion,
            "type": self.type,
            "source": self.source,
            "id": self.id,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "datacontenttype": self.datacontenttype,
        }
        if self.subject is not None:
            out["subject"] = self.subject
        for name in EXTENSIONS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        for name, ext in self.extensions.items():
            # the spec's canonical string forms (binary mode sends every attribute as text)
            out[name] = ("true" if ext else "false") if isinstance(ext, bool) else str(ext)
        return out

    def correlation(self) -> dict[str, str | None]:
        """The fields every log line inside a handler carries."""
        return {
            "event_id": self.id,
            "event_type": self.type,
            "runid": self.runid,
            "target": self.target,
            "stage": self.stage,
        }

    def to_wire(self) -> dict[str, Any]:
        """Structured-mode JSON object (attributes + ``data``)."""
        out: dict[str, Any] = dict(self.attributes())
        out.update(self.extensions)  # structured mode keeps an integer or boolean as it was given
        out["data"] = self.data.model_dump(mode="json")
        return out

    def follow(
        self, type: str, data: D2, *, id_parts: tuple[object, ...] = (), **ext: str | None
    ) -> Event[D2]:
        """A consequence of this event: same subject and correlation unless overridden.

        The key is this event's id, the new type and ``id_parts``, so re-handling this event emits
        exactly the same consequences (and a different cause, different ones).
        """
        unknown = set(ext) - set(EXTENSIONS)
        if unknown:
            raise TypeError(f"not a correlation extension: {', '.join(sorted(unknown))}")
        a = {n: ext[n] if n in ext else getattr(self, n) for n in EXTENSIONS}
        return consequence(
            type,
            data,
            key=(self.id, type, *id_parts),
            subject=self.subject,
            runid=a["runid"],
            target=a["target"],
            stage=a["stage"],
            kind=a["kind"],
        )


#: Names an extension may not take: the envelope's own attributes.
_RESERVED = frozenset(Event.model_fields) | {"data_base64"}


def consequence(
    type: str,
    data: D2,
    *,
    key: Sequence[object],
    subject: str | None = None,
    source: str = SOURCE,
    runid: str | None = None,
    target: str | None = None,
    stage: str | None = None,
    kind: str | None = None,
    time: datetime | None = None,
) -> Event[D2]:
    """An event a handler (or an edge, or the runtime's clock) emits, with the deterministic id
    ``consequence_id(*key)``.

    ``key`` names what makes the event unique (e.g. the type, the run, the stage and attempt):
    the same key is the same event, whichever delivery of whichever input emits it. ``time``
    defaults to now.
    """
    return Event(
        type=type,
        id=consequence_id(*key),
        source=source,
        subject=subject,
        runid=runid,
        target=target,
        stage=stage,
        kind=kind,
        time=time if time is not None else datetime.now(UTC),
        data=data,
    )
