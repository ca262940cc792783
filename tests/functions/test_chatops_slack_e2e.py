"""Slack end to end, in-process: a signed slash command through `upshift serve`'s app is executed
by chat_command once — Slack's retries included — and its result reaches the response_url once.

The real edges, chat_command and chat_reply run as the manifest wires them on SQLite and NATS; the
response_url is a loopback aiohttp receiver the fleet allow-lists (``chat.slack.response_hosts``).
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from events import T
from shared.bus import Subscription, open_bus
from shared.clock import FakeClock
from shared.domain.fleet import parse_fleet
from shared.engine.control import control_state
from shared.runtime.host import Runtime
from shared.runtime.manifest import load_manifest
from shared.runtime.server import build_app
from shared.store import open_store
from tests.functions._chat import NOW
from tests.functions._planning import bus_url
from tests.functions.test_chat_slack import SECRET, SECRET_ENV, SLASH, TEAM, signed, slash
from tests.helpers import eventually

FUNCTIONS = ("chat_slack", "chat_slack_interactive", "chat_command", "chat_reply")


@pytest.fixture(params=["sqlite", "nats"])
def backend(request: pytest.FixtureRequest, tmp_path) -> str:
    return bus_url(request, tmp_path)


class Receiver:
    """Stands in for Slack's response_url: records every POST."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        app = web.Application()
        app.router.add_post("/commands/{rest:.*}", self._post)
        self.server = TestServer(app, host="127.0.0.1")

    async def _post(self, request: web.Request) -> web.Response:
        self.posts.append(await request.json())
        return web.json_response({"ok": True})

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.port}"


async def test_a_slash_command_and_its_retries_execute_once(backend, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    receiver = Receiver()
    await receiver.server.start_server()
    fleet = parse_fleet(f"""
clouds:
  huawei: {{region: ap-southeast-1, project_id: p1}}
targets:
  - {{name: cce-1, kind: cce, cluster_id: c-1}}
chat:
  slack: {{signing_secret_env: {SECRET_ENV}, teams: [{TEAM}], response_hosts: ["{receiver.host}"]}}
rbac:
  - {{name: ops, role: operator, slack: ["{TEAM}/U0ALICE"]}}
""")
    commands: list[str] = []
    bus = open_bus(backend)

    async def record(event: Any) -> None:
        commands.append(event.id)

    bus.subscribe(Subscription("record_cmd", T.CHAT_COMMAND, {}, record, concurrency=1))
    runtime = Runtime(
        load_manifest(), bus, open_store(backend), clock=FakeClock(NOW), fleet=fleet, only=FUNCTIONS
    )
    await runtime.start()
    client = TestClient(TestServer(build_app(runtime)))
    await client.start_server()
    try:
        url = f"http://{receiver.host}/commands/{TEAM}/1/secret"
        body = slash("pause cce-1", response_url=url)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        first = await client.post(SLASH, data=body, headers={**headers, **signed(body)})
        assert first.status == 200 and "Working on it" in (await first.json())["text"]
        # Slack retries (a fresh signature, then the same one) before it saw our answer
        retry = await client.post(
            SLASH,
            data=body,
            headers={**headers, **signed(body, ts=int(NOW.timestamp()) + 1), "X-Slack-Retry-Num": "1"},
        )
        assert retry.status == 200
        again = await client.post(
            SLASH, data=body, headers={**headers, **signed(body), "X-Slack-Retry-Num": "2"}
        )
        assert again.status == 200
        await eventually(lambda: len(receiver.posts) >= 1, timeout=30)
        entries = await runtime.store.audit.entries()
        assert len(entries) == 1, "one command, however often Slack sent it"
        [entry] = entries
        assert entry["command"] == "pause" and entry["outcome"] == "ok" and entry["via"] == "slack"
        assert entry["team"] == TEAM and entry["user"] == "U0ALICE" and entry["trigger_id"]
        assert "cce-1" in (await control_state(runtime.store.kv))["pauses"]
        await runtime.wait_idle()
        assert len(set(commands)) == 1
        assert len(receiver.posts) == 1 and receiver.posts[0]["text"].startswith("paused cce-1")
        assert receiver.posts[0]["response_type"] == "ephemeral"
    finally:
        await client.close()
        await runtime.stop()
        await receiver.server.close()
