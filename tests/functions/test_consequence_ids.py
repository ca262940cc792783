"""Consequence ids are pinned: an event in flight across a deploy is deduplicated by its id, so
the same inputs must give exactly the ids they gave before (these were computed by the code
before the consequence builders became one). A change here is a change of behaviour."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from events import Event, T
from events.catalog import Echo, JobPoll, StageFailed, StageRequested, StageSucceeded, Tick, VersionReleased
from events.envelope import consequence
from functions.advance import advance
from functions.start_upgrades import halted_event, stage_requested_id, wave_ready
from functions.window_clock import window_clock
from shared.bus.base import Delayed, Emitted
from shared.clock import FakeClock
from shared.domain.fleet import parse_fleet
from shared.domain.plan import Decision
from shared.domain.releases import Release, release_event
from shared.engine.consequences import next_poll, stage_failed, stage_started, stage_succeeded, stage_waiting
from shared.engine.planning import planned_event
from shared.engine.polling import Expected
from shared.log import get_logger
from shared.runtime.function import Context
from shared.store import Store, open_store

AT = datetime(2026, 3, 1, 2, 5, tzinfo=UTC)
RID = "r0123456789abcde"
TO = "v1.29.3-r0"
REQ = StageRequested(target="t1", kind="cce", stage="upgrade", from_version="v1.28.5-r0", to_version=TO)
REQUESTED = Event(
    type=T.STAGE_REQUESTED,
    id="in-1",
    runid=RID,
    target="t1",
    kind="cce",
    stage="upgrade",
    subject="t1",
    data=REQ,
)
POLL = JobPoll(target="t1", kind="cce", stage="upgrade", to_version=TO, job_id="job-1", poll=3, started_at=AT)
POLLED = Event(type=T.JOB_POLL, id="in-2", runid=RID, target="t1", kind="cce", stage="upgrade", data=POLL)
FLEET = """
clouds: {huawei: {region: r, project_id: p}}
windows:
  w: {rrule: "FREQ=DAILY;BYHOUR=2;BYMINUTE=0", duration: 1h, timezone: UTC, cutoff: 15m}
targets:
  - {name: t1, kind: cce, cluster_id: c, window: w, version: v1.28.5-r0}
"""


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = open_store(f"sqlite:///{tmp_path}/u.db")
    await s.start()
    yield s
    await s.close()


def context(store: Store | None = None) -> Context:
    clock = FakeClock(AT, speed=60.0)
    return Context("test", store, clock, get_logger("test"), fleet=parse_fleet(FLEET))  # type: ignore[arg-type]


def ids(emitted: Sequence[Emitted]) -> list[str]:
    return [(e.event if isinstance(e, Delayed) else e).id for e in emitted]


def test_stage_engine_ids() -> None:
    assert stage_succeeded(REQUESTED, "job-1").id == "face29e9e99c76ec3231a736fc3030fe"
    assert stage_failed(REQUESTED, "c", "m").id == "ca34d09fb9b2992057750402992a5baa"
    assert ids(stage_started(REQUESTED, "job-1", AT, Expected(600.0, 360.0), context().clock)) == [
        "a0fbc48cd2d22d7fd6232a1f90d37169",
        "ff4ca6abc3e46f081e5a9e964b75f0e2",
    ]
    waiting = stage_waiting(REQUESTED, AT, AT, context().clock)
    assert waiting.event.id == "efc4e5248e00f3f81a8244e261a7f1e8"
    assert stage_failed(POLLED, "stuck", "m").id == "ca34d09fb9b2992057750402992a5baa"
    nxt = POLL.model_copy(update={"poll": 4})
    assert next_poll(POLLED, nxt, 30.0, context().clock).event.id == "51bd3e41d2cb831a224b9b0d63fe287e"


async def test_advance_ids(store: Store) -> None:
    await store.ledger.open_run(RID, from_version="v1.28.5-r0", state="running")
    done = StageSucceeded(target="t1", kind="cce", stage="precheck", to_version=TO)
    event = Event(
        type=T.STAGE_SUCCEEDED, id="in-3", runid=RID, target="t1", kind="cce", stage="precheck", data=done
    )
    assert ids(await advance(event, context(store))) == ["0e1c89dc0f7101aa38d23f49d69f07f2"]
    last = StageSucceeded(target="t1", kind="cce", stage="postcheck", to_version=TO)
    event = Event(
        type=T.STAGE_SUCCEEDED, id="in-4", runid=RID, target="t1", kind="cce", stage="postcheck", data=last
    )
    assert ids(await advance(event, context(store))) == ["137647c3d8d1e10f422a8c27a0cd94e7"]
    rid2 = "r0000000000other"
    await store.ledger.open_run(rid2, from_version="v1.28.5-r0", state="running")
    bad = StageFailed(target="t1", kind="cce", stage="upgrade", to_version=TO, code="c", message="m")
    event = Event(
        type=T.STAGE_FAILED, id="in-5", runid=rid2, target="t1", kind="cce", stage="upgrade", data=bad
    )
    assert ids(await advance(event, context(store))) == ["5a56798db4b1f17c4a62feac9589390a"]


def test_planning_ids() -> None:
    decision = Decision("t1", "cce", "cce", TO, True, "ok", "", "v1.28.5-r0", "w", 1)
    assert planned_event(RID, decision).id == "f7f5dcbc8b7376ddbfdb39c7d0f07fca"
    assert stage_requested_id(RID, "precheck", 1) == "1964bcd814e3b8309182ea0b1e32ae3e"
    halted = {"wave": 1, "reason": "x", "target": "t1", "runid": RID}
    assert halted_event(REQUESTED, "w", halted).id == "a762489d162dbd3a9d4d090d761174f3"
    assert wave_ready(context(), REQUESTED, "w", 2, AT, AT).event.id == "226f124a2330a6e4ac8172c18656e78b"


async def test_edge_ids(store: Store) -> None:
    tick = Event(type=T.CLOCK_TICK, id="tick-in", subject="window_clock", data=Tick(at=AT))
    assert ids(await window_clock(tick, context(store))) == ["5ea2148182a95dc6a00303ffd5c55faa"]
    await store.kv.put("waves", "w", {"window": "w", "runs": {RID: {"state": "running"}}})
    assert ids(await window_clock(tick, context(store)))[1:] == ["37d6d2531f4e8dea9eadfadd19bdd043"]
    assert release_event(Release(product="cce", version=TO), AT).id == "44be4f0b81ca69c5bee771de13661404"
    cause = Event(type=T.ECHO, id="in-6", runid=RID, data=Echo(message="x"))
    assert (
        cause.follow(T.ECHO, Echo(message="y", reply=False), id_parts=(1,)).id
        == "b4a43c87dfcfb9c27ae18afe46b82877"
    )
    released = Event(type=T.VERSION_RELEASED, id="in-7", data=VersionReleased(product="cce", version="v1"))
    soak = released.follow(T.VERSION_RELEASED, released.data, id_parts=("soak", AT.isoformat()))
    assert soak.id == "b22ac9365f65a04a7ca51ba8e5ae15c1"
    # the runtime's tick of a scheduled function (shared/runtime/host.py builds it with this key)
    tick_out = consequence(T.CLOCK_TICK, Tick(at=AT), key=("tick", "window_clock", 1772330400.0), subject="x")
    assert tick_out.id == "598df60f3e0c80146cdfa2a5b727b89c"
