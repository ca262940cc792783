"""The read-only commands: ``help``, ``status``, ``plan``, ``freezes``, ``audit``.

Replies are short Slack/Mattermost text (mrkdwn, user-supplied text escaped), at most
:data:`MAX_LINES` list lines so a reply never floods a channel.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from events.catalog import ChatCommand
from events.envelope import Event
from shared.domain.approvals import approvers_of
from shared.domain.chat import escape_mrkdwn
from shared.domain.commands import HELP, Audit, Freezes, Help, Plan, Run, Status
from shared.domain.freezes import upcoming
from shared.domain.plan import Release, approval_rule, decide
from shared.domain.rbac import Identity
from shared.domain.waves import BUCKET, window_key
from shared.engine.chatops.outcome import Outcome, invalid, ok
from shared.engine.chatops.runs import describe_run
from shared.engine.control import active_freezes, control_state
from shared.runtime.function import Context
from shared.store.base import Value
from shared.store.ledger import PENDING, TERMINAL

__all__ = ["MAX_LINES", "audit", "freezes", "help_", "plan", "status"]

MAX_LINES = 15


def _lines(items: list[str]) -> str:
    shown = items[:MAX_LINES]
    more = f"\n…and {len(items) - MAX_LINES} more" if len(items) > MAX_LINES else ""
    return "\n".join(f"• {x}" for x in shown) + more


async def help_(cmd: Help, event: Event[ChatCommand], who: Identity, ctx: Context, now: datetime) -> Outcome:
    return ok(HELP)


def _run_line(run: Value) -> str:
    rid = str(run.get("id", "?"))
    extra = ""
    if run.get("approved_by"):
        extra = f", approved by {', '.join(run['approved_by'])}"
    return f"{describe_run(rid, run)}: *{run.get('state', '?')}*{extra}"


async def status(
    cmd: Status, event: Event[ChatCommand], who: Identity, ctx: Context, now: datetime
) -> Outcome:
    ledger = ctx.store.ledger
    if isinstance(cmd.what, Run):
        run = await ledger.run(cmd.what.id)
        if run is None:
            return invalid(f"there is no run `{cmd.what.id}`", cmd.what.id)
        stages = (
            ", ".join(f"{k}: {v.get('state', '?')}" for k, v in run.get("stages", {}).items()) or "none yet"
        )
        text = f"{_run_line(run)}\nstages: {stages}"
        wait = await _approval_line(ctx, run)
        return ok(text + (f"\n{wait}" if wait else ""), run=cmd.what.id)
    runs = await ledger.runs()
    if cmd.what is not None:
        name = cmd.what.name
        mine = [r for r in runs if r.get("target") == name]
        if not mine:
            return ok(f"no runs of {escape_mrkdwn(name)} yet")
        return ok(f"runs of {escape_mrkdwn(name)}:\n" + _lines([_run_line(r) for r in reversed(mine)]))
    counts = Counter(str(r.get("state", "?")) for r in runs)
    open_runs = [r for r in runs if r.get("state") not in TERMINAL]
    control = await control_state(ctx.store.kv)
    parts = [", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no runs yet"]
    if control["pauses"]:
        parts.append("paused: " + ", ".join(sorted(control["pauses"])))
    frozen = active_freezes(ctx.need_fleet(), control, now)
    if frozen:
        parts.append("frozen: " + "; ".join(escape_mrkdwn(f.summary) for f in frozen))
    halted = await _halted(ctx)
    if halted:
        parts.append("halted: " + "; ".join(halted))
    if open_runs:
        parts.append("open runs:\n" + _lines([_run_line(r) for r in open_runs]))
    return ok("\n".join(parts))


async def _approval_line(ctx: Context, run: Value) -> str | None:
    if run.get("state") not in PENDING:
        return None
    e = await ctx.store.kv.get(BUCKET, window_key(run.get("window")))
    entry = None if e is None else e.value.get("runs", {}).get(run.get("id"))
    state = None if entry is None else entry.get("approval")
    if state is None:
        return None
    got = approvers_of(state)
    return (
        f"approval: {len(got)} of {state.get('need', 1)} (by {', '.join(got) or 'nobody yet'}), "
        f"request expires {state['expires_at']}"
    )


async def _halted(ctx: Context) -> list[str]:
    out = []
    for key in await ctx.store.kv.keys(BUCKET):
        e = await ctx.store.kv.get(BUCKET, key)
        h = None if e is None else e.value.get("halted")
        if h:
            out.append(f"{key} (wave {h.get('wave')}: {escape_mrkdwn(str(h.get('reason', '')))[:200]})")
    return out


async def plan(cmd: Plan, event: Event[ChatCommand], who: Identity, ctx: Context, now: datetime) -> Outcome:
    fleet = ctx.need_fleet()
    current = {t.name: (await ctx.store.ledger.version(t.name)) or t.version for t in fleet.targets}
    decisions = [
        d for d in decide(fleet, Release(cmd.product, cmd.version, now), now, current) if d.code != "product"
    ]
    if not decisions:
        return invalid(f"no target follows {escape_mrkdwn(cmd.product)}")
    lines = []
    for d in decisions:
        if d.take:
            rule = approval_rule(fleet, fleet.target(d.target))
            needs = f", needs {rule.min_approvals} approval(s)" if rule is not None else ""
            lines.append(f"{d.target}: takes it ({d.from_version} → {d.version}), wave {d.wave}{needs}")
        else:
            lines.append(f"{d.target}: no — {escape_mrkdwn(d.reason)}")
    soon = upcoming(fleet.freezes, now, now + timedelta(days=14))
    note = (
        ("\nfreezes in the next 14 days: " + "; ".join(escape_mrkdwn(f.summary) for f in soon))
        if soon
        else ""
    )
    return ok(
        f"plan {escape_mrkdwn(cmd.product)}={escape_mrkdwn(cmd.version)} (dry run):\n{_lines(lines)}{note}"
    )


async def freezes(
    cmd: Freezes, event: Event[ChatCommand], who: Identity, ctx: Context, now: datetime
) -> Outcome:
    fleet = ctx.need_fleet()
    active = active_freezes(fleet, await control_state(ctx.store.kv), now)
    soon = [f for f in upcoming(fleet.freezes, now, now + timedelta(days=30)) if f.starts_at > now]
    parts = []
    if active:
        parts.append("in force:\n" + _lines([f"{escape_mrkdwn(f.summary)} [{f.source}]" for f in active]))
    if soon:
        parts.append("coming (30 days):\n" + _lines([escape_mrkdwn(f.summary) for f in soon]))
    return ok("\n".join(parts) or "no freezes in force or coming in the next 30 days")


async def audit(cmd: Audit, event: Event[ChatCommand], who: Identity, ctx: Context, now: datetime) -> Outcome:
    run = None if cmd.run is None else cmd.run.id
    entries = await ctx.store.audit.entries(run=run, limit=MAX_LINES)
    if not entries:
        return ok("the audit trail is empty" + (f" for `{run}`" if run else ""), run=run)
    lines = [
        f"{e.get('at', '?')[:19]} {e.get('actor') or e.get('user')}: `{escape_mrkdwn(str(e.get('text', '')))[:120]}` → {e.get('outcome')}"
        for e in entries
    ]
    return ok("audit" + (f" of `{run}`" if run else "") + ":\n" + "\n".join(lines), run=run)
