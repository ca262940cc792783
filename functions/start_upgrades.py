"""start_upgrades: release planned runs wave by wave, inside the window, within its concurrency.

Triggers: ``window.opened``, ``upgrade.planned``, ``upgrade.succeeded``, ``upgrade.failed``,
its own delayed ``wave.ready``, and the operators' ``run.approved``, ``run.denied``,
``upgrade.cancelled`` and ``control.changed`` (a resume or unfreeze: look again). Each delivery makes ONE compare-and-set change to the window's
waves document (:mod:`shared.domain.waves`):

* an ``upgrade.succeeded`` / ``upgrade.failed`` first takes the run out (its wave's
  ``last_ended`` moves; a failure halts the window — ``upgrade.halted`` once, nothing more is
  released there until someone resumes);
* then the lowest planned wave is released when every earlier wave is done and
  ``fleet.waves.bake`` has passed since the last of them finished (else a delayed
  ``wave.ready`` looks again then), at most ``window.concurrency`` running at once, and only
  runs whose first stage fits before the cutoff (:func:`shared.domain.windows.gate` with the expected
  duration from the ledger's history); the others wait for the next ``window.opened``.

A ``wave.ready`` (a bake's end, a freeze's, or ``window_clock``'s periodic sweep) also ends the
document's running runs that the ledger says are over (succeeded, failed, dropped) as their
``upgrade.succeeded`` / ``upgrade.failed`` would have: a lost one must not hold a slot forever.

Operator control (issue 11): a run waiting for approval is not released until approved within
its request's window occurrence; at each ``window.opened`` lapsed requests are bound to the new
opening and posted again (``approval.requested``, id from run and occurrence); a run a pause
covers, or a freeze (fleet file or chat), waits (a freeze ending inside the window gets a
``wave.ready`` at its end); a denied or cancelled run leaves the document.

A released run turns ``running`` in the ledger and gets ``stage.requested`` for its first stage
with an id from (runid, stage, attempt): a redelivery re-emits the same ids and the bus drops
them. A run whose ledger state became ``superseded`` or ``cancelled`` is never started: it is
taken out of the waves document instead (cancelling = setting that state).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, get_args

from events import Event, T
from events.catalog import (
    ControlChanged,
    Kind,
    RunApproved,
    RunDenied,
    StageRequested,
    UpgradeCancelled,
    UpgradeFailed,
    UpgradeHalted,
    UpgradePlanned,
    UpgradeSucceeded,
    WaveReady,
    WindowOpened,
)
from events.envelope import consequence, consequence_id
from shared.bus import Delayed, Emitted
from shared.domain.fleet import Fleet
from shared.domain.freezes import blocking
from shared.domain.stages import expected_duration, first_stage, run_id
from shared.domain.waves import (
    ANYTIME,
    BUCKET,
    SWEEP,
    Selection,
    concurrency,
    finish,
    head_room,
    rebind,
    remove,
    select,
    window_key,
)
from shared.domain.windows import Gate, gate
from shared.engine.approvals import request_event
from shared.engine.control import active_freezes, control_state, paused_by
from shared.engine.waves import decide
from shared.runtime.function import Context, upshift_function
from shared.store.ledger import DROPPED, RunState, mutate

__all__ = ["halted_event", "stage_requested_id", "start_upgrades", "wave_ready"]


def _stage_requested_key(runid: str, stage: str, attempt: int) -> tuple[object, ...]:
    return (T.STAGE_REQUESTED, runid, stage, attempt)


def stage_requested_id(runid: str, stage: str, attempt: int) -> str:
    """The id of a run's ``stage.requested``: the same (run, stage, attempt) is the same event."""
    return consequence_id(*_stage_requested_key(runid, stage, attempt))


#: What start_upgrades consumes (serverless.yml).
Input = (
    Event[WindowOpened]
    | Event[UpgradePlanned]
    | Event[UpgradeSucceeded]
    | Event[UpgradeFailed]
    | Event[WaveReady]
    | Event[RunApproved]
    | Event[RunDenied]
    | Event[UpgradeCancelled]
    | Event[ControlChanged]
)


