"""A manifest function deployed alone: the real functions-framework ASGI app, binary-mode CloudEvent."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import aiohttp
import httpx
import pytest
from functions_framework.aio import create_asgi_app

from events import T
from events.codec import to_binary_http
from shared.bus.sqlite import SqliteBus
from shared.runtime.manifest import DEFAULT_MANIFEST
from simulator.natsd import free_port
from tests.helpers import echo

ROOT = DEFAULT_MANIFEST.parent
TARGETS = str(ROOT / "shared" / "runtime" / "framework.py")


@pytest.fixture
async def app(tmp_path, monkeypatch):
    monkeypatch.setenv("UPSHIFT_BUS", f"sqlite:///{tmp_path}/ff.db")
    import shared.runtime.framework as targets

    # one bus per process: point this test's at its own file
    monkeypatch.setattr(targets, "_process", None)
    targets.__dict__.pop("echo", None)
    yield create_asgi_app(target="echo", source=TARGETS), tmp_path / "ff.db"
    if targets._process is not None:
        await targets._process.bus.close()
        await targets._process.store.close()


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
    monkeypatch.setattr(targets, "_process", None)
    parts = await targets._runtime_parts()
    try:
        ctx = targets._context("kafka_precheck", parts)
        assert ctx.fleet.target("kafka-a").cluster == 1
        assert ctx.clouds is not None
    finally:
        await parts.bus.close()
        await parts.store.close()


def test_the_function_contract_and_the_manifest_load_no_server_cli_or_terminal_ui():
    """What a deployed function imports besides its own module stays light (DESIGN §9)."""
    probe = (
        "import sys, json\nimport shared.runtime, shared.runtime.function, shared.runtime.manifest, shared.ops\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('functions_framework', 'aiohttp', 'starlette', 'click', 'rich', 'simulator'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


async def test_the_documented_functions_framework_command_serves_echo(tmp_path):
    """``functions-framework --source shared/runtime/framework.py --target echo --signature-type
    cloudevent`` (the command in the module docstring and serverless.yml), as a process."""
    port = free_port()
    db = tmp_path / "ff.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "UPSHIFT_BUS": f"sqlite:///{db}"}
    cmd = [
        *(sys.executable, "-m", "functions_framework"),  # the functions-framework script's module
        *("--source", "shared/runtime/framework.py", "--target", "echo"),
        *("--signature-type", "cloudevent", "--host", "127.0.0.1", "--port", str(port)),
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    incoming = echo("from the command line", runid="ffcli")
    headers, body = to_binary_http(incoming)
    try:
        async with aiohttp.ClientSession() as s:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else proc.returncode
                try:
                    async with s.post(f"http://127.0.0.1:{port}/", data=body, headers=headers) as r:
                        assert r.status == 200, await r.text()
                        break
                except aiohttp.ClientConnectionError:
                    assert time.monotonic() < deadline, "functions-framework did not come up"
                    await asyncio.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    bus = SqliteBus(str(db))
    await bus.start()
    rows = [
        json.loads(b) for (b,) in bus.conn.execute("SELECT body FROM bus_events WHERE type = ?", (T.ECHO,))
    ]
    await bus.close()
    assert [r["data"]["message"] for r in rows] == ["from the command line"]
    assert rows[0]["id"] == incoming.follow(T.ECHO, incoming.data).id
