"""``pause``, ``resume``, ``freeze`` and ``unfreeze``: the control document and the windows.

* pause — new stages stop starting in scope (a stage that has not begun is held:
  :func:`shared.engine.control.hold_if_paused`); vendor jobs already running are followed;
* resume — the pause is lifted, the stages it held are released, a window halted by a failed
  run the scope covers is un-halted, and every window the scope reaches gets ``control.changed``
  (``start_upgrades`` looks at it again);
* freeze — no new run starts in scope until it expires (``start_upgrades`` checks at release);
* unfreeze — the chat freezes of that scope are lifted (fleet-file freezes stay: edit the file).

Each window's ``control.changed`` id is derived from the command's id and the window, so a
redelivered command emits the same events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from events.catalog import ChatCommand, ControlChanged, T
from events.envelope import Event, consequence
from shared.domain.commands import Freeze, Pause, Resume, Scope, Unfreeze, scope_text
from shared.domain.fleet import Fleet
from shared.domain.freezes import fleet_freezes
from shared.domain.rbac import Identity
from shared.domain.scopes import covers, targets_in
from shared.domain.waves import ANYTIME, BUCKET, window_key
from shared.domain.waves import resume as lift_halt
from shared.engine import control
from shared.engine.chatops.outcome import Outcome, invalid, ok
from shared.runtime.function import Context
from shared.store.ledger import mutate

__all__ = ["freeze", "pause", "resume", "unfreeze", "windows_of"]


def windows_of(scope: Scope, fleet: Fleet) -> list[str]:
    """The waves documents (window names, ``_anytime``) holding targets the scope covers."""
    return sorted({window_key(t.window) for t in targets_in(scope, fleet)})


def _changed(event: Event[ChatCommand], action: str, text: str, key: str, by: str) -> Event[ControlChanged]:
    data = ControlChanged(action=action, scope=text, window=key, by=by)  # type: ignore[arg-type]
    return consequence(T.CONTROL_CHANGED, data, key=(T.CONTROL_CHANGED, event.id, key), subject=key)


async def pause(cmd: Pause, event: Event[ChatCommand], who: Identity, ctx: Context, now: datetime) -> Outcome:
    text = scope_text(cmd.scope)
    fresh = await control.pause(ctx.store.kv, cmd.scope, text, by=who.id, event_id=event.id, now=now)
    if not fresh:
        return ok(f"{text} was paused already")
    n = len(targets_in(cmd.scope, ctx.need_fleet()))
    return ok(
        f"paused {text} ({n} target(s)): no new stage starts there; vendor jobs already running are "
        f"followed to their end. `/upshift resume {text}` to go on"
    )


async def resume(
    cmd: Resume, event: Event[ChatCommand], who: Identity, ctx: Context, now: datetime
) -> Outcome:
    fleet = ctx.need_fleet()
    text = scope_text(cmd.scope)
    lifted, released, still = await control.resume(ctx.store.kv, text, event_id=event.id)
    unhalted: list[str] = []
    for key in [*sorted(fleet.windows), ANYTIME]:
        covered = _halted_in(cmd.scope, fleet, key)

        def change(d: dict[str, Any] | None, key: str = key, covered: Any = covered) -> dict[str, Any]:
            return lift_halt(d, key, covered=covered, by=event.id, now=now)

        doc = await mutate(ctx.store.kv, BUCKET, key, change, outbox=True)
        if any(r.get("by") == event.id for r in doc.get("resumed", [])):
            unhalted.append(key)
    keys = sorted(set(windows_of(cmd.scope, fleet)) | set(unhalted))
    events: list[Any] = [*released, *(_changed(event, "resume", text, k, who.id) for k in keys)]
    parts = []
    if lifted:
        parts.append(f"lifted pause {', '.join(lifted)}")
    if released:
        parts.append(f"{len(released)} held stage(s) released")
    if unhalted:
        parts.append(f"un-halted {', '.join(unhalted)}")
    if still:
        parts.append(f"{len(still)} run(s) still held by another pause")
    if not lifted and not unhalted:
        return invalid(f"nothing to resume in {text}: no pause on it and no halted window")
    return ok(f"resumed {text}: " + "; ".join(parts), events)


def _halted_in(scope: Scope, fleet: Fleet, key: str) -> Any:
    def covered(halted: dict[str, Any]) -> bool:
        try:
            kind: str = fleet.target(halted["target"]).kind
        except KeyError:
            kind = ""
        window = None if key == ANYTIME else key
        return covers(
            scope, target=halted["target"], kind=kind, window=window, wave=int(halted.get("wave", 0))
        )

    return covered


async def freeze(
    cmd: Freeze, event: Event[ChatCommand], who: Identity, ctx: Context, now: datetime
) -> Outcome:
    text = scope_text(cmd.scope)
    entry = await control.freeze(
        ctx.store.kv, text, until=now + cmd.duration, reason=cmd.reason, by=who.id, event_id=event.id, now=now
    )
    return ok(f"froze {text} until {entry['ends_at']}: no new run starts there ({cmd.reason})")


async def unfreeze(
    cmd: Unfreeze, event: Event[ChatCommand], who: Identity, ctx: Context, now: datetime
) -> Outcome:
    fleet = ctx.need_fleet()
    text = scope_text(cmd.scope)
    lifted = await control.unfreeze(ctx.store.kv, text, event_id=event.id)
    from_file = [f for f in fleet_freezes(fleet.freezes, now) if f.scope_text == text or text == "all"]
    note = (
        f"; still frozen by the fleet file: {', '.join(f.name for f in from_file)} (edit the fleet file to lift)"
        if from_file
        else ""
    )
    if not lifted:
        return invalid(f"no chat freeze on {text}{note}")
    events = [_changed(event, "unfreeze", text, k, who.id) for k in windows_of(cmd.scope, fleet)]
    return ok(f"unfroze {text} ({len(lifted)} freeze(s) lifted){note}", events)
