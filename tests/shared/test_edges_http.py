"""The HTTP edges (``POST /events``, ``POST /hooks/release``) as a hostile client would try them.

Issue 10, items 1-10: every answer is a 4xx naming the field (never a 500, never a hang), nothing
is published on any refusal, and the server stays healthy. Real aiohttp servers on loopback, a
real SQLite bus; the malformed and slow requests go over a raw socket, since a well-behaved client
cannot send them.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import signal

import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from events import T
from functions.release_intake import sign
from shared.bus import open_bus
from shared.domain.fleet import parse_fleet
from shared.limits import LIMITS, Limits
from shared.ops.cli import cli
from shared.runtime.host import Runtime
from shared.runtime.manifest import load_manifest
from shared.runtime.server import build_app
from shared.store import open_store
from simulator.natsd import free_port
from tests.helpers import eventually, start_serve, wait_healthy

SECRET = "gh-edge-secret-do-not-leak"
SECRET_ENV = "UPSHIFT_TEST_EDGE_GH_SECRET"
TOKEN = "edge-token-do-not-leak"
TOKEN_ENV = "UPSHIFT_TEST_EDGE_TOKEN"
FLEET = f"""
clouds:
  huawei: {{region: ap-southeast-1, project_id: p1}}
targets:
  - {{name: sr-1, kind: starrocks, instance_id: 1f2e3d4c5b6a47389a0b1c2d3e4f5a6bin07, starrocks_instance_id: 5c2f9e0d8b7a4c1e9f3d2a1b0c9e8d7fin17}}
feeds:
  - {{url: "https://github.com/StarRocks/starrocks/releases.atom", product: starrocks}}
hooks: {{github_secret_env: {SECRET_ENV}}}
auth:
  tokens:
    - {{name: edge, token_env: {TOKEN_ENV}, role: operator, publish: [echo, version.released]}}
"""
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def _start(tmp_path, limits: Limits = LIMITS):
    url = f"sqlite:///{tmp_path}/u.db"
    runtime = Runtime(load_manifest(), open_bus(url), open_store(url), fleet=parse_fleet(FLEET))
    await runtime.start()
    client = TestClient(TestServer(build_app(runtime, limits=limits)))
    await client.start_server()
    return client, runtime


@pytest.fixture
async def served(tmp_path, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    client, runtime = await _start(tmp_path)
    yield client, runtime
    await client.close()
    await runtime.stop()


@pytest.fixture
async def impatient(tmp_path, monkeypatch):
    """A server whose body and idle timeouts are short, so a slow client is dropped quickly."""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    client, runtime = await _start(tmp_path, Limits(body_read_timeout_s=0.5, idle_timeout_s=0.5))
    yield client, runtime
    await client.close()
    await runtime.stop()


def published(runtime) -> int:
    """Rows on the bus that are not the runtime's own clock ticks."""
    return runtime.bus.conn.execute(
        "SELECT COUNT(*) FROM bus_events WHERE type != ?", (T.CLOCK_TICK,)
    ).fetchone()[0]


def structured(**attrs) -> dict:
    return {
        "specversion": "1.0",
        "type": T.ECHO,
        "source": "/x",
        "id": "e1",
        "data": {"message": "m"},
        **attrs,
    }


def ce_headers(**extra: str) -> dict[str, str]:
    return {"content-type": "application/cloudevents+json", **AUTH, **extra}


def github(tag: str = "v3.3.2", html_url: str | None = None) -> bytes:
    release = {
        "tag_name": tag,
        "html_url": html_url or f"https://github.com/StarRocks/starrocks/releases/tag/{tag[:40]}",
        "published_at": "2024-08-01T10:00:00Z",
        "draft": False,
        "prerelease": False,
    }
    payload = {"action": "published", "release": release, "repository": {"full_name": "StarRocks/starrocks"}}
    return json.dumps(payload).encode()


def gh_headers(body: bytes, delivery: str = "d-1") -> dict[str, str]:
    return {
        "X-GitHub-Event": "release",
        "X-GitHub-Delivery": delivery,
        "Content-Type": "application/json",
        "X-Hub-Signature-256": sign(SECRET, body),
    }


