"""A harness for the chat edges: `upshift serve`'s real aiohttp app over a real Runtime (the
manifest's own entries, only the chat functions bound), a FakeClock, a SQLite or NATS bus, and a
durable recorder of every ``chat.command`` that lands on the bus.

``commands()`` is exact on both buses: it publishes a barrier ``chat.command`` and waits for the
recorder (one at a time, in stream order) to reach it, so everything published before — a
refused request's event, had one slipped through — has been seen by then.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from events import Event, T
from events.catalog import ChatCommand
from shared.bus import Subscription, open_bus
from shared.clock import FakeClock
from shared.domain.fleet import parse_fleet
from shared.runtime.host import Runtime
from shared.runtime.manifest import load_manifest
from shared.runtime.server import build_app
from shared.store import open_store
from tests.helpers import eventually

__all__ = ["EDGES", "NOW", "ChatServer"]

NOW = datetime(2024, 8, 1, 10, 0, tzinfo=UTC)
EDGES = ("chat_slack", "chat_slack_interactive", "chat_mattermost")
_BARRIER = "barrier-user"


class ChatServer:
    def __init__(self, url: str, fleet_yaml: str) -> None:
        self.clock = FakeClock(NOW)
        self.recorded: list[Event[Any]] = []
        bus = open_bus(url)
        bus.subscribe(Subscription("record_chat_command", T.CHAT_COMMAND, {}, self._record, concurrency=1))
        self.runtime = Runtime(
            load_manifest(), bus, open_store(url), clock=self.clock, fleet=parse_fleet(fleet_yaml), only=EDGES
        )
        self.client: TestClient | None = None
        self._barriers = itertools.count()

    async def _record(self, event: Event[Any]) -> None:
        if all(e.id != event.id for e in self.recorded):  # at-least-once: a redelivery is not new
            self.recorded.append(event)

    async def __aenter__(self) -> ChatServer:
        await self.runtime.start()
        self.client = TestClient(TestServer(build_app(self.runtime)))
        await self.client.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.client is not None
        await self.client.close()
        await self.runtime.stop()

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        assert self.client is not None
        r = await self.client.post(
            path, data=body, headers={"Content-Type": "application/x-www-form-urlencoded", **headers}
        )
        payload = await r.json()
        assert "Traceback" not in str(payload)
        return r.status, payload

    async def commands(self) -> list[Event[Any]]:
        """Every chat.command published so far (barriers left out)."""
        barrier = Event(
            type=T.CHAT_COMMAND,
            id=f"barrier-{next(self._barriers)}",
            data=ChatCommand(platform="test", user=_BARRIER, text="help"),
        )
        await self.runtime.bus.publish(barrier)
        await eventually(lambda: any(e.id == barrier.id for e in self.recorded), timeout=30)
        return [e for e in self.recorded if e.data.user != _BARRIER]
