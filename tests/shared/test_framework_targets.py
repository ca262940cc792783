"""A manifest function deployed alone: the real functions-framework ASGI app, binary-mode CloudEvent."""

from __future__ import annotations

import json

import httpx
import pytest
from functions_framework.aio import create_asgi_app

from events import T
from events.codec import to_binary_http
from shared.bus.sqlite import SqliteBus
from shared.runtime.manifest import DEFAULT_MANIFEST
from tests.helpers import echo

TARGETS = str(DEFAULT_MANIFEST.parent / "shared" / "runtime" / "framework.py")


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("UPSHIFT_BUS", f"sqlite:///{tmp_path}/ff.db")
    import shared.runtime.framework as targets

    targets._state.clear()  # one bus per process: point this test's at its own file
    targets.__dict__.pop("echo", None)
    yield create_asgi_app(target="echo", source=TARGETS), tmp_path / "ff.db"
    targets._state.clear()


async def _post(app, headers, body):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ff") as client:
        return await client.post("/", headers=headers, content=body)


async def test_binary_cloudevent_runs_echo_and_publishes_its_answer(app):
    asgi, db = app
    incoming = echo("from functions-framework", runid="ffrun")
    headers, body = to_binary_http(incoming)
    r = await _post(asgi, headers, body)
    assert r.status_code == 200, r.text
    bus = SqliteBus(str(db))
    await bus.start()
    rows = [
        json.loads(b) for (b,) in bus.conn.execute("SELECT body FROM bus_events WHERE type = ?", (T.ECHO,))
    ]
    await bus.close()
    assert len(rows) == 1
    answer = rows[0]
    assert answer["data"] == {"message": "from functions-framework", "reply": False}
    assert answer["runid"] == "ffrun"
    assert answer["id"] == incoming.follow(T.ECHO, incoming.data).id, "deterministic consequence id"


async def test_bad_cloudevent_is_a_400_without_traceback(app):
    asgi, _ = app
    headers = {
        "ce-specversion": "1.0",
        "ce-type": T.ECHO,
        "ce-source": "/x",
        "ce-id": "1",
        "content-type": "application/json",
    }
    r = await _post(asgi, headers, b'{"message": ""}')
    assert r.status_code == 400
    assert "data.message" in r.text and "Traceback" not in r.text


async def test_a_deployed_function_gets_the_fleet_and_cloud_clients(tmp_path, monkeypatch):
    """Under functions-framework the context is built from env vars, fleet included (stage functions need it)."""
    import shared.runtime.framework as targets

    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        "clouds: {ncloud: {region: KR}}\n"
        "targets: [{name: kafka-a, kind: ncloud-kafka, cluster: 1, config_group: 2}]\n"
    )
    monkeypatch.setenv("UPSHIFT_BUS", f"sqlite:///{tmp_path}/ff.db")
    monkeypatch.setenv("UPSHIFT_FLEET", str(fleet))
    targets._state.clear()
    try:
        _, store = await targets._runtime_parts()
        ctx = targets._context("kafka_precheck", store)
        assert ctx.fleet.target("kafka-a").cluster == 1
        assert ctx.clouds is not None
    finally:
        await targets._state["bus"].close()
        await targets._state["store"].close()
        targets._state.clear()