async def assert_refused(r, field: str | None, status: int = 400) -> None:
    assert r.status == status, await r.text()
    payload = await r.json()
    assert payload.get("field") == field, payload
    assert "Traceback" not in json.dumps(payload)


async def assert_healthy(client) -> None:
    assert (await client.get("/healthz")).status == 200


async def raw_request(port: int, head: bytes, body: bytes = b"", *, close: bool = False) -> bytes:
    """Send the head, then (once the server read it) the body, bytes as they are; the whole answer
    (until the server closes), or b'' when ``close`` hangs up right after sending."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    await writer.drain()
    await asyncio.sleep(0.05)  # the body comes after the headers, as a slow client sends it
    writer.write(body)
    await writer.drain()
    if close:
        writer.transport.abort()
        return b""
    try:
        return await asyncio.wait_for(reader.read(), timeout=60)  # a hang guard, not a threshold
    finally:
        writer.close()


def head(path: str, headers: dict[str, str | bytes], length: int | None = None) -> bytes:
    lines = [f"POST {path} HTTP/1.1".encode(), b"Host: 127.0.0.1"]
    if length is not None:
        lines.append(f"Content-Length: {length}".encode())
    for k, v in headers.items():
        lines.append(k.encode() + b": " + (v if isinstance(v, bytes) else v.encode()))
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def body_of(answer: bytes) -> dict:
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])


# -- 1. a non-string type ------------------------------------------------------------------------


@pytest.mark.parametrize("type_", [["dev.upshift.echo"], {"a": 1}, 5, True])
async def test_1_a_non_string_type_is_400_naming_type(served, type_):
    client, runtime = served
    r = await client.post("/events", data=json.dumps(structured(type=type_)), headers=ce_headers())
    await assert_refused(r, "type")
    assert published(runtime) == 0
    await assert_healthy(client)


def test_1_events_validate_names_a_non_string_type(tmp_path):
    f = tmp_path / "e.json"
    f.write_text(json.dumps(structured(type=["x"])))
    out = CliRunner().invoke(cli, ["events", "validate", str(f)])
    assert out.exit_code == 1, out.output
    assert "Traceback" not in out.output
    assert out.exception is None or isinstance(out.exception, SystemExit)
    assert ": type:" in out.output


# -- 2. deep nesting ---------------------------------------------------------------------------------

DEEP = b'{"a":' * 1000 + b"1" + b"}" * 1000


async def test_2_deep_nesting_in_structured_mode_is_400(served):
    client, runtime = served
    body = json.dumps(structured()).encode().replace(b'{"message": "m"}', DEEP)
    r = await client.post("/events", data=body, headers=ce_headers())
    await assert_refused(r, "data")
    r = await client.post("/events", data=b"[" * 1000 + b"]" * 1000, headers=ce_headers())
    await assert_refused(r, None)  # the whole body: no field to name
    assert published(runtime) == 0
    await assert_healthy(client)


async def test_2_deep_nesting_in_the_release_webhook_is_400(served):
    client, runtime = served
    body = b'{"action":"published","release":' + DEEP + b"}"
    r = await client.post("/hooks/release", data=body, headers=gh_headers(body))
    await assert_refused(r, "release")
    assert published(runtime) == 0
    await assert_healthy(client)


def test_2_events_validate_names_deep_nesting(tmp_path):
    f = tmp_path / "e.json"
    f.write_bytes(json.dumps(structured()).encode().replace(b'{"message": "m"}', DEEP))
    out = CliRunner().invoke(cli, ["events", "validate", str(f)])
    assert out.exit_code == 1, out.output
    assert "Traceback" not in out.output and ": data:" in out.output


# -- 3. oversized GitHub fields ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (github(tag="v3." + "1" * 80), "release.tag_name"),
        (github(html_url="https://github.com/" + "a" * 2100), "release.html_url"),
    ],
)
async def test_3_oversized_github_fields_are_4xx_naming_them(served, body, field):
    client, runtime = served
    r = await client.post("/hooks/release", data=body, headers=gh_headers(body))
    await assert_refused(r, field)
    assert published(runtime) == 0


# -- 4. a version of thousands of digits --------------------------------------------------------------


async def test_4_a_version_of_thousands_of_digits_is_refused(served):
    client, runtime = served
    body = json.dumps({"product": "starrocks", "version": "3." + "9" * 5000}).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(SECRET, body)}
    r = await client.post("/hooks/release", data=body, headers=headers)
    assert 400 <= r.status < 500, await r.text()
    assert (await r.json())["field"] == "version"
    assert published(runtime) == 0


def test_4_plan_release_of_thousands_of_digits_is_a_usage_error(tmp_path):
    from shared.ops.plan import plan

    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    out = CliRunner().invoke(plan, ["--fleet", str(fleet), "--release", "starrocks=3." + "9" * 5000])
    assert out.exit_code == 2, out.output
    assert "--release" in out.output
    assert not isinstance(out.exception, ValueError)


# -- 5. a non-UTF-8 delivery id -----------------------------------------------------------------------


async def test_5_a_non_utf8_delivery_id_is_400(served):
    client, runtime = served
    body = github()
    headers: dict[str, str | bytes] = dict(gh_headers(body))
    headers["X-GitHub-Delivery"] = b"d-\xff\xfe"
    answer = await raw_request(client.port, head("/hooks/release", headers, len(body)), body)
    assert status_of(answer) == 400, answer
    assert body_of(answer)["field"] == "X-GitHub-Delivery"
    assert published(runtime) == 0
    await assert_healthy(client)


# -- 6. a corrupt compressed body ---------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
@pytest.mark.parametrize("path", ["/events", "/hooks/release"])
async def test_6_a_corrupt_compressed_body_is_400(served, encoding, path):
    client, runtime = served
    # a gzip header then bytes no inflater takes (a body merely cut short decodes to its prefix)
    body = gzip.compress(json.dumps(structured()).encode())[:10] + b"\xff" * 32
    headers = ce_headers() | {"Content-Encoding": encoding}
    if path == "/hooks/release":
        headers |= gh_headers(body)
    r = await client.post(path, data=body, headers=headers)
    await assert_refused(r, "Content-Encoding")
    assert published(runtime) == 0
    await assert_healthy(client)


# -- 7. a malformed chunked body, slow clients, SIGTERM ------------------------------------------------


async def test_7_a_malformed_chunked_body_is_answered(impatient):
    """aiohttp's C parser queues its error behind the request being read, so the handler would
    wait for the body forever: the body read timeout answers it (and closes the connection)."""
    client, runtime = impatient
    h = head("/events", ce_headers() | {"Transfer-Encoding": "chunked"})
    answer = await raw_request(client.port, h, b"zz\r\nnot a chunk size\r\n\r\n")
    assert answer, "no answer"
    assert status_of(answer) in (400, 408), answer
    assert published(runtime) == 0
    await assert_healthy(client)


async def test_7_a_body_that_never_arrives_is_408_and_the_connection_closed(impatient):
    client, runtime = impatient
    answer = await raw_request(client.port, head("/events", ce_headers(), length=100), b'{"spec')
    assert status_of(answer) == 408, answer
    assert body_of(answer)["field"] == "body"
    assert published(runtime) == 0
    await assert_healthy(client)


async def test_7_an_idle_connection_is_closed(impatient):
    """A client that connects and sends half a request line is dropped (slowloris)."""
    client, _ = impatient
    answer = await raw_request(client.port, b"POST /events HT")
    assert not answer.startswith(b"HTTP/1.1 2")
    await assert_healthy(client)


def test_7_sigterm_with_a_slow_client_connected_exits_promptly(tmp_path):
    port = free_port()
    proc = start_serve(f"sqlite:///{tmp_path}/u.db", port)
    try:
        asyncio.run(wait_healthy(port, proc))
        import socket

        slow = socket.create_connection(("127.0.0.1", port))
        # (/hooks/release: the server reads its body before anything else looks at the request)
        chunked = {"content-type": "application/json", "Transfer-Encoding": "chunked"}
        slow.sendall(head("/hooks/release", chunked))
        asyncio.run(wait_healthy(port, proc))  # the request is in its handler now, reading the body
        slow.sendall(b"zz\r\nnot a chunk size\r\n\r\n")  # which aiohttp's parser never hands it
        asyncio.run(wait_healthy(port, proc))
        proc.send_signal(signal.SIGTERM)
        # The default aiohttp shutdown waits 60 s for that handler; ours a few seconds.
        assert proc.wait(timeout=LIMITS.shutdown_timeout_s + 20) == 0
        slow.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- 8. invalid UTF-8 in ce-* headers ----------------------------------------------------------------


@pytest.mark.parametrize("attr", ["source", "subject"])
async def test_8_invalid_utf8_in_a_ce_header_is_400_naming_it(served, attr):
    client, runtime = served
    body = b'{"message": "m"}'
    headers: dict[str, str | bytes] = {
        "ce-specversion": "1.0",
        "ce-type": T.ECHO,
        "ce-id": "u1",
        "ce-source": "/x",
        "content-type": "application/json",
        **AUTH,
    }
    headers[f"ce-{attr}"] = b"/x\xff\xfe"
    answer = await raw_request(client.port, head("/events", headers, len(body)), body)
    assert status_of(answer) == 400, answer
    assert body_of(answer)["field"] == attr
    assert published(runtime) == 0


# -- 9. a replayed delivery id with another body ------------------------------------------------------


async def test_9_a_delivery_id_binds_to_its_body(served):
    client, runtime = served
    first = github(tag="v3.3.2")
    r = await client.post("/hooks/release", data=first, headers=gh_headers(first, "d-9"))
    assert r.status == 202
    again = await client.post("/hooks/release", data=first, headers=gh_headers(first, "d-9"))
    assert again.status == 200 and (await again.json())["status"] == "duplicate"
    before = published(runtime)
    other = github(tag="v3.3.3")
    r = await client.post("/hooks/release", data=other, headers=gh_headers(other, "d-9"))
    await assert_refused(r, "X-GitHub-Delivery", status=409)
    assert published(runtime) == before
    versions = [
        json.loads(b)["data"]["version"]
        for (b,) in runtime.bus.conn.execute(
            "SELECT body FROM bus_events WHERE type = ?", (T.VERSION_RELEASED,)
        )
    ]
    assert versions == ["3.3.2"]


# -- 10. disconnects and aiohttp's own rejections go through our logger ---------------------------------


async def test_10_a_client_gone_mid_body_is_not_an_error(served, log_buf, caplog):
    client, runtime = served
    await raw_request(client.port, head("/events", ce_headers(), length=1000), b'{"spec', close=True)
    await assert_healthy(client)
    # until the server has said something about that request (before the fix: an error line)
    await eventually(lambda: '"path": "/events"' in log_buf.getvalue())
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    lines = [json.loads(x) for x in log_buf.getvalue().splitlines() if x.strip()]
    assert not [x for x in lines if x.get("level") in ("error", "critical")], lines
    assert "Traceback" not in log_buf.getvalue()
    assert published(runtime) == 0


async def test_10_aiohttp_parser_rejections_are_structured_and_redacted(served, log_buf, capfd):
    client, _ = served
    bad = (
        b"POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n"
        b"Bad Header Line With Spaces\x01: " + TOKEN.encode() + b"\r\n\r\n"
    )
    answer = await raw_request(client.port, bad)
    assert status_of(answer) == 400
    await assert_healthy(client)
    out, err = capfd.readouterr()
    logged = log_buf.getvalue()
    for text in (out, err, logged):
        assert TOKEN not in text
    # every line aiohttp wrote came through structlog: JSON, with its level
    for line in logged.splitlines():
        assert "level" in json.loads(line)
    assert "aiohttp" in logged


def test_4_parse_version_refuses_thousands_of_digits():
    from shared.domain.versions import BadVersion, parse_version

    for product in ("starrocks", "cce", "oceanbase", "kafka"):
        with pytest.raises(BadVersion):
            parse_version(product, "3." + "9" * 5000)
    with pytest.raises(BadVersion):
        parse_version("kafka", "3" * 5000)