@upshift_function
async def start_upgrades(event: Input, ctx: Context) -> list[Emitted]:
    fleet = ctx.need_fleet()
    now = ctx.clock.now()
    key, ended = _window_of(event, fleet)
    if key is None or (key != ANYTIME and key not in fleet.windows):
        ctx.log.warning("unknown target or window; nothing to start", type=event.type)
        return []
    # per kind, not per target: one ledger read each, and nothing here scans a 10,000-target fleet
    expected = {}
    for kind in get_args(Kind):
        stage = first_stage(kind)
        history = await ctx.store.ledger.durations(kind, stage)
        expected[kind] = expected_duration(kind, stage, history=history, fleet=fleet)

    gates: dict[str, Gate] = {}

    control = await control_state(ctx.store.kv)
    freezes = active_freezes(fleet, control, now)

    def fits(run: dict[str, Any]) -> Gate:
        if not _in_window(fleet, run["target"], key) or run["kind"] not in expected:
            return Gate(False, "target no longer in this window of the fleet")
        facts = {**run, "window": None if key == ANYTIME else key}
        paused = paused_by(control, facts)
        if paused is not None:
            return Gate(False, f"paused ({paused})")
        frozen = blocking(
            freezes, target=run["target"], kind=run["kind"], window=facts["window"], wave=run["wave"]
        )
        if frozen is not None:
            return Gate(False, f"frozen: {frozen.summary}", retry_at=frozen.ends_at)
        # Every target of a window shares it: one gate per kind is enough.
        if run["kind"] not in gates:
            gates[run["kind"]] = gate(fleet, run["target"], now, expected[run["kind"]])
        return gates[run["kind"]]

    # runs the ledger says ended while the document still runs them (their event lost): a look
    # ends them, so a lost upgrade.succeeded costs one sweep period, not the window
    over = await _over_in_ledger(ctx, key) if isinstance(event.data, WaveReady) else {}

    outcome: list[Selection] = []
    swept: list[str] = []

    rebound: list[str] = []

    def change(doc: dict[str, Any] | None) -> dict[str, Any]:
        if ended is not None:
            rid, ok, reason = ended
            doc = finish(doc, key, rid, ok=ok, now=now, by=event.id, reason=reason)
        if isinstance(event.data, RunDenied | UpgradeCancelled):
            doc = remove(doc, key, event.data.run)
        swept.clear()  # (this attempt's: a lost compare-and-set starts over from a new read)
        for rid, end in over.items():
            if (doc or {}).get("runs", {}).get(rid, {}).get("state") != "running":
                continue  # its own event ended it first (the read above may be older than this one)
            swept.append(rid)
            if end is None:
                doc = remove(doc, key, rid)
            else:
                doc = finish(doc, key, rid, ok=end.ok, now=now, by=event.id, reason=end.reason)
        if isinstance(event.data, WindowOpened):
            doc, again = rebind(
                doc, key, now=now, opens_at=event.data.opens_at, closes_at=event.data.closes_at
            )
            rebound[:] = again
        new, sel = select(
            doc,
            key,
            now=now,
            concurrency=concurrency(fleet, key),
            bake=fleet.waves.bake,
            fits=fits,
            by=event.id,
        )
        outcome[:] = [sel]
        return new

    doc = await decide(ctx.store.kv, key, change, head_max=head_room(fleet, key))
    if swept:
        # Usually a race, harmless: the ledger ended the run and its event is on its way (it will
        # find the run gone). Ended a whole sweep period ago: its event was lost (or very late).
        late = [rid for rid in swept if (end := over[rid]) is not None and now - end.ended_at >= SWEEP]
        log = ctx.log.warning if late else ctx.log.info
        log("ended runs swept out of the waves document", window=key, runs=sorted(swept), late=sorted(late))
    sel = outcome[0]
    out: list[Emitted] = []
    dropped = False
    for rid, run in doc["runs"].items():
        if run.get("released_by") == event.id:
            released = await _release(ctx, key, rid, run, now)
            if released is not None:
                out.append(released)
            dropped |= released is None
    if dropped and sel.wave is not None:  # its slot is free again: look at once
        out.append(wave_ready(ctx, event, key, sel.wave, now, now))
    for rid in rebound:  # approval requests bound to this opening (a replay: the same ids)
        if rid in doc["runs"]:
            out.append(request_event(rid, doc["runs"][rid], key))
    halted = doc.get("halted")
    if halted is not None and halted.get("by") == event.id:
        out.append(halted_event(event, key, halted))
    if sel.bake_until is not None and sel.wave is not None:
        out.append(wave_ready(ctx, event, key, sel.wave, sel.bake_until, now))
    thaw = min((f.ends_at for f in freezes), default=None)
    if (
        sel.wave is not None
        and thaw is not None
        and any(w.startswith("frozen") for w in sel.waiting.values())
    ):
        out.append(wave_ready(ctx, event, key, sel.wave, thaw, now))  # look again when the freeze ends
    if (
        sel.waiting
    ):  # one line per delivery, not per run: 10,000 waiting runs made every delivery O(N) in logging
        reasons: dict[str, int] = {}
        for why in sel.waiting.values():
            reasons[why] = reasons.get(why, 0) + 1
        ctx.log.info(
            "waiting",
            runs=len(sel.waiting),
            reasons=reasons,
            first=sorted(sel.waiting)[:5],
            retry_at=sel.retry_at.isoformat() if sel.retry_at else None,
        )
    return out


def _in_window(fleet: Fleet, name: str, key: str) -> bool:
    try:
        return window_key(fleet.target(name).window) == key
    except KeyError:
        return False


def _window_of(event: Input, fleet: Fleet) -> tuple[str | None, tuple[str, bool, str] | None]:
    """The waves document this event concerns, and the run it ends (runid, ok, reason) if any."""
    data = event.data
    if isinstance(data, WindowOpened | WaveReady | ControlChanged):
        return data.window, None
    if isinstance(data, RunApproved | RunDenied | UpgradeCancelled):
        return window_key(data.window), None
    try:
        target = fleet.target(data.target)
    except KeyError:
        return None, None
    key = window_key(target.window)
    if isinstance(data, UpgradeSucceeded):
        return key, (event.runid or run_id(data.target, data.to_version), True, "")
    if isinstance(data, UpgradeFailed):
        reason = _failed_reason(data.target, data.stage, data.code, data.message)
        return key, (event.runid or run_id(data.target, data.to_version), False, reason)
    return key, None


