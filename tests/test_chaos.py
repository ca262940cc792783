"""Random kill -9 during a 40-target rollout on a misbehaving simulator, on both buses.

SQLite: ``upshift serve`` killed 7 times at random moments, restarted each time. NATS: serve plus
three ``upshift worker`` processes on the same bus, 7 kills spread over them at random, and
nats-server killed -9 and restarted on the same port and store 3 times. The simulator's faults
are on throughout (5xx/429, resets, answers lost after the job started or late, list lag,
skewed vendor clocks: ``bench._rollout.FAULTS``) and one extra target fails at the vendor.

Then: every healthy target upgraded at the simulator, the failing one not and its run
``failed``; every start endpoint called exactly once per target; every run terminal; no dead
letter (a dead letter would fail its run, so a healthy target would show it too). The driver is
``bench.chaos.run_chaos`` (``python -m bench.chaos`` runs the big version).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from bench.chaos import run_chaos
from events import Event, T
from events.catalog import WindowOpened
from shared.clock import FakeClock
from shared.domain.releases import Release, release_event
from shared.domain.stages import run_id
from shared.log import get_logger
from shared.runtime.function import Context
from shared.store import open_store
from tests.functions._planning import FLEET, fleet_from, utc

TARGETS = 40
KILLS = 7
#: Real seconds for every run to end: a normal run needs ~60 s; generous for a loaded CI machine.
GIVE_UP_S = 300.0


@pytest.mark.parametrize("backend", ["sqlite", "nats"])
async def test_chaos(backend, tmp_path, request):
    nats = request.getfixturevalue("own_nats_server") if backend == "nats" else None
    fig, done, ro = await run_chaos(
        tmp_path / "run", bus=backend, targets=TARGETS, kills=KILLS, failing=1,
        workers=3 if backend == "nats" else 0, nats_kills=3 if backend == "nats" else 0,
        seed=4242, speed=300.0, concurrency=20, give_up_s=GIVE_UP_S, nats=nats,
    )  # fmt: skip
    print(f"\nchaos {backend}: {fig.summary()}")
    # (every broken invariant in the message, not only the first: a lost wake-up shows as runs
    # left planned, and its cause, e.g. a dead letter, is in the rest)
    assert done, (
        f"runs not terminal after {GIVE_UP_S}s: {fig.not_terminal}\n"
        + "\n".join(fig.problems())
        + f"\nwaves documents: {fig.notes.get('waves')}"
        + f"\n{ro.log_excerpt(*fig.not_terminal)}"
    )
    kills = fig.kills.get("serve", 0) + fig.kills.get("worker", 0)
    assert kills == KILLS, f"only {kills} kills landed before the rollout ended"
    if backend == "nats":
        assert fig.kills.get("nats-server") == 3
    problems = fig.problems()
    assert not problems, "\n".join(problems) + "\n" + ro.log_excerpt()


async def test_a_run_released_while_it_is_being_planned_keeps_its_fields(tmp_path, monkeypatch):
    """Deterministic form of a race the chaos test met: start_upgrades runs at plan_upgrades'
    await point between writing the waves document and opening the ledger run."""
    from functions.plan_upgrades import plan_upgrades
    from functions.start_upgrades import start_upgrades
    from shared.store.ledger import Ledger

    store = open_store(f"sqlite:///{tmp_path}/u.db")
    await store.start()
    clock = FakeClock(utc("2025-06-10T00:30:00"))  # 02:30 in Berlin: inside the "night" window
    fleet = fleet_from(FLEET)

    def ctx(name: str) -> Context:
        return Context(function=name, store=store, clock=clock, log=get_logger(name), fleet=fleet)

    now = clock.now()
    opened = Event(
        type=T.WINDOW_OPENED, id="opened-1", subject="night",
        data=WindowOpened(
            window="night", opens_at=now - timedelta(minutes=30), closes_at=now + timedelta(minutes=90),
            cutoff_at=now + timedelta(minutes=60),
        ),
    )  # fmt: skip
    open_run = Ledger.open_run
    interleaved: list[list] = []

    async def open_run_after_a_release(self, rid, **fields):
        if not interleaved:  # another delivery (same process or another worker) runs here
            interleaved.append(await start_upgrades(opened, ctx("start_upgrades")))
        return await open_run(self, rid, **fields)

    monkeypatch.setattr(Ledger, "open_run", open_run_after_a_release)
    release = Release(product="cce", version="v1.29.0-r0", released_at=now - timedelta(days=30))
    try:
        await plan_upgrades(release_event(release, now), ctx("plan_upgrades"))
        run = await store.ledger.run(run_id("canary", "v1.29.0-r0"))
    finally:
        await store.close()
    assert interleaved and interleaved[0], "start_upgrades released the canary in between"
    assert run is not None
    assert {k: run.get(k) for k in ("target", "kind", "to_version", "window", "wave")} == {
        "target": "canary",
        "kind": "cce",
        "to_version": "v1.29.0-r0",
        "window": "night",
        "wave": 0,
    }


async def test_an_applied_workflow_create_is_not_sent_again(monkeypatch):
    """Deterministic form: the vendor creates the workflow, then answers 500 (``apply_then_5xx``)."""
    from bench._rollout import CLIENT
    from shared.clouds.errors import CloudError
    from shared.clouds.registry import CloudClients
    from shared.domain.fleet import parse_fleet
    from shared.ops.demo import DEMO_ENV, build_demo_fleet
    from simulator.core import SimCredentials
    from simulator.testing import run_simulator

    creds = SimCredentials()
    async with run_simulator(
        targets=build_demo_fleet(5, "", creds.hw_project_id).sim_targets, creds=creds
    ) as sim:
        for env, name in DEMO_ENV.items():
            monkeypatch.setenv(env, getattr(creds, name))
        fleet = parse_fleet(
            build_demo_fleet(5, sim.url, creds.hw_project_id, client=CLIENT).fleet_yaml, "fleet"
        )
        clouds = CloudClients.from_fleet(fleet)
        target = sim.target("autopilot")
        sim.state.faults.update({"autopilot.workflow": {"apply_then_5xx_rate": 1.0}})
        try:
            with pytest.raises(CloudError):
                await clouds.autopilot.create_workflow(target.id, "v1.29")
        finally:
            await clouds.close()
        assert sim.state.stats.calls["autopilot.workflow"][target.id] == 1, "the workflow POST was sent again"
