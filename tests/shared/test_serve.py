"""`upshift serve`: POST /events ingress, /healthz, and the echo function end to end."""

from __future__ import annotations

import io
import json
import signal
import subprocess

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from events import T
from events.codec import to_binary_http, to_structured_http
from shared.bus import open_bus
from shared.domain.fleet import parse_fleet
from shared.runtime.host import Runtime
from shared.runtime.manifest import load_manifest
from shared.runtime.server import MAX_BODY, build_app
from shared.store import open_store
from simulator.natsd import free_port
from tests.helpers import echo, eventually, start_serve, wait_healthy

#: POST /events needs a bearer token (tests/shared/test_ingress_auth.py): these tests send this one.
TOKEN_ENV = "UPSHIFT_TEST_SERVE_TOKEN"
TOKEN = "serve-test-token-not-a-secret"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
FLEET = f"""
clouds:
  huawei: {{region: ap-southeast-1, project_id: p1}}
targets:
  - {{name: cce-1, kind: cce, cluster_id: c-1}}
auth:
  tokens: [{{name: tests, token_env: {TOKEN_ENV}, role: operator, publish: [echo]}}]
"""


@pytest.fixture
async def served(tmp_path, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    url = f"sqlite:///{tmp_path}/u.db"
    runtime = Runtime(load_manifest(), open_bus(url), open_store(url), fleet=parse_fleet(FLEET))
    await runtime.start()
    client = TestClient(TestServer(build_app(runtime)))
    await client.start_server()
    yield client, runtime
    await client.close()
    await runtime.stop()


async def _echo_answers(runtime) -> list[str]:
    rows = runtime.bus.conn.execute("SELECT body FROM bus_events WHERE type = ?", (T.ECHO,)).fetchall()
    return [json.loads(b)["data"]["message"] for (b,) in rows if not json.loads(b)["data"]["reply"]]


@pytest.mark.parametrize("mode", [to_binary_http, to_structured_http])
async def test_echo_round_trip_through_post_events(served, mode):
    client, runtime = served
    headers, body = mode(echo("ping"))
    r = await client.post("/events", data=body, headers={**headers, **BEARER})
    assert r.status == 202
    assert (await r.json())["duplicate"] is False
    await runtime.wait_idle()
    assert await _echo_answers(runtime) == ["ping"]


async def test_duplicate_post_is_accepted_but_not_republished(served):
    client, runtime = served
    headers, body = to_binary_http(echo("once"))
    headers |= BEARER
    assert (await (await client.post("/events", data=body, headers=headers)).json())["duplicate"] is False
    assert (await (await client.post("/events", data=body, headers=headers)).json())["duplicate"] is True
    await runtime.wait_idle()
    assert await _echo_answers(runtime) == ["once"]


@pytest.mark.parametrize(
    ("body", "headers", "field"),
    [
        (b"{oops", {"content-type": "application/cloudevents+json"}, None),
        (
            json.dumps({"specversion": "1.0", "source": "/x", "id": "1", "data": {}}).encode(),
            {"content-type": "application/cloudevents+json"},
            "type",
        ),
        (
            json.dumps(
                {"specversion": "1.0", "type": "dev.upshift.unknown", "source": "/x", "id": "1", "data": {}}
            ).encode(),
            {"content-type": "application/cloudevents+json"},
            "type",
        ),
        (
            json.dumps(
                {"specversion": "1.0", "type": T.ECHO, "source": "/x", "id": "1", "data": {"message": ""}}
            ).encode(),
            {"content-type": "application/cloudevents+json"},
            "data.message",
        ),
        (
            b'{"message": "m"}',
            {"ce-specversion": "1.0", "ce-type": T.ECHO, "ce-id": "1", "content-type": "application/json"},
            "source",
        ),
        # the edge is strict: an unknown data field or attribute is a typo to report, not to drop
        (
            json.dumps(
                {
                    "specversion": "1.0",
                    "type": T.ECHO,
                    "source": "/x",
                    "id": "1",
                    "data": {"message": "m", "mesage": "m"},
                }
            ).encode(),
            {"content-type": "application/cloudevents+json"},
            "data.mesage",
        ),
        (
            b'{"message": "m"}',
            {
                "ce-specversion": "1.0",
                "ce-type": T.ECHO,
                "ce-id": "1",
                "ce-source": "/x",
                "ce-run-ld": "r",  # not a CloudEvents attribute name (a well-formed one is carried)
                "content-type": "application/json",
            },
            "run-ld",
        ),
    ],
)
async def test_bad_input_is_400_naming_the_field_and_publishes_nothing(served, body, headers, field):
    client, runtime = served
    r = await client.post("/events", data=body, headers={**headers, **BEARER})
    assert r.status == 400
    payload = await r.json()
    assert payload.get("field") == field
    assert "Traceback" not in json.dumps(payload)
    # (the runtime's own schedule ticks are not input: count everything else)
    assert (
        runtime.bus.conn.execute(
            "SELECT COUNT(*) FROM bus_events WHERE type != ?", (T.CLOCK_TICK,)
        ).fetchone()[0]
        == 0
    )


async def test_a_body_over_the_limit_is_413_and_publishes_nothing(served):
    client, runtime = served
    headers, _ = to_binary_http(echo("big"))
    r = await client.post("/events", data=io.BytesIO(b"x" * (MAX_BODY + 1)), headers={**headers, **BEARER})
    assert r.status == 413
    assert (
        runtime.bus.conn.execute(
            "SELECT COUNT(*) FROM bus_events WHERE type != ?", (T.CLOCK_TICK,)
        ).fetchone()[0]
        == 0
    )


async def test_healthz(served):
    client, _ = served
    r = await client.get("/healthz")
    assert r.status == 200
    assert {"echo", "release_intake", "notify"} <= set((await r.json())["functions"])


async def test_upshift_serve_as_a_process_survives_kill_9(tmp_path):
    """The real command: publish, kill -9 before it can run, restart, the echo still happens."""
    db = tmp_path / "u.db"
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    port = free_port()

    def serve() -> subprocess.Popen[bytes]:
        return start_serve(f"sqlite:///{db}?lease=1", port, "--fleet", str(fleet), env={TOKEN_ENV: TOKEN})

    proc = serve()
    try:
        await wait_healthy(port, proc)
        headers, body = to_binary_http(echo("across-restart"))
        async with aiohttp.ClientSession() as s:
            async with s.post(
                f"http://127.0.0.1:{port}/events", data=body, headers={**headers, **BEARER}
            ) as r:
                assert r.status == 202
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    proc = serve()
    try:
        await wait_healthy(port, proc)
        bus = open_bus(f"sqlite:///{db}")
        await bus.start()

        def answered():
            rows = bus.conn.execute("SELECT body FROM bus_events WHERE type = ?", (T.ECHO,)).fetchall()
            return any(not json.loads(b)["data"]["reply"] for (b,) in rows)

        await eventually(answered, timeout=20)
        await bus.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
