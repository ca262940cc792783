"""Every named crash point (``shared.crashpoints.POINTS``), one at a time, on both buses.

Per case: the simulator in this process, a fleet of one target of each kind plus a sixth
(ncloud-kafka) whose every job fails at the vendor, alone in a window of its own so its failure
halts nothing else (see ``bench/_rollout.py``); ``upshift serve`` armed with
``UPSHIFT_CRASH_AT=<point>`` dies by SIGKILL exactly there (the marker file names the point:
a point never reached fails the case); serve restarted unarmed; every run must then end —
five upgraded, the failing one ``failed`` and not upgraded — with each start endpoint called
exactly once per target at the vendor, and no dead letter.

Where a point is first passed is made deterministic: for a stage/poll/advance point only the
release of one *lead* kind is announced before the kill (the others after the restart), so the
first passage is in that kind's handler — chosen so that the claimed start calls of the upgrade
stage are crossed (kafka's precheck is unclaimed, so its first claim is the upgrade), and
``advance.ended`` first ends the failing target's run (its job fails at half of kafka-001's
duration). The outbox points are passed by every handler, clock ticks included (several per real
second), so every release is announced and they are armed at a later passage (``@n``), which
lands while stage handlers are busy (printed: calls made at the kill).

NATS also pauses serve at the two outbox points (``UPSHIFT_CRASH_MODE=pause``), kills
nats-server and restarts it on the same port and store while serve is frozen there, then kills
serve and restarts it.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from bench._rollout import START_ENDPOINTS, TERMINAL, Rollout, wait_healthy
from shared.crashpoints import POINTS

SPEED = 600.0
#: Real seconds a point may take to be reached / the rollout to end after the restart: generous,
#: for a loaded 2-core CI machine; a normal case needs ~5 s and ~15 s.
REACH_S = 90.0
DONE_S = 150.0
#: Which passage of a point to crash at: outbox points are also passed by clock ticks.
NTH = {"outbox.before_commit": 40, "outbox.published": 40}
#: The kind whose release alone is announced before the kill (see the module docstring).
LEAD = {
    "stage.claimed": "ncloud-kafka",  # the kafka upgrade's claim (its precheck is unclaimed)
    "stage.called": "starrocks",  # TaurusDB answered the upgrade; nothing of it written
    "stage.recorded": "oceanbase",  # the OCP task id is on the claim, not in the ledger
    "stage.noted": "autopilot",  # the workflow (a claimed start call) is in the ledger only
    "poll.noted": "cce",  # a CCE status look noted, its next poll not yet published
    "advance.ended": "ncloud-kafka",  # the failing kafka-002's run ends first: failure path
}
OUTBOX = ("outbox.before_commit", "outbox.published")

CASES = [pytest.param(p, b, "kill", id=f"{b}-{p}") for b in ("sqlite", "nats") for p in POINTS] + [
    pytest.param(p, "nats", "pause", id=f"nats-{p}-pause-nats-restart") for p in OUTBOX
]


def _spec(point: str) -> str:
    n = NTH.get(point, 1)
    return point if n == 1 else f"{point}@{n}"


async def _marker(path, timeout: float) -> str | None:
    """The point named in the marker file, once it has been written."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            text = path.read_text()
        except FileNotFoundError:
            text = ""
        if text:
            return text
        await asyncio.sleep(0.02)
    return None


@pytest.mark.parametrize(("point", "backend", "mode"), CASES)
async def test_crash_point(point, backend, mode, tmp_path, request):
    nats = request.getfixturevalue("own_nats_server") if backend == "nats" else None
    marker = tmp_path / "crashed"
    async with Rollout(tmp_path / "run", targets=5, failing=1, bus=backend, nats=nats, speed=SPEED) as ro:
        serve, port = ro.serve()
        arm = {"UPSHIFT_CRASH_AT": _spec(point), "UPSHIFT_CRASH_FILE": str(marker)}
        if mode == "pause":
            arm["UPSHIFT_CRASH_MODE"] = "pause"
        serve.start(**arm)
        t0 = time.monotonic()
        try:
            await wait_healthy(port, serve)
        except AssertionError:
            assert not serve.alive, "serve did not come up"  # died at the point already: checked below
        else:
            lead = LEAD.get(point)
            # stops early when serve died or froze at the point; all are posted again after the restart
            await ro.post_releases(
                port, kinds=None if lead is None else (lead,), proc=serve, stop=marker.exists
            )

        if mode == "kill":
            rc = await serve.wait(REACH_S)
            assert rc is not None, f"{point} not reached within {REACH_S}s:\n{ro.log_excerpt()}"
            assert rc == -9, f"serve exited with {rc}, not by SIGKILL at {point}:\n{serve.tail()}"
            ro.count_kill(serve)
            assert await _marker(marker, 1.0) == point, "the kill landed somewhere else"
        else:
            named = await _marker(marker, REACH_S)
            assert named == point, f"{point} not reached within {REACH_S}s:\n{ro.log_excerpt()}"
            assert serve.alive, "paused serve died"
            await ro.kill_nats()  # while serve is frozen at the point
            assert await ro.kill(serve) == -9
        reached_s = time.monotonic() - t0
        calls = (await ro.sim_stats())["calls"]
        at_kill = {
            ep: calls[ep]
            for ep in sorted({e for eps in START_ENDPOINTS.values() for e in eps})
            if ep in calls
        }
        ended = {
            r.get("target", r["id"]): r["state"]
            for r in (await ro.runs() or {}).values()
            if r.get("state") in TERMINAL
        }

        serve.start()  # unarmed
        await wait_healthy(port, serve)
        assert await ro.post_releases(port)
        done = await ro.wait_done(DONE_S)
        fig = await ro.figures()
        print(
            f"\n{backend} {point} {mode}: reached in {reached_s:.1f}s, start calls at the kill {at_kill}, runs ended {ended}; {fig.summary()}"
        )
        assert done, (
            f"runs not terminal after {DONE_S}s: {fig.not_terminal}\n{ro.log_excerpt(*fig.not_terminal)}"
        )
        problems = fig.problems()
        assert not problems, "\n".join(problems) + "\n" + ro.log_excerpt()