def _failed_reason(target: str, stage: str, code: str, message: str) -> str:
    return f"{target} failed at {stage}: {code} {message}"


class _Over(NamedTuple):
    """How a run the waves document still runs ended, by the ledger."""

    ok: bool
    reason: str  # the halt's reason (a failure)
    ended_at: datetime  # domain time (unknown: the far past)


async def _over_in_ledger(ctx: Context, key: str) -> dict[str, _Over | None]:
    """The document's running runs whose ledger run is over: runid → how it ended, or None for
    one that ended without running (cancelled, superseded). Read outside the compare-and-set: a
    run's end in the ledger is final, and ending it twice changes nothing."""
    entry = await ctx.store.kv.get(BUCKET, key)
    out: dict[str, _Over | None] = {}
    for rid, run in (entry.value.get("runs", {}) if entry is not None else {}).items():
        if run.get("state") != "running":
            continue
        led = await ctx.store.ledger.run(rid) or {}
        state = led.get("state")
        try:
            ended_at = datetime.fromisoformat(led["ended_at"])
        except (KeyError, TypeError, ValueError):
            ended_at = datetime.min.replace(tzinfo=UTC)
        if state == RunState.SUCCEEDED:
            out[rid] = _Over(True, "", ended_at)
        elif state in (RunState.FAILED, RunState.HALTED):
            stage, code = led.get("failed_stage") or "?", led.get("code") or state
            reason = _failed_reason(run["target"], stage, code, led.get("message") or "")
            out[rid] = _Over(False, reason, ended_at)
        elif state in DROPPED:
            out[rid] = None
    return out


async def _release(
    ctx: Context, key: str, rid: str, run: dict[str, Any], now: datetime
) -> Event[StageRequested] | None:
    """Mark the ledger run running and request its first stage; None for a run cancelled meanwhile."""

    # A redelivery finds it released already (or further along, or dropped): left as it is.
    # The waves entry names the run too: a run released before plan_upgrades opened it in the
    # ledger (it joins the waves document first) is not left without its fields.
    identity = {k: run[k] for k in ("target", "kind", "from_version", "to_version", "wave") if k in run}
    doc = await ctx.store.ledger.start_run(
        rid, released_at=now.isoformat(), window=None if key == ANYTIME else key, **identity
    )
    if doc.get("state") in DROPPED:
        await _forget(ctx, key, rid)
        ctx.log.info("not released: run was dropped", runid=rid, state=doc.get("state"))
        return None
    stage = first_stage(run["kind"])
    data = StageRequested(
        target=run["target"],
        kind=run["kind"],
        stage=stage,
        from_version=run["from_version"],
        to_version=run["to_version"],
        attempt=1,
    )
    ctx.log.info("released", runid=rid, target=run["target"], wave=run["wave"], stage=stage)
    return consequence(
        T.STAGE_REQUESTED,
        data,
        key=_stage_requested_key(rid, stage, 1),
        subject=run["target"],
        runid=rid,
        target=run["target"],
        kind=run["kind"],
        stage=stage,
    )


async def _forget(ctx: Context, key: str, rid: str) -> None:
    def change(doc: dict[str, Any] | None) -> dict[str, Any]:
        doc = dict(doc or {})
        doc["runs"] = {r: v for r, v in doc.get("runs", {}).items() if r != rid}
        return doc

    await mutate(ctx.store.kv, BUCKET, key, change)


def halted_event(event: Input, key: str, halted: dict[str, Any]) -> Event[UpgradeHalted]:
    """The window's ``upgrade.halted``: once per (window, failed run)."""
    data = UpgradeHalted(
        window=None if key == ANYTIME else key,
        wave=halted["wave"],
        reason=halted["reason"] or "a run failed",
        failed_target=halted["target"],
    )
    return consequence(
        T.UPGRADE_HALTED,
        data,
        key=(T.UPGRADE_HALTED, key, halted["runid"]),
        subject=key,
        runid=halted["runid"],
        target=halted["target"],
    )


def wave_ready(ctx: Context, event: Input, key: str, wave: int, until: datetime, now: datetime) -> Delayed:
    # One look per (window, wave, bake end); a wave.ready that arrived early (the domain clock
    # behind) chains on its own id so it is not dropped as a duplicate of itself. A sweep's
    # look (not_before: its period's start) is no such look: its bake end keeps the plain id.
    early = isinstance(event.data, WaveReady) and event.data.not_before >= until
    chain = event.id if early else ""
    ready = consequence(
        T.WAVE_READY,
        WaveReady(window=key, wave=wave, not_before=until),
        key=(T.WAVE_READY, key, wave, until.isoformat(), chain),
        subject=key,
    )
    return Delayed(ready, ctx.clock.real_delay(max(timedelta(0), until - now).total_seconds()))
