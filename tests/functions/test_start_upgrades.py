"""start_upgrades in simulated time: windows hold, waves wait for success + bake, canaries halt.

The real window_clock, plan_upgrades and start_upgrades run on a real bus (SQLite and NATS) with a
FakeClock; outcomes are published by the test. The fleet's window is 02:00–04:00 Europe/Berlin
(CEST in June: 00:00–02:00 UTC), cutoff 30m (01:30 UTC), concurrency 2, bake 30m, and a CCE
precheck is expected to take 20m.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from events import Event, T
from events.catalog import WindowOpened
from shared.domain.windows import window_at
from tests.functions._planning import FLEET, Harness, bus_url, fleet_from, utc
from tests.helpers import eventually

PRECHECK = timedelta(minutes=20)
ALL = ("window_clock", "plan_upgrades", "start_upgrades")


@pytest.fixture(params=["sqlite", "nats"])
def backend(request: pytest.FixtureRequest, tmp_path) -> str:
    """The bus/store URL: every Harness test runs on the SQLite bus and on NATS JetStream."""
    return bus_url(request, tmp_path)


def _targets(events: list[Event]) -> list[str]:
    return [e.data.target for e in events]


async def _assert_inside_windows(h: Harness) -> None:
    """Every stage.requested was released at a domain instant inside the window, fitting the cutoff."""
    window = h.fleet.windows["night"]
    for e in h.events(T.STAGE_REQUESTED):
        run = await h.run(e.runid)
        released = utc(run["released_at"][:19])
        occ = window_at(window, released)
        assert occ is not None, f"{e.data.target} started at {released} outside the window"
        assert released + PRECHECK <= occ.cutoff_at, f"{e.data.target} started too close to the cutoff"


async def test_windows_hold_waves_bake_and_concurrency(backend):
    fleet = fleet_from(FLEET)
    async with Harness(backend, fleet, utc("2026-06-09T12:00:00"), functions=ALL) as h:
        await h.at(utc("2026-06-09T12:00:00"))
        await h.release("cce", "v1.29.0-r0")
        assert len(h.events(T.UPGRADE_PLANNED)) == 4
        assert h.events(T.STAGE_REQUESTED) == [], "the window is closed"

        await h.at(utc("2026-06-10T00:00:00"))  # the window opens: only the canary (wave 0)
        assert len(h.events(T.WINDOW_OPENED)) == 1
        requested = h.events(T.STAGE_REQUESTED)
        assert _targets(requested) == ["canary"]
        assert requested[0].data.stage == "precheck" and requested[0].stage == "precheck"
        assert (await h.run(requested[0].runid))["state"] == "running"

        # a second window.opened for the same occurrence (another id) releases nothing new
        w = fleet.windows["night"]
        occ = window_at(w, h.clock.now())
        await h.publish(
            Event(
                type=T.WINDOW_OPENED,
                data=WindowOpened(
                    window="night", opens_at=occ.opens_at, closes_at=occ.closes_at, cutoff_at=occ.cutoff_at
                ),
            )
        )
        assert len(h.events(T.STAGE_REQUESTED)) == 1

        await h.at(utc("2026-06-10T00:10:00"))
        await h.outcome(requested[0], ok=True)
        # the run's end state is advance's to write; the waves document lets it go
        assert requested[0].runid not in (await h.waves())["runs"]
        assert len(h.events(T.STAGE_REQUESTED)) == 1, "wave 1 waits for the bake"
        ready = h.delayed(T.WAVE_READY)
        assert ready and all(
            e.data.wave == 1 and e.data.not_before == utc("2026-06-10T00:40:00") for e, _ in ready
        )

        await h.at(utc("2026-06-10T00:39:00"))
        assert len(h.events(T.STAGE_REQUESTED)) == 1, "still baking"

        await h.at(utc("2026-06-10T00:40:00"))  # bake over: the delayed wave.ready releases wave 1
        await eventually(lambda: len(h.events(T.STAGE_REQUESTED)) == 3)
        await h.settle()
        wave1 = h.events(T.STAGE_REQUESTED)[1:]
        assert sorted(_targets(wave1)) == ["prod-a", "prod-b"], "concurrency 2"
        assert await _running(h) == 2

        # 01:20 + 20m precheck > 01:30 cutoff: prod-c does not fit and waits for the next window
        await h.at(utc("2026-06-10T01:20:00"))
        await h.outcome(wave1[0], ok=True)
        await h.at(utc("2026-06-10T01:25:00"))
        await h.outcome(wave1[1], ok=True)
        await h.at(utc("2026-06-10T01:31:00"))
        assert len(h.events(T.WINDOW_CLOSING)) == 1
        assert len(h.events(T.STAGE_REQUESTED)) == 3
        await h.at(utc("2026-06-10T12:00:00"))
        assert len(h.events(T.STAGE_REQUESTED)) == 3

        await h.at(utc("2026-06-11T00:00:00"))  # next window: prod-c goes
        assert _targets(h.events(T.STAGE_REQUESTED))[-1] == "prod-c"
        assert len(h.events(T.STAGE_REQUESTED)) == 4
        await _assert_inside_windows(h)


async def _running(h: Harness) -> int:
    """Runs released and not yet ended, as the waves document holds them (concurrency is its)."""
    return sum(1 for r in (await h.waves())["runs"].values() if r.get("released_by"))


async def test_a_failed_canary_halts_the_later_waves(backend):
    fleet = fleet_from(FLEET)
    async with Harness(backend, fleet, utc("2026-06-09T12:00:00"), functions=ALL) as h:
        await h.at(utc("2026-06-09T12:00:00"))
        await h.release("cce", "v1.29.0-r0")
        await h.at(utc("2026-06-10T00:00:00"))
        [canary] = h.events(T.STAGE_REQUESTED)
        await h.at(utc("2026-06-10T00:05:00"))
        await h.outcome(canary, ok=False)
        halted = h.events(T.UPGRADE_HALTED)
        assert len(halted) == 1
        assert halted[0].data.window == "night" and halted[0].data.wave == 0
        assert halted[0].data.failed_target == "canary" and "CCE.01400001" in halted[0].data.reason
        assert (await h.waves())["halted"]["target"] == "canary"
        assert canary.runid not in (await h.waves())["runs"]

        # a second failure report (another id) halts nothing more
        await h.outcome(canary, ok=False, stage="postcheck")
        assert len(h.events(T.UPGRADE_HALTED)) == 1

        # long past the bake, and the next window: still nothing for wave 1
        await h.at(utc("2026-06-10T01:00:00"))
        await h.at(utc("2026-06-11T00:00:00"))
        assert _targets(h.events(T.STAGE_REQUESTED)) == ["canary"]
        assert h.delayed(T.WAVE_READY) == []
        for name in ("prod-a", "prod-b", "prod-c"):
            [planned] = [e for e in h.events(T.UPGRADE_PLANNED) if e.data.target == name]
            assert (await h.run(planned.runid))["state"] == "planned"


async def test_a_redelivered_trigger_emits_the_same_stage_requested(backend):
    fleet = fleet_from(FLEET)
    async with Harness(
        backend, fleet, utc("2026-06-10T00:05:00"), functions=("plan_upgrades", "start_upgrades")
    ) as h:
        await h.release("cce", "v1.29.0-r0")  # the window is open: the canary goes at once
        [first] = h.events(T.STAGE_REQUESTED)
        from functions.start_upgrades import stage_requested_id, start_upgrades

        assert first.id == stage_requested_id(first.runid, "precheck", 1)
        # run the handler again on the very event that released it (a redelivery). That is any of
        # the four upgrade.planned (they are handled concurrently, and the canary is in the waves
        # document before any of them arrives): the document names it.
        by = (await h.waves())["runs"][first.runid]["released_by"]
        [planned] = [e for e in h.events(T.UPGRADE_PLANNED) if e.id == by]
        again = await start_upgrades(planned, h.runtime.context("start_upgrades"))
        assert [e.id for e in again] == [first.id]
        assert not await h.runtime.bus.publish(again[0])


PAGED_FLEET = """
clouds:
  huawei: {region: ap-southeast-1, project_id: p1}
