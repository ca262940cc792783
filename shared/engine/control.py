"""Operator control state: pauses, chat freezes and the stages held by a pause.

One document (bucket ``control``, key ``state``) changed only by compare-and-set, so a pause,
its resume and the stages a pause holds can never lose each other:

```
{"pauses":  {scope text: {"by", "at", "event"}},
 "freezes": {freeze id: {"name", "scope", "starts_at", "ends_at", "reason", "by"}},
 "holds":   {run id: {"event": stage.requested (structured JSON), "scope": the pause,
                      "facts": {"target", "kind", "window", "wave"}}},
 "resumed": {resume command id: [stage.requested JSON released by it]}}   # the last 20
```

* :func:`hold_if_paused` — called by a stage function before a stage begins: a run a pause
  covers keeps its ``stage.requested`` here instead of starting (the hold is its consequence:
  a redelivery finds it and holds again).
* :func:`resume` — drops the pause and releases the holds no other pause covers, as copies of
  the held events with new ids (derived from the held event and the resume command, and journalled
  under the command's id so a redelivered resume emits the very same copies).
* :func:`take_hold` — a cancelled run's hold is released at once (its stage then refuses to
  start, and the run ends ``cancelled``).

Fleet-file freezes are not here (they are the fleet's); see :mod:`shared.domain.freezes`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from events.codec import from_dict
from events.envelope import Event, consequence_id
from shared.domain.commands import Scope, parse_scope
from shared.domain.fleet import Fleet
from shared.domain.freezes import ActiveFreeze, fleet_freezes, from_stored
from shared.domain.scopes import covers_run
from shared.store.base import KV, Value
from shared.store.ledger import mutate

__all__ = [
    "CONTROL",
    "active_freezes",
    "control_state",
    "freeze",
    "hold_if_paused",
    "pause",
    "paused_by",
    "resume",
    "take_hold",
    "unfreeze",
]

CONTROL = "control"
_KEY = "state"
_JOURNAL = 20


def _copy(doc: Value | None) -> dict[str, Any]:
    base = doc or {}
    return {
        "pauses": dict(base.get("pauses", {})),
        "freezes": dict(base.get("freezes", {})),
        "holds": dict(base.get("holds", {})),
        "resumed": dict(base.get("resumed", {})),
    }


async def control_state(kv: KV) -> dict[str, Any]:
    """The control document as it is now (empty parts when nothing was ever paused or frozen)."""
    e = await kv.get(CONTROL, _KEY)
    return _copy(None if e is None else e.value)


def paused_by(doc: dict[str, Any], run: dict[str, Any]) -> str | None:
    """The scope text of a pause covering ``run`` (target, kind, window, wave), or None."""
    for text in sorted(doc.get("pauses", {})):
        if covers_run(parse_scope(text), run):
            return str(text)
    return None


async def hold_if_paused(kv: KV, runid: str, run: dict[str, Any], event: Event[Any]) -> str | None:
    """Hold ``event`` (a run's ``stage.requested``) when a pause covers ``run``: the pause's scope,
    else None (the stage may begin). Read first, so the unpaused path costs one read."""
    if paused_by(await control_state(kv), run) is None:
        return None
    held: list[str | None] = [None]

    def change(cur: Value | None) -> Value:
        doc = _copy(cur)
        scope = paused_by(doc, run)
        held[0] = scope
        if scope is not None:
            facts = {k: run.get(k) for k in ("target", "kind", "window", "wave")}
            doc["holds"][runid] = {"event": event.to_wire(), "scope": scope, "facts": facts}
        return doc

    await mutate(kv, CONTROL, _KEY, change, outbox=True)
    return held[0]


async def pause(kv: KV, scope: Scope, text: str, *, by: str, event_id: str, now: datetime) -> bool:
    """Pause ``scope`` (its text as typed: :func:`shared.domain.commands.scope_text`). False when
    it was paused already by another command (a redelivery of this one is True again)."""
    fresh = [True]

    def change(cur: Value | None) -> Value:
        doc = _copy(cur)
        have = doc["pauses"].get(text)
        fresh[0] = have is None or have.get("event") == event_id
        if have is None:
            doc["pauses"][text] = {"by": by, "at": now.isoformat(), "event": event_id}
        return doc

    await mutate(kv, CONTROL, _KEY, change, outbox=True)
    return fresh[0]


async def resume(kv: KV, text: str, *, event_id: str) -> tuple[list[str], list[Event[Any]], list[str]]:
    """Lift the pause on ``text`` (``all`` lifts every pause). Returns the pauses lifted, the held
    stages released (copies with new ids), and the runs still held by another pause."""
    out: list[tuple[list[str], list[dict[str, Any]], list[str]]] = []

    def change(cur: Value | None) -> Value:
        doc = _copy(cur)
        if event_id in doc["resumed"]:  # a redelivery: the same copies again
            out[:] = [
                (list(doc["resumed"][event_id].get("lifted", [])), doc["resumed"][event_id]["events"], [])
            ]
            return doc
        lifted = sorted(doc["pauses"]) if text == "all" else [t for t in doc["pauses"] if t == text]
        for t in lifted:
            del doc["pauses"][t]
        released: list[dict[str, Any]] = []
        still: list[str] = []
        for rid, hold in sorted(doc["holds"].items()):
            if paused_by(doc, hold["facts"]) is None:
                released.append(hold["event"])
                del doc["holds"][rid]
            else:
                still.append(rid)
        doc["resumed"][event_id] = {"lifted": lifted, "events": released}
        doc["resumed"] = dict(list(doc["resumed"].items())[-_JOURNAL:])
        out[:] = [(lifted, released, still)]
        return doc

    await mutate(kv, CONTROL, _KEY, change, outbox=True)
    lifted, released, still = out[0]
    return lifted, [_copy_of(w, event_id) for w in released], still


async def take_hold(kv: KV, runid: str, *, event_id: str) -> Event[Any] | None:
    """Release ``runid``'s held stage now (the run is being cancelled): its copy, or None."""
    out: list[dict[str, Any] | None] = [None]

    def change(cur: Value | None) -> Value:
        doc = _copy(cur)
        key = f"cancel:{event_id}"
        if key in doc["resumed"]:
            events = doc["resumed"][key]["events"]
            out[0] = events[0] if events else None
            return doc
        hold = doc["holds"].pop(runid, None)
        out[0] = None if hold is None else hold["event"]
        doc["resumed"][key] = {"lifted": [], "events": [] if hold is None else [hold["event"]]}
        doc["resumed"] = dict(list(doc["resumed"].items())[-_JOURNAL:])
        return doc

    await mutate(kv, CONTROL, _KEY, change, outbox=True)
    return None if out[0] is None else _copy_of(out[0], event_id)


def _copy_of(wire: dict[str, Any], by_event: str) -> Event[Any]:
    """A held event, re-issued: same attributes and data, an id of its own (the original id was
    delivered already, and the bus would drop it as a duplicate)."""
    held = from_dict(wire)
    return held.model_copy(update={"id": consequence_id(held.id, "released", by_event)})


async def freeze(
    kv: KV, text: str, *, until: datetime, reason: str, by: str, event_id: str, now: datetime
) -> dict[str, Any]:
    """A chat freeze of scope ``text`` until ``until`` (id: the command's); the stored entry."""
    entry = {
        "name": f"chat-{event_id[:12]}",
        "scope": text,
        "starts_at": now.isoformat(),
        "ends_at": until.isoformat(),
        "reason": reason,
        "by": by,
    }

    def change(cur: Value | None) -> Value:
        doc = _copy(cur)
        doc["freezes"].setdefault(event_id, entry)
        doc["freezes"] = {k: v for k, v in doc["freezes"].items() if v["ends_at"] > now.isoformat()}
        doc["freezes"].setdefault(event_id, entry)
        return doc

    doc = await mutate(kv, CONTROL, _KEY, change, outbox=True)
    stored: dict[str, Any] = doc["freezes"][event_id]
    return stored


async def unfreeze(kv: KV, text: str, *, event_id: str) -> list[dict[str, Any]]:
    """Lift the chat freezes of scope ``text`` (``all``: every chat freeze); those lifted."""
    out: list[list[dict[str, Any]]] = [[]]

    def change(cur: Value | None) -> Value:
        doc = _copy(cur)
        key = f"unfreeze:{event_id}"
        if key in doc["resumed"]:
            out[0] = doc["resumed"][key]["events"]
            return doc
        lifted = [v for v in doc["freezes"].values() if text == "all" or v["scope"] == text]
        doc["freezes"] = {k: v for k, v in doc["freezes"].items() if v not in lifted}
        doc["resumed"][key] = {"lifted": [], "events": lifted}
        doc["resumed"] = dict(list(doc["resumed"].items())[-_JOURNAL:])
        out[0] = lifted
        return doc

    await mutate(kv, CONTROL, _KEY, change, outbox=True)
    return out[0]


def active_freezes(fleet: Fleet, doc: dict[str, Any], now: datetime) -> list[ActiveFreeze]:
    """The freezes in force at ``now``: the fleet file's and the chat ones of the control document."""
    out = fleet_freezes(fleet.freezes, now)
    for stored in doc.get("freezes", {}).values():
        f = from_stored(stored)
        if f.in_force(now):
            out.append(f)
    return out
