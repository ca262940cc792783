"""``approve``, ``deny``, ``cancel`` and ``upgrade``: changing one run (or every run in a scope).

Order of writes, so that a process killed between any two loses nothing and a redelivery
returns the same outcome and events:

* approve — the grant goes into the run's waves entry (it names the command's event id: a
  redelivery finds it), then the ledger's ``approved_by``; ``run.approved`` once enough approved;
* deny — the ledger first (``denied``, with the command's event id), then the waves entry leaves;
  a redelivery finds the ledger denied by itself and does the rest again;
* cancel — a run not started: the ledger (``cancelled``, with the command's id), then the waves
  entry; ``upgrade.cancelled``. A run started: ``cancel_requested`` on the ledger (its next stage
  refuses to begin unless the upgrade stage has begun; ``advance`` then ends it) and a hold a
  pause kept is released so that happens now.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from events.catalog import ChatCommand, T
from events.envelope import Event
from shared.domain.approvals import approvers_of, grant
from shared.domain.chat import escape_mrkdwn
from shared.domain.commands import Approve, Cancel, Deny, Run, Scope, Upgrade, scope_text
from shared.domain.plan import Decision
from shared.domain.rbac import Identity, approver_groups
from shared.domain.scopes import covers_run
from shared.domain.stages import run_id
from shared.domain.versions import BadVersion, compare, parse_version
from shared.domain.waves import ANYTIME, BUCKET, remove, set_entry, window_key
from shared.domain.windows import next_open, window_at
from shared.engine.approvals import approved_event, denied_event
from shared.engine.chatops.outcome import Outcome, invalid, ok, refused
from shared.engine.consequences import run_cancelled
from shared.engine.control import take_hold
from shared.engine.planning import plan_runs
from shared.runtime.function import Context
from shared.store.base import Value
from shared.store.ledger import PENDING, TERMINAL, RunState, mutate

__all__ = ["approve", "cancel", "deny", "describe_run", "upgrade"]


def describe_run(rid: str, run: Value) -> str:
    """``r0123… (kafka-canary 3.5.1 → 3.6.1)`` for replies."""
    return f"`{rid}` ({escape_mrkdwn(str(run.get('target', '?')))} {run.get('from_version', '?')} → {run.get('to_version', '?')})"


async def _entry(ctx: Context, rid: str, run: Value) -> tuple[str, dict[str, Any] | None]:
    key = window_key(run.get("window"))
    e = await ctx.store.kv.get(BUCKET, key)
    return key, None if e is None else e.value.get("runs", {}).get(rid)


def _where(key: str) -> str:
    return "as soon as it may" if key == ANYTIME else f"in window {key}"


async def approve(
    cmd: Approve, event: Event[ChatCommand], who: Identity, ctx: Context, now: datetime
) -> Outcome:
    rid = cmd.run.id
    run = await ctx.store.ledger.run(rid)
    if run is None:
        return invalid(f"there is no run `{rid}`", rid)
    key, entry = await _entry(ctx, rid, run)
    state = None if entry is None else entry.get("approval")
    if entry is None or state is None:
        if run.get("state") not in PENDING:
            return invalid(f"{describe_run(rid, run)} is {run.get('state')}: nothing to approve", rid)
        return invalid(f"{describe_run(rid, run)} needs no approval", rid)
    approvers = list(state.get("approvers", []))
    if approvers and not approver_groups(ctx.need_fleet(), who) & set(approvers):
        return refused(f"only members of {', '.join(approvers)} may approve {describe_run(rid, run)}", rid)
    binding = event.data.binding
    if binding is not None and binding.run != rid:
        return invalid("the button's binding names another run", rid)
    result: list[Any] = []

    def change(doc: Value | None) -> Value:
        cur = (doc or {}).get("runs", {}).get(rid)
        if cur is None or cur.get("approval") is None:
            result[:] = [None]
            return dict(doc or {})
        g = grant(
            cur["approval"],
            who=who.id,
            event_id=event.id,
            now=now,
            to_version=cur["to_version"],
            binding_version=None if binding is None else binding.to_version,
            binding_occurrence=None if binding is None else binding.occurrence,
            bound=binding is not None,
        )
        result[:] = [g, cur]
        if g.state is None or g.replay:
            return dict(doc or {})
        return set_entry(doc, key, rid, {**cur, "approval": g.state})

    await mutate(ctx.store.kv, BUCKET, key, change, outbox=True)
    if result[0] is None:
        return invalid(f"{describe_run(rid, run)} is no longer waiting for approval", rid)
    g, cur = result
    if not g.ok:
        code = refused if g.code == "self" else invalid
        return code(f"not counted: {g.message} — {describe_run(rid, run)}", rid)
    entry = {**cur, "approval": g.state}
    names = approvers_of(g.state)
    await ctx.store.ledger.approve_run(rid, names)
    if g.code == "counted":
        return ok(f"approval counted for {describe_run(rid, run)}: {g.message}, more needed", run=rid)
    comment = f" ({escape_mrkdwn(cmd.comment)})" if cmd.comment else ""
    reply = f"approved {describe_run(rid, run)} by {', '.join(names)}{comment}: it starts {_where(key)}"
    return ok(reply, [approved_event(rid, entry, key)], rid)


async def deny(cmd: Deny, event: Event[ChatCommand], who: Identity, ctx: Context, now: datetime) -> Outcome:
    rid = cmd.run.id
    ledger = ctx.store.ledger
    run = await ledger.run(rid)
    if run is None:
        return invalid(f"there is no run `{rid}`", rid)
    mine = run.get("state") == RunState.DENIED and run.get("denied_event") == event.id
    if not mine:
        key, entry = await _entry(ctx, rid, run)
        if run.get("state") != RunState.AWAITING_APPROVAL or entry is None or entry.get("approval") is None:
            return invalid(
                f"{describe_run(rid, run)} is {run.get('state')}: it is not waiting for approval", rid
            )
        binding = event.data.binding
        if binding is not None and (
            binding.to_version != entry["to_version"]
            or binding.occurrence != entry["approval"].get("occurrence")
        ):
            return invalid(f"this button is for an earlier request of {describe_run(rid, run)}", rid)
        run = await ledger.drop_run(
            rid,
            RunState.DENIED,
            denied_by=who.id,
            denied_event=event.id,
            reason=cmd.reason,
            ended_at=now.isoformat(),
        )
        if run.get("denied_event") != event.id:  # it started, or ended otherwise, meanwhile
            return invalid(f"{describe_run(rid, run)} is {run.get('state')}: too late to deny", rid)
    key = window_key(run.get("window"))
    await mutate(ctx.store.kv, BUCKET, key, lambda doc: remove(doc, key, rid), outbox=True)
    reply = f"denied {describe_run(rid, run)}: {escape_mrkdwn(cmd.reason)}"
    return ok(reply, [denied_event(rid, run, by=who.id, reason=cmd.reason)], rid)


async def cancel(
    cmd: Cancel, event: Event[ChatCommand], who: Identity, ctx: Context, now: datetime
) -> Outcome:
    if isinstance(cmd.what, Run):
        run = await ctx.store.ledger.run(cmd.what.id)
        if run is None:
            return invalid(f"there is no run `{cmd.what.id}`", cmd.what.id)
        line, events = await _cancel_one(cmd.what.id, run, event, who, ctx, now)
        if not events and line.startswith("not"):
            return invalid(line, cmd.what.id)
        return ok(line, events, cmd.what.id)
    return await _cancel_scope(cmd.what, event, who, ctx, now)


async def _cancel_scope(
    scope: Scope, event: Event[ChatCommand], who: Identity, ctx: Context, now: datetime
) -> Outcome:
    runs = [
        r
        for r in await ctx.store.ledger.runs()
        if (r.get("state") not in TERMINAL or r.get("cancelled_event") == event.id) and covers_run(scope, r)
    ]
    if not runs:
        return invalid(f"no open run in {scope_text(scope)} to cancel")
    lines, events = [], []
    for r in runs:
        line, evs = await _cancel_one(str(r["id"]), r, event, who, ctx, now)
        lines.append(line)
        events.extend(evs)
    return ok(f"cancel {scope_text(scope)}:\n" + "\n".join(f"• {x}" for x in lines), events)


async def _cancel_one(
    rid: str, run: Value, event: Event[ChatCommand], who: Identity, ctx: Context, now: datetime
) -> tuple[str, list[Any]]:
    """One run cancelled (or asked to be): the reply line and the events."""
    what = describe_run(rid, run)
    mine = run.get("state") == RunState.CANCELLED and run.get("cancelled_event") == event.id
    reason = f"cancelled by {who.id}"
    if not mine and run.get("state") in TERMINAL:
        return f"not cancelled: {what} is {run.get('state')}", []
    if not mine:
        run = await ctx.store.ledger.drop_run(
            rid,
            RunState.CANCELLED,
            cancelled_by=who.id,
            cancelled_event=event.id,
            reason=reason,
            ended_at=now.isoformat(),
        )
    if run.get("state") == RunState.CANCELLED and run.get("cancelled_event") == event.id:
        key = window_key(run.get("window"))
        await mutate(ctx.store.kv, BUCKET, key, lambda doc: remove(doc, key, rid), outbox=True)
        return f"cancelled {what} before it started", [run_cancelled(rid, run, by=who.id, reason=reason)]
    if run.get("state") != RunState.RUNNING:
        return f"not cancelled: {what} is {run.get('state')}", []
    events: list[Any] = []
    held = await take_hold(ctx.store.kv, rid, event_id=event.id)
    if held is not None:
        events.append(held)  # its stage refuses to begin now; advance ends the run cancelled
    if "upgrade" in run.get("stages", {}):
        return (
            f"{what}: its upgrade stage has begun at the vendor, which documents no cancel for it; "
            "Upshift follows it to its end and reports",
            events,
        )
    return f"cancel requested for {what}: it ends before its upgrade stage begins", events


async def upgrade(
    cmd: Upgrade, event: Event[ChatCommand], who: Identity, ctx: Context, now: datetime
) -> Outcome:
    """Plan one target to a version outside the release flow, as ``who`` (approval rules apply,
    and ``who`` may not approve it where the rule prevents self-approval). ``next-window``: it
    waits for the window's next opening even when one is open now; ``now``: the open one will do."""
    fleet = ctx.need_fleet()
    try:
        target = fleet.target(cmd.target)
    except KeyError:
        return invalid(f"there is no target {escape_mrkdwn(cmd.target)} in the fleet")
    try:
        parse_version(target.kind, cmd.version)
    except BadVersion as exc:
        return invalid(f"{escape_mrkdwn(cmd.version)} is not a {target.kind} version: {exc}")
    current = (await ctx.store.ledger.version(target.name)) or target.version
    if current is not None:
        try:
            newer = compare(target.kind, cmd.version, current) > 0
        except BadVersion:
            newer = cmd.version != current
        if not newer:
            return invalid(f"{target.name} runs {current}; {escape_mrkdwn(cmd.version)} is not newer")
    rid = run_id(target.name, cmd.version)
    existing = await ctx.store.ledger.run(rid)
    if existing is not None and existing.get("requested_event") != event.id:
        return invalid(f"{describe_run(rid, existing)} exists already: {existing.get('state')}", rid)
    not_before = None
    if cmd.when == "next-window" and target.window is not None:
        window = fleet.windows[target.window]
        if window_at(window, now) is not None:
            nxt = next_open(window, now)
            not_before = None if nxt is None else nxt.opens_at
    decision = Decision(
        target=target.name,
        kind=target.kind,
        product=target.product_key,
        version=cmd.version,
        take=True,
        code="requested",
        reason=f"asked for by {who.id}",
        from_version=current,
        window=target.window,
        wave=target.wave,
    )
    events = await plan_runs(
        ctx,
        fleet,
        [decision],
        now,
        requested_by=who.id,
        not_before=not_before,
        fields={"requested_event": event.id},
    )
    if not any(getattr(e, "type", None) == T.UPGRADE_PLANNED for e in events):
        return invalid(
            f"not planned: a run of {target.name} to {escape_mrkdwn(cmd.version)} or newer is on its way"
        )
    needs = any(getattr(e, "type", None) == T.APPROVAL_REQUESTED for e in events)
    wait = " — it waits for approval" if needs else ""
    when = f"from {not_before.isoformat()}" if not_before is not None else _where(window_key(target.window))
    run = {"target": target.name, "from_version": current, "to_version": cmd.version}
    return ok(f"planned {describe_run(rid, run)}: it starts {when}{wait}", events, rid)
