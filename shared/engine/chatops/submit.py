"""Submitting a command typed outside chat (the HTTP API, the dashboard's forms): its text → a
``chat.command`` on the bus → the command's audit entry.

The one flow behind every such edge; the edge authenticates the caller (a bearer token, a
signed-in session and its CSRF token) and answers in its own form (JSON, a page). In order:

1. the text (:func:`command_text`) is checked with :func:`shared.domain.commands.parse`: a
   refusal raises :class:`Ungrammatical` naming :attr:`Submission.field` (the field its free
   text came from, else the run id), with the grammar's message and usage line;
2. it becomes the :class:`~events.catalog.ChatCommand` ``platform="api"``, ``channel`` the edge,
   ``user`` the caller's; the catalog's limits (text and user length) raise :class:`OverLimit`
   naming the field;
3. the event (:func:`command_event`, ``via=token:<name>``, source ``/upshift/<edge>``, the domain
   clock's time) has the id ``consequence_id(<edge>, <token name>, <key>)`` when the edge has a
   retry key (an ``Idempotency-Key``, a form's nonce) — a retried request is the same command,
   the bus drops the copy — else a new one;
4. it is published, logged (``<edge> command published`` on the logger ``upshift.<edge>``), and its audit entry awaited at most
   ``wait_s`` (:func:`await_entry`).

Nothing is published when 1 or 2 refuses. **Who may** is not decided here: ``chat_command``
authorizes the command with the token's ``rbac`` grants, executes it and records the audit entry
(:mod:`shared.store.audit`) that :class:`Submitted` carries back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as _field  # (Submission has an attribute named field)
from datetime import datetime

from pydantic import ValidationError

from events.catalog import ChatCommand, T
from events.envelope import Event, consequence_id, new_id
from shared.bus.base import Bus
from shared.domain.commands import CommandError, parse
from shared.log import get_logger
from shared.store.audit import Audit
from shared.store.base import Value

__all__ = [
    "BadCommand",
    "OverLimit",
    "Submission",
    "Submitted",
    "Ungrammatical",
    "await_entry",
    "command_event",
    "command_text",
    "submit",
]


class BadCommand(Exception):
    """A command refused before anything was published: ``field`` names what was wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Ungrammatical(BadCommand):
    """The grammar refused the text; ``usage`` is its usage line."""

    def __init__(self, field: str, message: str, usage: str) -> None:
        super().__init__(field, message)
        self.usage = usage


class OverLimit(BadCommand):
    """The catalog's limits refused the command (a text or user name too long)."""


@dataclass(frozen=True, slots=True)
class Submission:
    """One command, as an edge has read it."""

    #: ``api`` or ``dashboard``: the command's channel, its id's namespace and its source
    edge: str
    #: the token's name: ``via=token:<name>``, and the retry key's owner
    principal: str
    #: who acts, as the caller names them (recorded; the role comes from the token)
    user: str
    text: str
    #: for the log line: the route's action and run
    action: str
    run: str
    #: the field a grammar refusal names (where the free text came from)
    field: str = "id"
    #: the retry key: the same key (for the same token) is the same command
    key: str | None = None
    #: more fields for the log line (a cancel's reason, which the grammar does not take)
    note: Mapping[str, str] = _field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Submitted:
    """A published command: its id, whether the bus took it as new, and its audit entry (None
    when none was recorded within the wait: the command still runs)."""

    id: str
    text: str
    fresh: bool
    entry: Value | None

    @property
    def other_text(self) -> bool:
        """The entry under this id is another command's (a retry key reused for other text)."""
        return self.entry is not None and self.entry.get("text") not in (None, self.text)

    @property
    def outcome(self) -> str | None:
        """The entry's outcome (``ok``, ``refused``, ``invalid``, ``error``), None without one."""
        return None if self.entry is None else str(self.entry.get("outcome", "error"))


def command_text(action: str, run: str, *, target: str | None = None, free: str | None = None) -> str:
    """The chat text of a run's action: ``approve <run> [comment]``, ``deny <run> <reason>``,
    ``cancel <run>``; ``pause``/``resume`` act on the run's ``target``."""
    subject = target if action in ("pause", "resume") and target is not None else run
    return f"{action} {subject} {free}" if free else f"{action} {subject}"


def command_event(
    command: ChatCommand,
    *,
    via: str,
    id: str | None = None,
    source: str = "/upshift",
    time: datetime | None = None,
) -> Event[ChatCommand]:
    """The ``chat.command`` event of ``command``, stamped ``via`` (who vouches for the identity)."""
    event = Event(
        type=T.CHAT_COMMAND, id=id or new_id(), source=source, data=command, extensions={"via": via}
    )
    return event if time is None else event.model_copy(update={"time": time})


async def await_entry(audit: Audit, entry_id: str, within: float, *, every: float = 0.05) -> Value | None:
    """The audit entry ``entry_id`` once it is recorded, or None if it is not within ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        entry = await audit.get(entry_id)
        if entry is not None or time.monotonic() >= deadline:
            return entry
        await asyncio.sleep(every)


def _limits_refusal(exc: ValidationError) -> OverLimit:
    first = exc.errors(include_url=False)[0]
    return OverLimit(".".join(str(p) for p in first["loc"]) or "text", first["msg"])


async def submit(sub: Submission, bus: Bus, audit: Audit, now: datetime, wait_s: float) -> Submitted:
    """Publish ``sub`` as a ``chat.command`` at ``now`` and wait for its audit entry (see the
    module docstring); :class:`BadCommand` when it is refused before publishing."""
    try:
        parse(sub.text)
    except CommandError as exc:
        raise Ungrammatical(sub.field, exc.message, exc.usage) from None
    try:
        command = ChatCommand(platform="api", channel=sub.edge, user=sub.user, text=sub.text)
    except ValidationError as exc:
        raise _limits_refusal(exc) from None
    event = command_event(
        command,
        via=f"token:{sub.principal}",
        id=new_id() if sub.key is None else consequence_id(sub.edge, sub.principal, sub.key),
        source=f"/upshift/{sub.edge}",
        time=now,
    )
    fresh = await bus.publish(event)
    get_logger(f"upshift.{sub.edge}").info(  # upshift.api, upshift.dashboard
        f"{sub.edge} command published",
        command_id=event.id,
        command=sub.action,
        run=sub.run,
        principal=sub.principal,
        duplicate=not fresh,
        **sub.note,
    )
    entry = await await_entry(audit, event.id, wait_s)
    return Submitted(id=event.id, text=sub.text, fresh=fresh, entry=entry)
