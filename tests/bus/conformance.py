"""The Bus contract, once, for every backend.

A backend's test module subclasses :class:`BusConformance` and provides the ``bus_url`` fixture:
a function ``(lease: float) -> str`` giving a URL of a fresh, isolated bus for this test
(same value on every call within the test, so several ``Bus`` instances — or processes —
share it).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from events import T
from events.catalog import Echo
from shared.bus import Bus, Delayed, Subscription, open_bus
from shared.errors import RetryLater
from tests.helpers import echo, eventually, stage_requested

ROOT = Path(__file__).resolve().parents[2]


class BusConformance:
    @pytest.fixture
    def bus_url(self):  # pragma: no cover - every backend overrides it
        raise NotImplementedError

    @pytest.fixture
    async def buses(self, bus_url):
        """``await buses(lease=…)`` → a started Bus on the test's backing store; all closed at teardown."""
        made: list[Bus] = []
        tasks: list[asyncio.Task] = []

        async def make(lease: float = 30.0, run: bool = True) -> Bus:
            bus = open_bus(bus_url(lease))
            made.append(bus)
            await bus.start()
            return bus

        def runner(bus: Bus) -> asyncio.Task:
            t = asyncio.create_task(bus.run())
            tasks.append(t)
            return t

        make.run = runner  # type: ignore[attr-defined]
        yield make
        for bus in made:
            await bus.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- routing -------------------------------------------------------------------------------

    async def test_routes_by_type_and_attribute(self, buses):
        bus = await buses()
        got: dict[str, list[str]] = {"echo": [], "cce": [], "starrocks": []}

        def collect(name):
            async def handler(event):
                got[name].append(event.id)
                return []

            return handler

        bus.subscribe(Subscription("all-echo", T.ECHO, {}, collect("echo")))
        bus.subscribe(
            Subscription(
                "cce-upgrade", T.STAGE_REQUESTED, {"kind": "cce", "stage": "upgrade"}, collect("cce")
            )
        )
        bus.subscribe(
            Subscription("sr-upgrade", T.STAGE_REQUESTED, {"kind": "starrocks"}, collect("starrocks"))
        )
        await bus.start()
        buses.run(bus)
        e1, e2, e3 = (
            echo(),
            stage_requested(kind="cce", stage="upgrade"),
            stage_requested(kind="cce", stage="precheck"),
        )
        for e in (e1, e2, e3):
            assert await bus.publish(e)
        await eventually(lambda: got["echo"] and got["cce"])
        await asyncio.sleep(0.3)  # time for a misrouted delivery to show up
        assert got == {"echo": [e1.id], "cce": [e2.id], "starrocks": []}

    async def test_filter_on_other_attributes(self, buses):
        bus = await buses()
        got: list[str] = []

        async def handler(event):
            got.append(event.data.message)
            return []

        bus.subscribe(Subscription("only-run-a", T.ECHO, {"runid": "a"}, handler))
        await bus.start()
        buses.run(bus)
        await bus.publish(echo("for-a", runid="a"))
        await bus.publish(echo("for-b", runid="b"))
        await eventually(lambda: got)
        await asyncio.sleep(0.3)
        assert got == ["for-a"]

    async def test_where_matches_every_item_on_data_fields_too(self, buses):
        """``where`` items name envelope attributes or data fields (``target`` of a stage request
        is both); an event is delivered only when every item matches, whoever published it."""
        bus, pub = await buses(), await buses()
        cce: list[str] = []
        upgrade_t2: list[str] = []

        def collect(into):
            async def handler(event):
                into.append(event.id)
                return []

            return handler

        bus.subscribe(Subscription("cce", T.STAGE_REQUESTED, {"kind": "cce"}, collect(cce)))
        bus.subscribe(
            Subscription("t2", T.STAGE_REQUESTED, {"stage": "upgrade", "target": "t2"}, collect(upgrade_t2))
        )
        await bus.start()
        buses.run(bus)
        sent = [
            stage_requested("cce", "upgrade", "t1"),
            stage_requested("autopilot", "upgrade", "t2"),
            stage_requested("cce", "precheck", "t2"),
            stage_requested("cce", "upgrade", "t2"),
        ]
        for e in sent:
            assert await pub.publish(e)
        await eventually(lambda: len(cce) == 3 and len(upgrade_t2) == 2)
        await asyncio.sleep(0.3)  # time for a misrouted delivery to show up
        assert sorted(cce) == sorted([sent[0].id, sent[2].id, sent[3].id])
        assert sorted(upgrade_t2) == sorted([sent[1].id, sent[3].id])
        assert await pub.pending() == 0

    # -- dedupe --------------------------------------------------------------------------------

    async def test_republished_id_is_dropped(self, buses):
        bus = await buses()
        calls = Counter()

        async def handler(event):
            calls[event.id] += 1
            return []

        bus.subscribe(Subscription("dedupe", T.ECHO, {}, handler))
        await bus.start()
        e = echo("once")
        assert await bus.publish(e) is True
        assert await bus.publish(e) is False
        assert await bus.publish(e, delay=0.5) is False  # one id space, delayed or not
        later = echo("later")
        assert await bus.publish(later, delay=0.5) is True
        assert await bus.publish(later, delay=0.5) is False
        assert await bus.publish(later) is False
        buses.run(bus)
        await eventually(lambda: calls[e.id] == 1 and calls[later.id] == 1)
        await asyncio.sleep(1.0)  # past the delay: a delayed copy would have arrived by now
        assert calls == {e.id: 1, later.id: 1}

    # -- retries -------------------------------------------------------------------------------

    async def test_handler_that_raises_is_redelivered_until_it_succeeds(self, buses):
        bus = await buses()
        attempts: list[float] = []

        async def flaky(event):
            attempts.append(time.monotonic())
            if len(attempts) < 3:
                raise RuntimeError("vendor hiccup")
            return []

        bus.subscribe(
            Subscription("flaky", T.ECHO, {}, flaky, max_attempts=5, backoff_base=0.05, max_backoff=0.2)
        )
        await bus.start()
        buses.run(bus)
        await bus.publish(echo())
        await eventually(lambda: len(attempts) == 3)
        await asyncio.sleep(0.5)
        assert len(attempts) == 3, "acked after the success: no further deliveries"
        assert await bus.dead_letters() == []

    async def test_retry_later_sets_the_delay(self, buses):
        """A raise backs off; ``RetryLater`` sets the next delay itself; the attempt that then
        succeeds has its outputs delivered, and nothing is dead-lettered."""
        bus = await buses()
        seen: list[float] = []
        done: list[str] = []

        async def later(event):
            seen.append(time.monotonic())
            if len(seen) == 1:
                raise RuntimeError("boom")
            if len(seen) == 2:
                raise RetryLater(0.8, "throttled")
            return [event.follow(T.ECHO, Echo(message="done", reply=False), target="out")]

        async def sink(event):
            done.append(event.data.message)
            return []

        bus.subscribe(
            Subscription("later", T.ECHO, {"target": "in"}, later, max_attempts=5, backoff_base=0.05)
        )
        bus.subscribe(Subscription("sink", T.ECHO, {"target": "out"}, sink))
        await bus.start()
        buses.run(bus)
        await bus.publish(echo(target="in"))
        await eventually(lambda: done, timeout=10)
        assert len(seen) == 3
        assert seen[2] - seen[1] >= 0.75  # RetryLater's delay, not an immediate redelivery
        assert done == ["done"]
        assert await bus.dead_letters() == []

    async def test_dead_letter_after_max_attempts(self, buses):
        bus = await buses()
        calls = Counter()

        async def broken(event):
            calls[event.id] += 1
            raise ValueError("permanently broken")

        bus.subscribe(
            Subscription("broken", T.ECHO, {}, broken, max_attempts=3, backoff_base=0.02, max_backoff=0.05)
        )
        await bus.start()
        buses.run(bus)
        e = echo("doomed")
        await bus.publish(e)

        async def dead():
            return await bus.dead_letters()

        deadline = time.monotonic() + 15
        letters = []
        while time.monotonic() < deadline and not letters:
            letters = await dead()
            await asyncio.sleep(0.05)
        assert len(letters) == 1
        assert letters[0].event.id == e.id
        assert (letters[0].consumer, letters[0].attempts) == ("broken", 3)
        assert "permanently broken" in letters[0].error
        await asyncio.sleep(0.5)
        assert calls[e.id] == 3  # dead: never delivered again
        assert await bus.pending() == 0

    async def test_a_dead_letter_is_announced_with_its_run(self, buses):
        """DESIGN §6.8: the bus publishes ``event.deadlettered`` with the dead letter, carrying the
        dead event's run, so the run is ended instead of left open."""
        bus = await buses()
        notices: list = []

        async def broken(event):
            raise ValueError("vendor keeps failing")

        async def heard(event):
            notices.append(event)
            return []

        bus.subscribe(
            Subscription(
                "stage_fn", T.STAGE_REQUESTED, {}, broken, max_attempts=2, backoff_base=0.02, max_backoff=0.05
            )
        )
        bus.subscribe(Subscription("ender", T.EVENT_DEAD_LETTERED, {}, heard))
        await bus.start()
        buses.run(bus)
        e = stage_requested(runid="r1")
        await bus.publish(e)
        await eventually(lambda: len(notices) >= 1, timeout=20)
        await asyncio.sleep(0.3)
        assert len(notices) == 1
        n = notices[0]
        assert (n.runid, n.target, n.kind, n.stage) == (e.runid, e.data.target, e.data.kind, e.data.stage)
        assert (n.data.consumer, n.data.event_id, n.data.attempts) == ("stage_fn", e.id, 2)
        assert n.data.to_version == e.data.to_version and "vendor keeps failing" in n.data.error

    # -- delays --------------------------------------------------------------------------------

    async def test_delayed_publish_is_not_delivered_early(self, buses):
        bus = await buses()
        arrived: dict[str, float] = {}

        async def handler(event):
            arrived[event.data.message] = time.monotonic()
            return []

        bus.subscribe(Subscription("delays", T.ECHO, {}, handler))
        await bus.start()
        buses.run(bus)
        t0 = time.monotonic()
        await bus.publish(echo("late"), delay=1.0)
        await bus.publish(echo("now"))
        await eventually(lambda: "late" in arrived, timeout=10)
        assert arrived["late"] - t0 >= 0.95
        assert arrived["now"] < arrived["late"]
        # generous: the machine is shared; we only check it is not lost or wildly late
        assert arrived["late"] - t0 < 6.0

    async def test_delayed_emission_from_a_handler(self, buses):
        bus = await buses()
        arrived: dict[str, float] = {}

        async def first(event):
            arrived["first"] = time.monotonic()
            return [Delayed(event.follow(T.ECHO, Echo(message="poll", reply=False), target="second"), 0.8)]

        async def second(event):
            arrived["second"] = time.monotonic()
            return []

        bus.subscribe(Subscription("first", T.ECHO, {"target": "first"}, first))
        bus.subscribe(Subscription("second", T.ECHO, {"target": "second"}, second))
        await bus.start()
        buses.run(bus)
        await bus.publish(echo(target="first"))
        await eventually(lambda: "second" in arrived, timeout=10)
        assert arrived["second"] - arrived["first"] >= 0.75

    async def test_a_delayed_emission_does_not_use_an_attempt(self, buses):
        """A handler re-arming itself with ``Delayed`` (a poll) succeeded: with ``max_attempts=1``
        a delayed event that consumed a delivery attempt would be dead-lettered."""
        bus = await buses()
        polls: list[float] = []

        async def poller(event):
            polls.append(time.monotonic())
            if len(polls) < 3:
                nxt = event.follow(T.ECHO, Echo(message=f"poll-{len(polls)}"), id_parts=(len(polls),))
                return [Delayed(nxt, 0.3)]
            return None

        bus.subscribe(Subscription("poller", T.ECHO, {}, poller, max_attempts=1))
        await bus.start()
        buses.run(bus)
        await bus.publish(echo("poll-0"))
        await eventually(lambda: len(polls) == 3, timeout=10)
        gaps = [b - a for a, b in itertools.pairwise(polls)]
        assert all(g >= 0.25 for g in gaps), gaps
        assert await bus.dead_letters() == []

    # -- concurrency ---------------------------------------------------------------------------

    async def test_concurrency_limit_and_close_waits_for_handlers(self, buses):
        """At most ``concurrency`` deliveries of a consumer run at once; ``close`` lets the running
        ones finish and settle, so exactly the unfinished rest stays pending."""
        bus = await buses()
        running = peak = 0
        finished: list[str] = []

        async def slow(event):
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.3)
            running -= 1
            finished.append(event.id)
            return []

        bus.subscribe(Subscription("slow", T.ECHO, {}, slow, concurrency=3))
        await bus.start()
        buses.run(bus)
        for i in range(9):
            await bus.publish(echo(f"m{i}"))
        await eventually(lambda: len(finished) >= 4, timeout=10)
        await bus.close()  # waits for the in-flight ones, which then settle
        assert running == 0
        assert peak == 3
        checker = await buses()
        assert await checker.pending() == 9 - len(finished)

    # -- outbox --------------------------------------------------------------------------------

    async def test_emitted_events_are_delivered_downstream(self, buses):
        bus = await buses()
        downstream: list[str] = []

        async def upstream(event):
            return [
                event.follow(T.ECHO, Echo(message=f"child-{i}", reply=False), target="down", id_parts=(i,))
                for i in range(5)
            ]

        async def down(event):
            downstream.append(event.data.message)
            return []

        bus.subscribe(Subscription("up", T.ECHO, {"target": "up"}, upstream))
        bus.subscribe(Subscription("down", T.ECHO, {"target": "down"}, down))
        await bus.start()
        buses.run(bus)
        await bus.publish(echo(target="up", runid="r1"))
        await eventually(lambda: len(downstream) == 5)
        await asyncio.sleep(0.3)
        assert sorted(downstream) == [f"child-{i}" for i in range(5)]

    async def test_failed_handler_publishes_nothing(self, buses, bus_url, tmp_path):
        """An attempt that fails after its handler *returned* outputs publishes none of them: the
        worker (a child process) returns ``lost-*`` events and dies at ``outbox.before_commit``,
        between the return and the commit; the redelivered attempt returns ``ok``. Downstream sees
        only ``ok`` — a bus that published a handler's outputs before settling would leak
        ``lost-*``. (A handler that raises returns nothing for the bus to leak; dying after the
        return is the failure that can.)"""
        lease = 1.5
        marker = tmp_path / "died-at"
        bus = await buses(lease=lease)
        downstream: list[str] = []

        async def down(event):
            downstream.append(event.data.message)
            return []

        bus.subscribe(Subscription("down", T.ECHO, {"target": "in", "runid": "kill"}, down))
        await bus.start()  # "down" exists before the child could publish anything
        crash = {"UPSHIFT_CRASH_AT": "outbox.before_commit", "UPSHIFT_CRASH_FILE": str(marker)}
        child = self._spawn(bus_url(lease), marker, "lose", 3, env=crash)
        try:
            await eventually(Path(f"{marker}.ready").exists, timeout=30)
            await bus.publish(echo("go", target="in"))
            await eventually(lambda: child.poll() is not None, timeout=30)
        finally:
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
            child.wait()
        assert marker.read_text() == "outbox.before_commit", "the child died somewhere else"

        async def worker(event):
            if event.runid == "kill":
                return []
            return [event.follow(T.ECHO, Echo(message="ok", reply=False), runid="kill", id_parts=("ok",))]

        bus.subscribe(Subscription("worker", T.ECHO, {"target": "in"}, worker, max_attempts=50))
        await bus.start()
        buses.run(bus)
        await eventually(lambda: downstream, timeout=30)
        await asyncio.sleep(0.5)  # time for a leaked output to show up
        assert downstream == ["ok"], downstream

    # -- crashes -------------------------------------------------------------------------------

    def _spawn(
        self, url: str, marker: Path, mode: str, n: int = 0, env: dict[str, str] | None = None
    ) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.bus._child", url, "worker", str(marker), mode, str(n)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def test_event_comes_back_when_the_consumer_process_dies_before_ack(self, buses, bus_url, tmp_path):
        lease = 1.5
        marker = tmp_path / "took-it"
        child = self._spawn(bus_url(lease), marker, "hang")
        try:
            bus = await buses(lease=lease)
            # the child registers the durable consumer; publish only once it exists
            await eventually(Path(f"{marker}.ready").exists, timeout=30)
            e = echo("survives", target="in")
            await bus.publish(e)
            await eventually(marker.exists, timeout=20)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        got: list[str] = []

        async def handler(event):
            got.append(event.id)
            return []

        bus.subscribe(Subscription("worker", T.ECHO, {"target": "in"}, handler))
        await bus.start()
        buses.run(bus)
        await eventually(lambda: got, timeout=20)
        assert got == [e.id]

    @pytest.mark.parametrize("kill_after", [0.0, 0.05, 0.3])
    async def test_kill_around_the_ack_loses_nothing_and_duplicates_nothing(
        self, buses, bus_url, tmp_path, kill_after
    ):
        lease = 1.5
        marker = tmp_path / "handled"
        n = 40
        child = self._spawn(bus_url(lease), marker, "emit", n)
        bus = await buses(lease=lease)
        downstream = Counter()

        async def down(event):
            downstream[event.data.message] += 1
            return []

        bus.subscribe(Subscription("down", T.ECHO, {"target": "in", "runid": "kill"}, down))
        await bus.start()  # registers "down" now: it must exist before the child's outputs appear
        try:
            await eventually(Path(f"{marker}.ready").exists, timeout=30)
            await bus.publish(echo("go", target="in"))
            await eventually(marker.exists, timeout=20)
            await asyncio.sleep(kill_after)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()

        # take over the dead worker's consumer in this process, same handler logic
        async def worker(event):
            if event.runid == "kill":
                return []
            return [
                event.follow(T.ECHO, Echo(message=f"out-{i}", reply=False), runid="kill", id_parts=(i,))
                for i in range(n)
            ]

        bus.subscribe(Subscription("worker", T.ECHO, {"target": "in"}, worker, max_attempts=50))
        await bus.start()
        buses.run(bus)
        await eventually(lambda: len(downstream) == n, timeout=30)
        await asyncio.sleep(0.5)
        assert set(downstream) == {f"out-{i}" for i in range(n)}
        assert max(downstream.values()) == 1, "an output was delivered twice"
