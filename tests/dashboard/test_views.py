"""The dashboard's read models over real state, on SQLite and NATS.

Runs are made by the real planning functions (``plan_upgrades``, ``start_upgrades``,
``window_clock``, ``chat_command`` in the planning Harness, a FakeClock) and, for the stage
timeline and the vendor error, by the real stage functions, ``track_job`` and ``advance`` against
the simulator. The views read the store only; what they show is compared with what the pipeline
wrote and with the simulator's own call counts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from events import T
from shared.dashboard.views import (
    BadQuery,
    allowed_actions,
    approvals_view,
    calendar_query,
    calendar_view,
    fleet_view,
    run_view,
    runs_query,
    runs_view,
)
from shared.domain.access import Principal
from shared.domain.commands import parse_scope
from shared.domain.stages import run_id
from shared.engine import control
from shared.store import RunState
from tests.dashboard._fleet import FUNCTIONS, START, command, fleet, planned
from tests.functions._planning import Harness, bus_url, utc
from tests.functions._stages_harness import ENV, TARGETS, pipeline


@pytest.fixture(params=["sqlite", "nats"])
def backend(request: pytest.FixtureRequest, tmp_path) -> str:
    return bus_url(request, tmp_path)


def who(name: str, role: str) -> Principal:
    return Principal(name, role)  # type: ignore[arg-type]


async def test_runs_filters_counts_pages_newest_first(backend):
    async with Harness(backend, fleet(), START, functions=FUNCTIONS) as h:
        ids = await planned(h)
        f, now = h.fleet, h.clock.now()
        page = await runs_view(h.store, f, now)
        assert page.total == 4 and page.pages == 1
        assert page.counts[RunState.AWAITING_APPROVAL] == 1
        assert page.counts[RunState.PLANNED] == 2 and page.counts[RunState.RUNNING] == 1
        assert page.counts[RunState.SUCCEEDED] == 0 and set(page.counts) == set(RunState)
        ledger_order = [r["id"] for r in await h.store.ledger.runs()]
        assert [r.id for r in page.items] == ledger_order[::-1], "newest first"
        assert page.items[0].target == "sr-1"

        sr = page.items[0]
        assert (sr.kind, sr.window, sr.wave, sr.state) == ("starrocks", None, 2, RunState.RUNNING)
        assert (sr.from_version, sr.to_version) == ("3.1.6", "3.2.11")
        assert sr.started_at == START, "released at the domain instant it was planned"
        canary = next(r for r in page.items if r.target == "canary")
        assert canary.started_at is None and canary.stage is None and canary.approved_by == []

        async def targets(**filters):
            p = await runs_view(h.store, f, now, **filters)
            return sorted(r.target for r in p.items), p

        assert (await targets(kind="starrocks"))[0] == ["sr-1"]
        assert (await targets(window="night"))[0] == ["canary", "prod-a", "prod-b"]
        assert (await targets(wave=1))[0] == ["prod-a", "prod-b"]
        assert (await targets(target="canary"))[0] == ["canary"]
        assert (await targets(target="nope"))[0] == []
        names, p = await targets(state="planned", window="night")
        assert names == ["prod-a", "prod-b"] and p.total == 2
        # the counts are over the other filters: the state filter picks one, the rest stay
        assert p.counts[RunState.AWAITING_APPROVAL] == 1 and p.counts[RunState.RUNNING] == 0

        first = await runs_view(h.store, f, now, per_page=3)
        second = await runs_view(h.store, f, now, per_page=3, page=2)
        assert first.pages == second.pages == 2 and len(first.items) == 3 and len(second.items) == 1
        assert [r.id for r in first.items + second.items] == ledger_order[::-1]
        past = await runs_view(h.store, f, now, per_page=3, page=9)
        assert past.items == [] and past.total == 4
        assert ids["canary"] in {r.id for r in first.items + second.items}


async def test_approval_waits_is_granted_and_the_run_shows_it(backend):
    async with Harness(backend, fleet(), START, functions=FUNCTIONS) as h:
        ids = await planned(h)
        f, now = h.fleet, h.clock.now()
        waiting = await approvals_view(h.store, f, now)
        assert [(a.run, a.target, a.to_version) for a in waiting.items] == [
            (ids["canary"], "canary", "v1.29.0-r0")
        ]
        row = waiting.items[0]
        assert (row.need, row.granted, row.approvers, row.window, row.wave) == (1, [], ["leads"], "night", 0)
        # bound to the next opening (02:00 Berlin = 00:00 UTC), lapsing when it closes
        assert row.occurrence == utc("2026-06-10T00:00:00") and row.expires_at == utc("2026-06-10T02:00:00")
        assert not row.expired
        assert (await approvals_view(h.store, f, utc("2026-06-10T02:00:00"))).items[0].expired

        detail = await run_view(h.store, f, now, ids["canary"])
        assert detail is not None and detail.approval is not None
        assert detail.actions == ["approve", "deny", "pause", "cancel"]
        assert allowed_actions(f, who("board", "viewer"), detail) == []
        assert allowed_actions(f, who("ops", "operator"), detail) == ["pause", "cancel"]
        assert allowed_actions(f, who("lead", "approver"), detail) == ["approve", "deny", "pause", "cancel"]
        # an approver outside the request's approvers group may deny but not approve
        assert allowed_actions(f, who("other", "approver"), detail) == ["deny", "pause", "cancel"]

        await h.publish(command(f"approve {ids['canary']} looks fine", "lead"))
        assert (await approvals_view(h.store, f, now)).items == []
        detail = await run_view(h.store, f, now, ids["canary"])
        assert detail is not None and detail.approval is not None
        assert [g.who for g in detail.approval.granted] == ["token:lead"] and detail.approval.approved
        assert detail.run.state == RunState.PLANNED and detail.run.approved_by == ["token:lead"]
        assert "approve" not in detail.actions and "deny" not in detail.actions
        assert [(a.command, a.outcome, a.actor) for a in detail.audit] == [("approve", "ok", "token:lead")]

        await h.at(utc("2026-06-10T00:00:00"))  # the window opens: the approved canary starts
        detail = await run_view(h.store, f, h.clock.now(), ids["canary"])
        assert detail is not None and detail.run.state == RunState.RUNNING
        assert detail.run.started_at == utc("2026-06-10T00:00:00")
        assert detail.actions == ["pause", "cancel"]


async def test_run_view_pause_halt_cancel_and_unknown_runs(backend):
    async with Harness(backend, fleet(), START, functions=FUNCTIONS) as h:
        ids = await planned(h)
        f, now = h.fleet, h.clock.now()
        assert await run_view(h.store, f, now, "r000000000000000") is None
        assert await run_view(h.store, f, now, "not-a-run") is None

        await control.pause(h.store.kv, parse_scope("prod-a"), "prod-a", by="t", event_id="e1", now=now)
        await control.pause(h.store.kv, parse_scope("wave:1"), "wave:1", by="t", event_id="e2", now=now)
        a = await run_view(h.store, f, now, ids["prod-a"])
        b = await run_view(h.store, f, now, ids["prod-b"])
        assert a is not None and b is not None
        assert a.paused_by == "prod-a" and "resume" in a.actions and "pause" not in a.actions
        # prod-b is held by the wave's pause: pausing the target itself is still offered
        assert b.paused_by == "wave:1" and "pause" in b.actions and "resume" not in b.actions

        await h.publish(command(f"cancel {ids['prod-b']}", "ops"))
        b = await run_view(h.store, f, now, ids["prod-b"])
        assert b is not None and b.run.state == RunState.CANCELLED and b.run.ended_at == now
        assert b.actions == [] and b.paused_by is None
        assert b.reason == "cancelled by token:ops"
        assert [e.command for e in b.audit] == ["cancel"]


async def test_fleet_view_versions_policies_windows_freezes_last_runs(backend):
    async with Harness(backend, fleet(), START, functions=FUNCTIONS) as h:
        ids = await planned(h)
        f, now = h.fleet, h.clock.now()
        await h.store.ledger.set_version("prod-b", "v1.28.9-r0")
        await control.freeze(
            h.store.kv,
            "sr-1",
            until=now + timedelta(hours=2),
            reason="maint",
            by="token:ops",
            event_id="f1",
            now=now,
        )
        await control.pause(h.store.kv, parse_scope("kind:cce"), "kind:cce", by="t", event_id="p1", now=now)
        view = await fleet_view(h.store, f, now)
        rows = {t.name: t for t in view.targets}
        assert [t.name for t in view.targets] == ["canary", "prod-a", "prod-b", "sr-1"]
        canary, prod_b, sr = rows["canary"], rows["prod-b"], rows["sr-1"]
        assert (canary.version, canary.version_source) == ("v1.28.0-r0", "fleet")
        assert (prod_b.version, prod_b.version_source) == ("v1.28.9-r0", "ledger")
        assert canary.vendor_version is None, "a page never asks the vendor"
        assert canary.tracks == ["v1.29"] and canary.min_release_age_s == 3600 and canary.approval
        assert sr.tracks == [] and not sr.approval and not rows["prod-a"].approval
        assert canary.next_window is not None and not canary.next_window.open_now
        assert canary.next_window.opens_at == utc("2026-06-10T00:00:00")
        assert sr.next_window is None and sr.window is None
        # Friday in Seoul (Thursday 15:00 UTC) covers the CCE targets; the chat freeze sr-1 only
        assert [(x.name, x.in_force) for x in canary.freezes] == [("fridays", False), ("fridays", False)]
        assert canary.freezes[0].starts_at == utc("2026-06-11T15:00:00")
        assert [(x.name, x.source, x.in_force, x.by) for x in sr.freezes] == [
            ("chat-f1", "chat", True, "token:ops")
        ]
        assert canary.paused_by == "kind:cce" and sr.paused_by is None
        assert canary.last_run is not None
        assert (canary.last_run.id, canary.last_run.state) == (ids["canary"], RunState.AWAITING_APPROVAL)
        assert sr.last_run is not None and sr.last_run.to_version == "3.2.11"

        opened = await fleet_view(h.store, f, utc("2026-06-10T00:30:00"))
        occ = opened.targets[0].next_window
        assert occ is not None and occ.open_now and occ.closes_at == utc("2026-06-10T02:00:00")


async def test_calendar_occurrences_in_three_zones_and_the_freezes_over_them(backend):
    async with Harness(backend, fleet(), START, functions=FUNCTIONS) as h:
        await h.at(START)
        now = START
        await control.freeze(
            h.store.kv,
            "sr-1",
            until=now + timedelta(days=1),
            reason="maint",
            by="token:ops",
            event_id="f2",
            now=now,
        )
        cal = await calendar_view(h.store, h.fleet, now, days=3, tz="Asia/Seoul")
        assert (cal.start, cal.end, cal.tz, cal.anytime) == (
            now,
            now + timedelta(days=3),
            "Asia/Seoul",
            ["sr-1"],
        )
        (night,) = cal.windows
        assert night.targets == ["canary", "prod-a", "prod-b"] and night.timezone == "Europe/Berlin"
        assert [o.opens.utc for o in night.occurrences] == [
            utc("2026-06-10T00:00:00"),
            utc("2026-06-11T00:00:00"),
            utc("2026-06-12T00:00:00"),
        ]
        first = night.occurrences[0]
        assert first.opens.local.isoformat() == "2026-06-10T02:00:00+02:00"
        assert (
            first.opens.viewer is not None and first.opens.viewer.isoformat() == "2026-06-10T09:00:00+09:00"
        )
        assert first.cutoff.utc == utc("2026-06-10T01:30:00") and first.closes.utc == utc(
            "2026-06-10T02:00:00"
        )
        # the Friday freeze (from Thursday 15:00 UTC) overlaps only Friday's opening
        assert [o.freezes for o in night.occurrences] == [[], [], ["fridays"]]
        freezes = {(x.name, x.starts.utc): x for x in cal.freezes}
        fri = freezes[("fridays", utc("2026-06-11T15:00:00"))]
        assert fri.starts.local.isoformat() == "2026-06-12T00:00:00+09:00"
        assert (fri.windows, fri.targets) == (["night"], ["canary", "prod-a", "prod-b"])
        chat = next(x for x in cal.freezes if x.source == "chat")
        assert (chat.windows, chat.targets, chat.by) == ([], ["sr-1"], "token:ops")
        assert "xmas" not in {x.name for x in cal.freezes}, "outside the three days"

        # without a viewer's zone: no third instant; the window open now is in the calendar
        during = await calendar_view(h.store, h.fleet, utc("2026-06-10T01:00:00"), days=1)
        assert during.windows[0].occurrences[0].opens.utc == utc("2026-06-10T00:00:00")
        assert during.windows[0].occurrences[0].opens.viewer is None
        with pytest.raises(ValueError):
            await calendar_view(h.store, h.fleet, now, tz="Mars/Olympus")


async def test_run_timeline_and_vendor_error_from_the_real_stage_functions(backend, monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    async with pipeline(backend) as p:
        rid = await p.start("sr-a")
        done = await p.outcome("sr-a", 60)
        now = datetime.now(UTC)
        detail = await run_view(p.store, p.fleet, now, rid)
        assert detail is not None and done.type.endswith("upgrade.succeeded")
        assert detail.run.state == RunState.SUCCEEDED and detail.error is None
        (upgrade,) = detail.stages
        run = await p.store.ledger.run(rid)
        entry = run["stages"]["upgrade"]
        assert upgrade.name == "upgrade" and upgrade.state == "succeeded"
        assert upgrade.job_id == entry["job_id"] and upgrade.job_id
        assert upgrade.polls == entry["status_calls"] >= 1
        assert upgrade.duration_s is not None and upgrade.duration_s > 0
        assert upgrade.started_at is not None and upgrade.ended_at is not None
        stats = await p.stats()
        upgrades = sum(
            n
            for op, by in stats.items()
            if op.startswith("taurusdb.") and "upgrade" in op
            for n in by.values()
        )
        assert detail.run.upgrade_calls == upgrades == 1, stats
        assert detail.run.stage == "upgrade" and detail.run.stage_state == "succeeded"

        # a refused upgrade call: the vendor's code, message and request id (the claim keeps it too)
        event = p.request("cce-a", "upgrade")
        bad = event.data.model_copy(update={"to_version": "v1.35.0-r0"})
        await p.runtime.bus.publish(
            event.model_copy(update={"data": bad, "runid": run_id("cce-a", "v1.35.0-r0")})
        )
        assert (await p.outcome("cce-a")).type.endswith("upgrade.failed")
        # a refused precheck (no claim): the ledger's stage entry holds the request id
        event = p.request("kafka-a", "precheck")
        same = event.data.model_copy(update={"to_version": "2823006"})  # not newer than the cluster
        await p.runtime.bus.publish(
            event.model_copy(update={"data": same, "runid": run_id("kafka-a", "2823006")})
        )
        assert (await p.outcome("kafka-a")).type.endswith("upgrade.failed")
        sent = {e.data.target: e.data for e in p.seen[T.STAGE_FAILED]}
        now = datetime.now(UTC)
        for target, version, stage, flow in [
            ("cce-a", "v1.35.0-r0", "upgrade", ["precheck", "upgrade", "postcheck"]),
            ("kafka-a", "2823006", "precheck", ["precheck", "upgrade", "verify"]),
        ]:
            detail = await run_view(p.store, p.fleet, now, run_id(target, version))
            assert detail is not None and detail.run.state == RunState.FAILED and detail.error is not None
            run = await p.store.ledger.run(run_id(target, version))
            assert (
                (detail.error.stage, detail.error.code) == (stage, run["code"]) == (stage, sent[target].code)
            )
            assert detail.error.message == run["message"]
            assert detail.error.request_id and detail.error.request_id == sent[target].request_id
            assert [s.name for s in detail.stages] == flow, "every stage of the kind, in its order"
            states = {s.name: s.state for s in detail.stages}
            assert (
                states[stage] == "failed" and detail.run.stage == stage and detail.run.stage_state == "failed"
            )
            assert states[flow[-1]] == "pending"
            assert "cancel" not in detail.actions and "pause" not in detail.actions


def test_query_parsing_names_the_field() -> None:
    f = fleet()
    assert runs_query(f, {}) == {"page": 1, "per_page": 50}
    assert runs_query(
        f, {"state": "running", "wave": "1", "kind": "cce", "window": "night", "target": "canary"}
    ) == {
        "state": RunState.RUNNING,
        "wave": 1,
        "kind": "cce",
        "window": "night",
        "target": "canary",
        "page": 1,
        "per_page": 50,
    }
    assert runs_query(f, {"state": "", "per_page": "200"})["per_page"] == 200
    for query, field in [
        ({"state": "exploded"}, "state"),
        ({"kind": "vax"}, "kind"),
        ({"window": "day"}, "window"),
        ({"wave": "-1"}, "wave"),
        ({"wave": "one"}, "wave"),
        ({"target": "Bad Name"}, "target"),
        ({"page": "0"}, "page"),
        ({"page": "1.5"}, "page"),
        ({"page": "١"}, "page"),  # a digit, but not an ASCII one
        ({"per_page": "201"}, "per_page"),
        ({"sort": "x"}, "sort"),
    ]:
        with pytest.raises(BadQuery) as exc:
            runs_query(f, query)
        assert exc.value.field == field, query
    assert calendar_query({}) == {"days": 14}
    assert calendar_query({"days": "31", "tz": "America/New_York"}) == {"days": 31, "tz": "America/New_York"}
    for query, field in [
        ({"days": "0"}, "days"),
        ({"days": "32"}, "days"),
        ({"tz": "Nowhere/Atlantis"}, "tz"),
        ({"tz": "../../etc/passwd"}, "tz"),
        ({"tz": "x" * 500}, "tz"),
        ({"zone": "UTC"}, "zone"),
    ]:
        with pytest.raises(BadQuery) as exc:
            calendar_query(query)
        assert exc.value.field == field, query


async def test_the_fleet_view_shows_the_vendors_own_answer_when_asked(backend, monkeypatch):
    """``live``: each target's look (upshift inventory's) beside the ledger's version, through the
    cache the pages and the API share; the simulator answers, and counts the looks."""
    from shared.dashboard.live import LiveLooks, live_flag

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    async with pipeline(backend) as p:
        looks = LiveLooks(p.runtime)

        async def calls() -> int:
            return sum(n for by in (await p.stats()).values() for n in by.values())

        before = await calls()
        live = await looks.get(p.fleet)
        looked = await calls()
        again = await looks.get(p.fleet)  # within the TTL: the same looks, no new vendor call
        assert looked > before and again == live and await calls() == looked
        view = await fleet_view(p.store, p.fleet, datetime.now(UTC), live)
        rows = {t.name: t for t in view.targets}
        for name, (_kind, _id, from_v, _to, _fields) in TARGETS.items():
            assert rows[name].vendor_version == from_v, (name, rows[name].vendor_error)
            assert not rows[name].drift and rows[name].vendor_error is None
        plain = await fleet_view(p.store, p.fleet, datetime.now(UTC))
        assert all(t.vendor_version is None for t in plain.targets), "no look unless asked"
    assert [live_flag(v) for v in (None, "1", "TRUE", "no", "maybe")] == [False, True, True, False, None]
