"""Pause, resume and cancel on the real stage functions, against the simulator, on both buses.

The stage functions, track_job, advance, autopilot_cancel and chat_command run as the manifest
wires them (tests/functions/_stages_harness.py); commands come as ``chat.command`` from the CLI
(``via=cli``, an rbac ``cli:`` grant). The simulator counts every vendor call, so "nothing new
started" is the vendor's word, not ours.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from events import Event, T
from events.catalog import ChatCommand
from shared.engine.control import control_state
from tests.functions._stages_harness import Pipeline, pipeline, until

RBAC = """
rbac:
  - {name: ops, role: admin, cli: [tester]}
"""
_ids = count()


@pytest.fixture(autouse=True)
def _creds(stage_creds) -> None:
    """Every test here talks to the simulator with its credentials."""


@pytest.fixture(params=["sqlite", "nats"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/u.db"
    server = request.getfixturevalue("nats_server")
    return f"{server.url}?namespace={request.getfixturevalue('namespace')}"


async def holds(check: Callable[[], Awaitable[bool]], limit: float = 60.0) -> bool:
    """Until ``check()`` holds (True), or ``limit`` seconds pass (False): a wait on a state."""
    deadline = time.monotonic() + limit
    while not await check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def calls(p: Pipeline, endpoint: str) -> int:
    """The simulator's count of ``endpoint`` calls, over every target."""
    return sum((await p.stats()).get(endpoint, {}).values())


async def say(p: Pipeline, text: str) -> dict[str, Any]:
    event = Event(
        type=T.CHAT_COMMAND,
        data=ChatCommand(
            platform="cli", channel="cli", user="tester", text=text, trigger_id=f"t{next(_ids)}"
        ),
        extensions={"via": "cli"},
    )
    await p.runtime.bus.publish(event)

    async def answered() -> bool:
        return await p.store.audit.get(event.id) is not None

    assert await holds(answered), f"no audit entry for {text!r}"
    entry = await p.store.audit.get(event.id)
    assert entry is not None
    return entry


def started(p: Pipeline, name: str, stage: str) -> bool:
    return any(e.data.target == name and e.data.stage == stage for e in p.seen.get(T.STAGE_STARTED, []))


def succeeded(p: Pipeline, name: str, stage: str) -> bool:
    return any(e.data.target == name and e.data.stage == stage for e in p.seen.get(T.STAGE_SUCCEEDED, []))


async def test_pause_holds_the_next_stage_the_running_job_finishes_and_resume_goes_on(url: str) -> None:
    async with pipeline(url, extra_fleet=RBAC, also=("chat_command",)) as p:
        rid = await p.start("cce-a")
        await until(lambda: started(p, "cce-a", "precheck"), 60)
        out = await say(p, "pause kind:cce")
        assert out["outcome"] == "ok", out["reply"]
        # the precheck job already running is followed to its end …
        await until(lambda: succeeded(p, "cce-a", "precheck"), 60)

        # … and the upgrade stage it leads to is held, not started
        async def held() -> bool:
            return rid in (await control_state(p.store.kv))["holds"]

        assert await holds(held), "the upgrade stage was not held"
        assert await calls(p, "cce.upgrade") == 0, "the vendor got an upgrade call while paused"
        assert "upgrade" not in (await p.store.ledger.run(rid))["stages"]

        back = await say(p, "resume kind:cce")
        assert back["outcome"] == "ok" and "1 held stage(s) released" in back["reply"], back["reply"]
        done = await p.outcome("cce-a", 120)
        assert done.type == T.UPGRADE_SUCCEEDED
        assert await calls(p, "cce.upgrade") == 1


async def test_cancel_during_a_run_ends_it_before_the_upgrade_stage(url: str) -> None:
    async with pipeline(url, extra_fleet=RBAC, also=("chat_command",)) as p:
        rid = await p.start("cce-a")
        await until(lambda: started(p, "cce-a", "precheck"), 60)
        out = await say(p, f"cancel {rid}")
        assert out["outcome"] == "ok" and "cancel requested" in out["reply"], out["reply"]
        await until(lambda: bool(p.seen.get(T.UPGRADE_CANCELLED)), 120)
        run = await p.store.ledger.run(rid)
        assert run["state"] == "cancelled" and run["cancelled_by"] == "cli:tester"
        assert await calls(p, "cce.upgrade") == 0
        assert not p.seen.get(T.UPGRADE_FAILED), "a cancel is not a failure"


async def test_a_cancelled_autopilot_run_has_its_workflow_cancelled_at_the_vendor(url: str) -> None:
    async with pipeline(url, extra_fleet=RBAC, also=("chat_command",)) as p:
        rid = await p.start("ap-a")
        await until(lambda: started(p, "ap-a", "precheck"), 60)
        assert (await say(p, f"cancel {rid}"))["outcome"] == "ok"
        await until(lambda: bool(p.seen.get(T.UPGRADE_CANCELLED)), 120)

        async def cancelled() -> bool:
            run = await p.store.ledger.run(rid)
            return bool(run["stages"].get("workflow", {}).get("cancelled"))

        assert await holds(cancelled)
        assert await calls(p, "autopilot.workflow_cancel") == 1
        assert await calls(p, "autopilot.upgrade") == 0


async def test_cancel_after_the_upgrade_began_is_followed_and_reported(url: str) -> None:
    async with pipeline(url, extra_fleet=RBAC, also=("chat_command",)) as p:
        rid = await p.start("kafka-a")
        await until(lambda: started(p, "kafka-a", "upgrade"), 90)
        out = await say(p, f"cancel {rid}")
        assert out["outcome"] == "ok" and "follows it to its end" in out["reply"], out["reply"]
        done = await p.outcome("kafka-a", 120)
        assert done.type == T.UPGRADE_SUCCEEDED, "a vendor job that began is never abandoned"
        assert (await p.store.ledger.run(rid))["state"] == "succeeded"