windows:
  night: {rrule: "FREQ=DAILY;BYHOUR=2", duration: 6h, timezone: Europe/Berlin, cutoff: 30m, concurrency: 3}
waves: {bake: 0m}
durations: {cce: {precheck: 20m}}
targets:
  - {name: canary, kind: cce, cluster_id: c0, window: night, wave: 0, version: v1.28.0-r0}
""" + "".join(
    f"  - {{name: prod-{i:02d}, kind: cce, cluster_id: c{i + 1}, window: night, wave: 1, version: v1.28.0-r0}}\n"
    for i in range(20)
)


async def test_a_big_window_pages_its_planned_runs_and_releases_each_once(backend, monkeypatch):
    """The document holds at most its room of planned runs (here 6: concurrency 3, HEAD_MIN 2);
    the other 14 wait in pages of 4, drain in order, and every page is deleted once drained."""
    from shared.domain import wave_pages, waves

    monkeypatch.setattr(waves, "HEAD_MIN", 2)
    monkeypatch.setattr(wave_pages, "PAGE_SIZE", 4)
    fleet = fleet_from(PAGED_FLEET)
    async with Harness(backend, fleet, utc("2026-06-09T12:00:00"), functions=ALL) as h:
        await h.at(utc("2026-06-09T12:00:00"))
        await h.release("cce", "v1.29.0-r0")
        assert len(h.events(T.UPGRADE_PLANNED)) == 21
        doc = await h.waves()
        assert sum(1 for r in doc["runs"].values() if r["state"] == "planned") == 6
        assert [len(q["pages"]) for q in doc["queue"].values()] == [4]  # 15 wave-1 runs: 4+4+4+3
        assert len(await h.store.kv.keys("wave-pages")) == 4

        minute = utc("2026-06-10T00:00:00")
        await h.at(minute)  # the window opens: the canary
        done = 0
        while done < len(h.events(T.STAGE_REQUESTED)):
            doc = await h.waves()
            assert await _running(h) <= 3
            planned = sum(1 for r in doc["runs"].values() if r["state"] == "planned")
            assert planned <= 6, f"{planned} planned runs in the document"
            minute += timedelta(minutes=1)
            await h.at(minute)
            await h.outcome(h.events(T.STAGE_REQUESTED)[done], ok=True)
            done += 1
            await h.settle()
        requested = _targets(h.events(T.STAGE_REQUESTED))
        assert requested[0] == "canary"
        assert sorted(requested[1:]) == [f"prod-{i:02d}" for i in range(20)], "each once"
        assert requested[1:] == sorted(requested[1:]), "in the order planned (by target)"
        assert await h.store.kv.keys("wave-pages") == [], "drained pages are deleted"
        assert (await h.waves())["queue"] == {}
        await _assert_inside_windows(h)


@pytest.mark.parametrize("ok", [True, False], ids=["succeeded", "failed"])
async def test_a_run_whose_outcome_event_was_lost_is_swept_out_and_its_slot_refilled(backend, ok):
    """The canary's run ends in the ledger, but its upgrade.succeeded / upgrade.failed never
    reaches start_upgrades (dead-lettered, lost with a server). window_clock's next sweep ends it
    in the waves document as the event would have: a success frees its slot and wave 1 follows
    after the bake; a failure halts the window with the same upgrade.halted."""
    from functions.start_upgrades import halted_event
    from shared.store.ledger import RunState

    fleet = fleet_from(FLEET)
    async with Harness(backend, fleet, utc("2026-06-10T00:00:00"), functions=ALL) as h:
        await h.at(utc("2026-06-10T00:00:00"))  # the window opens (and its first sweep goes)
        await h.release("cce", "v1.29.0-r0")
        [canary] = h.events(T.STAGE_REQUESTED)
        await h.at(utc("2026-06-10T00:05:00"))  # a sweep while the run still runs: left alone
        assert (await h.waves())["runs"][canary.runid]["state"] == "running"

        await h.at(utc("2026-06-10T00:07:00"))
        if ok:
            await h.store.ledger.end_run(canary.runid, RunState.SUCCEEDED, ended_at="2026-06-10T00:07:00Z")
        else:
            await h.store.ledger.end_run(
                canary.runid, RunState.FAILED, failed_stage="precheck", code="CCE.01400001", message="boom"
            )
        await h.at(utc("2026-06-10T00:09:00"))  # the same sweep period as 00:05: no new look
        assert canary.runid in (await h.waves())["runs"]

        await h.at(utc("2026-06-10T00:10:00"))  # the next period's sweep
        doc = await h.waves()
        assert canary.runid not in doc["runs"], "the ended run still holds its slot"
        if not ok:
            assert doc["halted"]["target"] == "canary"
            assert doc["halted"]["reason"] == "canary failed at precheck: CCE.01400001 boom"
            [halted] = h.events(T.UPGRADE_HALTED)
            # the id its lost upgrade.failed would have given it: a late one is a duplicate
            assert halted.id == halted_event(halted, "night", doc["halted"]).id
            await h.at(utc("2026-06-10T01:00:00"))
            assert _targets(h.events(T.STAGE_REQUESTED)) == ["canary"], "a halted window released"
            return
        assert doc["halted"] is None and doc["last_ended"]["0"] == "2026-06-10T00:10:00+00:00"
        assert _targets(h.events(T.STAGE_REQUESTED)) == ["canary"], "wave 1 went before its bake"
        await h.at(utc("2026-06-10T00:40:00"))  # the bake is over (30m after the sweep ended it)
        await eventually(lambda: len(h.events(T.STAGE_REQUESTED)) == 3)
        assert sorted(_targets(h.events(T.STAGE_REQUESTED))[1:]) == ["prod-a", "prod-b"]
        assert h.events(T.UPGRADE_HALTED) == []
