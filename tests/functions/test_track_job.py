"""track_job: status calls per job (counted by the simulator and the ledger), the poll schedule,
stuck jobs."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest

from events import T
from shared.domain.stages import run_id
from shared.engine.polling import BLIND, FLOOR, LOOKS_TO_STUCK, STEP, expected_from, poll_delay
from tests.functions._stages_harness import ENV, KINDS, TARGETS, pipeline

#: The simulator endpoint a kind's upgrade job is read through.
STATUS = {
    "cce": "cce.upgrade_task",
    "autopilot": "autopilot.upgrade_task",
    "starrocks": "taurusdb.jobs",
    "oceanbase": "ocp.get_task",
    "ncloud-kafka": "ncloud.upgrade_progress",
}


@pytest.fixture(autouse=True)
def _creds(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def looks(duration: float, expected: float) -> list[float]:
    """The instants (seconds after the start) track_job looks at a job of a (kind, stage) without
    history (``expected`` from the fleet), up to the first at/after its end."""
    exp, t, out = expected_from([], expected), 0.0, []
    while not out or out[-1] < duration:
        t += poll_delay(exp, t)
        out.append(t)
    return out


@pytest.mark.parametrize("expected", [10.0, 60.0, 600.0, 2400.0, 7200.0])
def test_a_job_as_long_as_expected_takes_few_looks_and_is_noticed_soon(expected: float) -> None:
    for duration in (0.7 * expected, expected, 1.3 * expected):
        seen = looks(duration, expected)
        # the first look at BLIND x expected, then geometric steps of STEP until the end
        assert len(seen) <= 1 + math.ceil(math.log(duration / expected / BLIND) / math.log(1 + STEP))
        assert seen[-1] - duration <= max(FLOOR, STEP * duration) + 1e-9


def test_a_job_longer_than_expected_is_still_noticed_within_a_step() -> None:
    for duration in (2 * 600.0, 5 * 600.0, 20 * 600.0):
        seen = looks(duration, 600.0)
        assert seen[-1] - duration <= max(FLOOR, STEP * duration) + 1e-9


#: Looks at a job exactly as long as the fleet expects, with no history yet: the first at BLIND x
#: expected, then one every STEP of the elapsed time until the end.
BUDGET = 1 + math.ceil(math.log(1 / BLIND) / math.log(1 + STEP))


async def test_status_calls_per_job_stay_within_the_budget(tmp_path: Path) -> None:
    async with pipeline(f"sqlite:///{tmp_path}/u.db") as p:
        for name in TARGETS:
            await p.start(name)
        for name in TARGETS:
            assert (await p.outcome(name)).type == T.UPGRADE_SUCCEEDED
        stats = await p.stats()
        per_job: list[int] = []
        for name, (kind, sim_id, _from, to_v, _) in TARGETS.items():
            run = await p.store.ledger.run(run_id(name, to_v))
            jobs = {stage: s["status_calls"] for stage, s in run["stages"].items() if "status_calls" in s}
            assert jobs, run
            assert all(1 <= n <= BUDGET for n in jobs.values()), (name, jobs)
            assert run["status_calls"] == sum(jobs.values())
            # the vendor saw exactly the status calls the ledger counted for the upgrade job
            assert stats[STATUS[kind]][sim_id] == jobs["upgrade"]
            per_job.extend(jobs.values())
        assert statistics.median(per_job) <= BUDGET
        print(f"status calls per job: {sorted(per_job)} median {statistics.median(per_job)}")


async def test_a_job_without_progress_fails_as_stuck(tmp_path: Path) -> None:
    # Jobs take ~12 days in the simulator while the fleet expects 10 minutes: progress stays at 0.
    async with pipeline(f"sqlite:///{tmp_path}/u.db", job_seconds=1e6) as p:
        name = KINDS["cce"]
        await p.runtime.bus.publish(p.request(name, "upgrade"))
        outcome = await p.outcome(name, 60)
        assert outcome.type == T.UPGRADE_FAILED and outcome.data.code == "stuck"
        assert "no progress" in outcome.data.message
        run = await p.store.ledger.run(outcome.runid)
        stage = run["stages"]["upgrade"]
        assert stage["state"] == "failed" and stage["code"] == "stuck"
        # it looked until the deadline (3 x expected without progress), not for ever
        assert stage["status_calls"] <= LOOKS_TO_STUCK


@pytest.mark.parametrize("first", ["succeeded", "failed"])
async def test_a_look_at_a_job_whose_outcome_is_settled_emits_that_outcome_and_calls_nothing(
    tmp_path: Path, first: str
) -> None:
    """A job.poll redelivered (or run beside another look) after a look settled the stage: the
    settled outcome again, with its id — not a new verdict from a new answer (one look read
    "stuck", another "succeeded": both went out, and the run failed after its next stage began).
    The context has no cloud clients: a status call would raise."""
    from events import Event
    from events.catalog import JobPoll
    from functions.track_job import track_job
    from shared.clock import FakeClock
    from shared.engine.consequences import stage_failed, stage_succeeded
    from shared.log import get_logger
    from shared.runtime.function import Context
    from shared.store import open_store
    from tests.functions._planning import FLEET, fleet_from, utc

    store = open_store(f"sqlite:///{tmp_path}/u.db")
    await store.start()
    try:
        rid = run_id("canary", "v1.29.0-r0")
        await store.ledger.open_run(rid, target="canary", kind="cce", state="running")
        await store.ledger.note_stage(rid, "upgrade", state="running", job_id="job-1")
        verdict = {"state": "succeeded"} if first == "succeeded" else {"state": "failed", "code": "stuck"}
        await store.ledger.settle_stage(
            rid, "upgrade", "job-1", status_calls=1, message="no progress", **verdict
        )
        poll = JobPoll(
            target="canary", kind="cce", stage="upgrade", to_version="v1.29.0-r0", job_id="job-1", poll=4
        )
        event = Event(type=T.JOB_POLL, data=poll, runid=rid, target="canary", kind="cce", stage="upgrade")
        ctx = Context(
            function="track_job",
            store=store,
            clock=FakeClock(utc("2026-06-10T00:30:00")),
            log=get_logger("track_job"),
            fleet=fleet_from(FLEET),
        )
        want = (
            stage_succeeded(event, "job-1")
            if first == "succeeded"
            else stage_failed(event, "stuck", "no progress", job_id="job-1")
        )
        for _ in range(2):
            [out] = await track_job(event, ctx)
            assert (out.type, out.id) == (want.type, want.id)
            if first == "failed":
                assert (out.data.code, out.data.message) == ("stuck", "no progress")
        assert (await store.ledger.run(rid))["stages"]["upgrade"]["status_calls"] == 1, "it looked again"
    finally:
        await store.close()


async def test_a_job_missing_soon_after_its_id_became_known_is_looked_at_again(tmp_path: Path) -> None:
    """A 404 for a job whose id the stage recorded less than the vendor's settle time ago is a
    lagging view, not a lost job — even when the stage's first send was long before (a retry
    made the job): measured from ``known_at``. Past that, the stage fails."""
    import dataclasses
    from datetime import timedelta

    from events import Event
    from events.catalog import JobPoll
    from functions.track_job import track_job
    from shared.clock import FakeClock
    from shared.engine.vendor_clock import iso
    from shared.errors import RetryLater

    async with pipeline(f"sqlite:///{tmp_path}/u.db") as p:
        name = KINDS["cce"]
        _kind, _id, _from, to_v, _ = TARGETS[name]
        rid = run_id(name, to_v)
        live = p.runtime.context("track_job")
        # a clock that stands still: "less than settle_s ago" must not depend on how long the
        # status call takes on a loaded machine
        ctx = dataclasses.replace(live, clock=FakeClock(live.clock.now(), speed=live.clock.speed))
        now = ctx.clock.now()
        long_ago = now - timedelta(hours=1)  # domain time: seconds of real time at this speed
        await p.store.ledger.open_run(rid, target=name, kind="cce", state="running")
        await p.store.ledger.note_stage(
            rid,
            "upgrade",
            state="running",
            job_id="no-such-task",
            started_at=iso(long_ago),
            known_at=iso(now),
        )
        poll = JobPoll(
            target=name,
            kind="cce",
            stage="upgrade",
            to_version=to_v,
            job_id="no-such-task",
            started_at=long_ago,
        )
        event = Event(type=T.JOB_POLL, data=poll, runid=rid, target=name, kind="cce", stage="upgrade")
        with pytest.raises(RetryLater):
            await track_job(event, ctx)
        await p.store.ledger.note_stage(rid, "upgrade", known_at=iso(long_ago))
        [failed] = await track_job(event, ctx)
        assert failed.type == T.STAGE_FAILED and failed.data.message == "Upgrade task not found", failed
