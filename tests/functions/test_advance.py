"""advance: the next stage (window-gated), the run's outcome, and the ledger — called directly
with a real SQLite store and a FakeClock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from events import Event, T
from events.catalog import StageFailed, StageSucceeded
from functions.advance import advance
from shared.bus import Delayed
from shared.clock import FakeClock
from shared.domain.fleet import parse_fleet
from shared.domain.stages import run_id
from shared.log import get_logger
from shared.runtime.function import Context
from shared.store import Store, open_store

FLEET = """
clouds:
  huawei: {region: ap-southeast-1, project_id: p1}
windows:
  night: {rrule: "FREQ=DAILY;BYHOUR=2", duration: 2h, timezone: UTC, cutoff: 30m}
durations: {cce: {precheck: 10m, upgrade: 40m, postcheck: 5m}}
targets:
  - {name: anytime, kind: cce, cluster_id: c1, version: v1.28.0-r0}
  - {name: nightly, kind: cce, cluster_id: c2, version: v1.28.0-r0, window: night}
"""
TO = "v1.29.3-r0"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = open_store(f"sqlite:///{tmp_path}/u.db")
    await s.start()
    yield s
    await s.close()


def context(store: Store, now: str = "2025-03-04T02:10:00") -> Context:
    clock = FakeClock(datetime.fromisoformat(now).replace(tzinfo=UTC), speed=60.0)
    return Context("advance", store, clock, get_logger("test.advance"), fleet=parse_fleet(FLEET))


def succeeded(target: str, stage: str) -> Event:
    data = StageSucceeded(target=target, kind="cce", stage=stage, to_version=TO, job_id="j1")
    return Event(
        type=T.STAGE_SUCCEEDED, data=data, runid=run_id(target, TO), target=target, kind="cce", stage=stage
    )


async def test_a_stage_with_a_successor_requests_it(store: Store) -> None:
    await store.ledger.open_run(run_id("anytime", TO), from_version="v1.28.0-r0", state="running")
    out = await advance(succeeded("anytime", "precheck"), context(store))
    assert len(out) == 1 and isinstance(out[0], Event)
    nxt = out[0]
    assert nxt.type == T.STAGE_REQUESTED and nxt.stage == "upgrade" and nxt.runid == run_id("anytime", TO)
    assert (nxt.data.stage, nxt.data.from_version, nxt.data.to_version) == ("upgrade", "v1.28.0-r0", TO)
    # a redelivery (or a copy under another id) emits the very same event: the bus drops it
    again = await advance(succeeded("anytime", "precheck").model_copy(update={"id": "other"}), context(store))
    assert again[0].id == nxt.id


async def test_the_last_stage_records_the_new_version(store: Store) -> None:
    rid = run_id("anytime", TO)
    await store.ledger.open_run(rid, from_version="v1.28.0-r0", state="running")
    out = await advance(succeeded("anytime", "postcheck"), context(store))
    assert [e.type for e in out] == [T.UPGRADE_SUCCEEDED]
    assert (out[0].data.from_version, out[0].data.to_version) == ("v1.28.0-r0", TO)
    assert await store.ledger.version("anytime") == TO
    run = await store.ledger.run(rid)
    assert run["state"] == "succeeded" and run["ended_at"].startswith("2025-03-04T02:10")


async def test_a_failed_stage_fails_the_upgrade(store: Store) -> None:
    rid = run_id("anytime", TO)
    await store.ledger.open_run(rid, from_version="v1.28.0-r0", state="running")
    data = StageFailed(
        target="anytime", kind="cce", stage="upgrade", to_version=TO, code="CCE.01400001", message="no"
    )
    event = Event(type=T.STAGE_FAILED, data=data, runid=rid, target="anytime", kind="cce", stage="upgrade")
    out = await advance(event, context(store))
    assert [e.type for e in out] == [T.UPGRADE_FAILED]
    assert (out[0].data.stage, out[0].data.code, out[0].data.message) == ("upgrade", "CCE.01400001", "no")
    run = await store.ledger.run(rid)
    assert run["state"] == "failed" and run["failed_stage"] == "upgrade"
    assert await store.ledger.version("anytime") is None
    # the run is over: a late success changes nothing
    assert await advance(succeeded("anytime", "postcheck"), context(store)) == []
    assert (await store.ledger.run(rid))["state"] == "failed"


async def test_a_stage_that_does_not_fit_before_the_cutoff_waits_for_the_next_window(store: Store) -> None:
    # 03:10 UTC: the window closes at 04:00, cutoff 03:30 — a 40-minute upgrade no longer fits.
    ctx = context(store, "2025-03-04T03:10:00")
    out = await advance(succeeded("nightly", "precheck"), ctx)
    assert len(out) == 1 and isinstance(out[0], Delayed)
    assert out[0].event.data.stage == "upgrade"
    next_open = datetime(2025, 3, 5, 2, 0, tzinfo=UTC)
    assert out[0].delay == pytest.approx(ctx.clock.real_delay((next_open - ctx.clock.now()).total_seconds()))


async def test_a_stage_that_fits_starts_at_once(store: Store) -> None:
    out = await advance(succeeded("nightly", "upgrade"), context(store, "2025-03-04T02:10:00"))
    assert isinstance(out[0], Event) and out[0].data.stage == "postcheck"
