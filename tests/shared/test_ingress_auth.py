"""Credentials at the ingress: ``POST /events`` and ``POST /hooks/release`` on `upshift serve`'s app.

Real aiohttp server on loopback, real SQLite bus. Every 401/403 publishes nothing (bus rows are
counted, the runtime's own clock ticks aside) and no token value reaches a log line or an answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from events import T
from events.codec import to_binary_http
from functions.release_intake import sign
from shared.bus import open_bus
from shared.domain.fleet import parse_fleet
from shared.runtime.auth import authenticate, bearer_of, ingress_warnings
from shared.runtime.host import Runtime
from shared.runtime.manifest import load_manifest
from shared.runtime.server import build_app
from shared.store import open_store
from simulator.natsd import free_port
from tests.helpers import echo, start_serve, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "events" / "samples"

#: token name → (env var, value)
TOKENS = {
    "bot": ("UPSHIFT_T_BOT", "bot-token-value-7f3a9c2e"),
    "chat": ("UPSHIFT_T_CHAT", "chat-token-value-1b2c3d4e"),
    "board": ("UPSHIFT_T_BOARD", "board-token-value-5e6f7a8b"),
    "root": ("UPSHIFT_T_ROOT", "root-token-value-9c0d1e2f"),
    "unset": ("UPSHIFT_T_UNSET", "never-set-in-the-environment"),
}
GH_SECRET_ENV, GH_SECRET = "UPSHIFT_T_GH_SECRET", "gh-secret-value-3a4b5c6d"
BASE = """
clouds:
  huawei: {region: ap-southeast-1, project_id: p1}
targets:
  - {name: sr-1, kind: starrocks, instance_id: 1f2e3d4c5b6a47389a0b1c2d3e4f5a6bin07, starrocks_instance_id: 5c2f9e0d8b7a4c1e9f3d2a1b0c9e8d7fin17}
"""
AUTH = f"""
auth:
  tokens:
    - {{name: bot, token_env: {TOKENS["bot"][0]}, role: operator, publish: [version.released, echo]}}
    - {{name: chat, token_env: {TOKENS["chat"][0]}, role: approver, publish: [chat.command, upgrade.requested]}}
    - {{name: board, token_env: {TOKENS["board"][0]}, role: viewer}}
    - {{name: root, token_env: {TOKENS["root"][0]}, role: admin,
       publish: [version.released, echo, chat.command, upgrade.requested]}}
    - {{name: unset, token_env: {TOKENS["unset"][0]}, role: admin, publish: [echo]}}
"""


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name][1]}"}


def _sample(type_: str) -> bytes:
    return (SAMPLES / f"{type_}.json").read_bytes()


def _count(runtime) -> int:
    """Bus rows other than the runtime's own schedule ticks (a posted sample tick counts)."""
    return runtime.bus.conn.execute(
        "SELECT COUNT(*) FROM bus_events WHERE type != ? OR id LIKE 'sample-%'", (T.CLOCK_TICK,)
    ).fetchone()[0]


def _no_secret_in(text: str) -> None:
    for _, value in TOKENS.values():
        assert value not in text
    assert GH_SECRET not in text


@pytest.fixture
async def serve(tmp_path, monkeypatch, log_buf):
    """``serve(fleet_yaml | None)`` → (client, runtime): the whole manifest on a fresh SQLite bus."""
    for name, (env, value) in TOKENS.items():
        if name != "unset":
            monkeypatch.setenv(env, value)
    monkeypatch.delenv(TOKENS["unset"][0], raising=False)
    monkeypatch.setenv(GH_SECRET_ENV, GH_SECRET)
    opened: list[tuple[TestClient, Runtime]] = []

    async def start(fleet_yaml: str | None):
        url = f"sqlite:///{tmp_path}/u{len(opened)}.db"
        fleet = parse_fleet(fleet_yaml) if fleet_yaml is not None else None
        runtime = Runtime(load_manifest(), open_bus(url), open_store(url), fleet=fleet)
        await runtime.start()
        client = TestClient(TestServer(build_app(runtime)))
        await client.start_server()
        opened.append((client, runtime))
        return client, runtime

    yield start
    for client, runtime in opened:
        await client.close()
        await runtime.stop()
    _no_secret_in(log_buf.getvalue())


async def _refused(client, runtime, path: str, body: bytes, headers: dict[str, str], status: int, field: str):
    r = await client.post(path, data=body, headers=headers)
    text = await r.text()
    assert r.status == status, text
    if status == 401:  # every 401, /events and /hooks/release alike, says how to authenticate
        assert r.headers.get("WWW-Authenticate", "").startswith('Bearer realm="upshift"'), r.headers
    payload = json.loads(text)
    assert payload["field"] == field and payload["error"]
    assert "Traceback" not in text
    _no_secret_in(text)
    assert _count(runtime) == 0
    return r, payload


# -- POST /events: 401 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKENS['bot'][1]}x"},
        {"Authorization": f"Bearer {TOKENS['bot'][1][:-1]}"},
        {"Authorization": f"Basic {TOKENS['bot'][1]}"},
        {"Authorization": TOKENS["bot"][1]},
        {"Authorization": "Bearer "},
        {"Authorization": f"Bearer {TOKENS['unset'][1]}"},  # its variable is not set
    ],
    ids=["none", "wrong", "longer", "shorter", "basic", "no-scheme", "empty", "unset-env"],
)
async def test_events_without_a_valid_token_is_401_and_publishes_nothing(serve, log_buf, auth):
    client, runtime = await serve(BASE + AUTH)
    headers, body = to_binary_http(echo("hello"))
    r, _payload = await _refused(client, runtime, "/events", body, {**headers, **auth}, 401, "Authorization")
    assert r.headers["WWW-Authenticate"].startswith('Bearer realm="upshift"')
    if auth.get("Authorization", "").startswith("Bearer ") and auth["Authorization"] != "Bearer ":
        assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    assert "ingress refused" in log_buf.getvalue()


async def test_events_with_no_tokens_configured_refuses_everyone_and_warns(serve, log_buf):
    for fleet in (None, BASE):
        client, runtime = await serve(fleet)
        headers, body = to_binary_http(echo("hello"))
        await _refused(client, runtime, "/events", body, {**headers, **bearer("root")}, 401, "Authorization")
    lines = [json.loads(line) for line in log_buf.getvalue().splitlines()]
    warned = [x for x in lines if x.get("level") == "warning" and "no auth tokens" in x["event"]]
    assert len(warned) == 2


# -- POST /events: 403 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "type_",
    sorted(
        t
        for t in (p.name.removesuffix(".json") for p in SAMPLES.glob("*.json"))
        if t not in {T.VERSION_RELEASED, T.ECHO, T.CHAT_COMMAND, T.UPGRADE_REQUESTED}
    ),
)
async def test_internal_types_are_403_even_for_admin(serve, type_):
    client, runtime = await serve(BASE + AUTH)
    _, payload = await _refused(
        client,
        runtime,
        "/events",
        _sample(type_),
        {"content-type": "application/cloudevents+json", **bearer("root")},
        403,
        "type",
    )
    assert "internal" in payload["error"]


@pytest.mark.parametrize(
    ("token", "type_"),
    [
        ("bot", T.UPGRADE_REQUESTED),  # not in its list (nor its role)
        ("bot", T.CHAT_COMMAND),  # not in its list
        ("chat", T.ECHO),  # approver, but echo is not in its list
        ("board", T.ECHO),  # a viewer publishes nothing
        ("board", T.VERSION_RELEASED),
    ],
)
async def test_a_type_the_token_may_not_publish_is_403(serve, log_buf, token, type_):
    client, runtime = await serve(BASE + AUTH)
    _, payload = await _refused(
        client,
        runtime,
        "/events",
        _sample(type_),
        {"content-type": "application/cloudevents+json", **bearer(token)},
        403,
        "type",
    )
    assert f"'{token}'" in payload["error"]
    assert f'"principal": "{token}"' in log_buf.getvalue()


# -- POST /events: allowed --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "type_"),
    [
        ("bot", T.ECHO),
        ("bot", T.VERSION_RELEASED),
        ("chat", T.UPGRADE_REQUESTED),
        ("chat", T.CHAT_COMMAND),
        ("root", T.ECHO),
    ],
)
async def test_an_allowed_type_is_published(serve, token, type_):
    client, runtime = await serve(BASE + AUTH)
    r = await client.post(
        "/events",
        data=_sample(type_),
        headers={"content-type": "application/cloudevents+json", **bearer(token)},
    )
    assert r.status == 202, await r.text()
    assert (
        runtime.bus.conn.execute("SELECT COUNT(*) FROM bus_events WHERE type = ?", (type_,)).fetchone()[0]
        >= 1
    )


async def test_the_header_name_and_scheme_are_case_insensitive(serve):
    client, _runtime = await serve(BASE + AUTH)
    headers, body = to_binary_http(echo("case"))
    r = await client.post(
        "/events", data=body, headers={**headers, "authorization": f"bearer {TOKENS['bot'][1]}"}
    )
    assert r.status == 202


# -- POST /hooks/release ----------------------------------------------------------------------------

RELEASE = json.dumps({"product": "starrocks", "version": "3.3.2"}).encode()
JSON = {"Content-Type": "application/json"}


def _released(runtime) -> int:
    return runtime.bus.conn.execute(
        "SELECT COUNT(*) FROM bus_events WHERE type = ?", (T.VERSION_RELEASED,)
    ).fetchone()[0]


async def test_hook_without_secret_token_or_opt_in_is_401(serve):
    for fleet in (BASE, BASE + AUTH, None):
        client, runtime = await serve(fleet)
        await _refused(client, runtime, "/hooks/release", RELEASE, JSON, 401, "Authorization")


@pytest.mark.parametrize(
    "auth", ["Bearer wrong", f"Bearer {TOKENS['unset'][1]}", f"Basic {TOKENS['bot'][1]}"]
)
async def test_hook_with_a_wrong_token_is_401(serve, auth):
    client, runtime = await serve(BASE + AUTH)
    await _refused(
        client, runtime, "/hooks/release", RELEASE, {**JSON, "Authorization": auth}, 401, "Authorization"
    )


@pytest.mark.parametrize("token", ["chat", "board"])
async def test_hook_with_a_token_that_may_not_announce_releases_is_403(serve, token):
    client, runtime = await serve(BASE + AUTH)
    await _refused(
        client, runtime, "/hooks/release", RELEASE, {**JSON, **bearer(token)}, 403, "Authorization"
    )


@pytest.mark.parametrize("token", ["bot", "root"])
async def test_hook_with_a_release_token_is_accepted(serve, token):
    client, runtime = await serve(BASE + AUTH)
    r = await client.post("/hooks/release", data=RELEASE, headers={**JSON, **bearer(token)})
    assert r.status == 202, await r.text()
    assert _released(runtime) == 1


async def test_hook_with_a_github_secret_takes_a_signature_or_a_token(serve):
    client, runtime = await serve(BASE + AUTH + f"hooks: {{github_secret_env: {GH_SECRET_ENV}}}\n")
    await _refused(client, runtime, "/hooks/release", RELEASE, JSON, 401, "X-Hub-Signature-256")
    await _refused(
        client, runtime, "/hooks/release", RELEASE, {**JSON, **bearer("board")}, 403, "Authorization"
    )
    r = await client.post("/hooks/release", data=RELEASE, headers={**JSON, **bearer("bot")})
    assert r.status == 202
    other = json.dumps({"product": "starrocks", "version": "3.3.3"}).encode()
    r = await client.post(
        "/hooks/release", data=other, headers={**JSON, "X-Hub-Signature-256": sign(GH_SECRET, other)}
    )
    assert r.status == 202
    assert _released(runtime) == 2


async def test_hook_explicitly_open_accepts_unauthenticated_and_warns(serve, log_buf):
    client, runtime = await serve(BASE + "hooks: {allow_unauthenticated: true}\n")
    r = await client.post("/hooks/release", data=RELEASE, headers=JSON)
    assert r.status == 202
    assert _released(runtime) == 1
    assert "hooks.allow_unauthenticated is true" in log_buf.getvalue()
    # a token given there is still checked: a wrong one is refused, not waved through
    other = json.dumps({"product": "starrocks", "version": "3.3.3"}).encode()
    r = await client.post("/hooks/release", data=other, headers={**JSON, "Authorization": "Bearer wrong"})
    assert r.status == 401
    assert _released(runtime) == 1


# -- the verifier and the start-up warnings ---------------------------------------------------------


def test_authenticate_finds_each_token_and_never_an_unset_one(monkeypatch):
    auth = parse_fleet(BASE + AUTH).auth
    for _name, (env, value) in TOKENS.items():
        monkeypatch.setenv(env, value)
    assert authenticate(auth, bearer("chat")).name == "chat"
    assert authenticate(auth, bearer("root")).role == "admin"
    assert authenticate(auth, bearer("unset")).name == "unset"
    monkeypatch.delenv(TOKENS["unset"][0])
    with pytest.raises(Exception, match="not valid"):
        authenticate(auth, bearer("unset"))
    assert bearer_of({}) is None


def test_start_up_warnings_name_variables_never_values(monkeypatch):
    for _name, (env, value) in TOKENS.items():
        monkeypatch.setenv(env, value)
    monkeypatch.delenv(TOKENS["unset"][0])
    fleet = parse_fleet(BASE + AUTH + "hooks: {allow_unauthenticated: true}\n")
    warnings = ingress_warnings(fleet, release_hook=True)
    assert any(TOKENS["unset"][0] in w and "'unset'" in w for w in warnings)
    assert any("allow_unauthenticated" in w for w in warnings)
    assert not any("no auth tokens" in w for w in warnings)
    _no_secret_in("\n".join(warnings))
    assert ingress_warnings(fleet, release_hook=False) == [w for w in warnings if "allow_unauth" not in w]
    assert any("no auth tokens" in w for w in ingress_warnings(None, release_hook=True))


async def test_upshift_serve_without_tokens_warns_at_start_and_refuses_events(tmp_path):
    """The real command: no fleet, no tokens — it starts, says so on stderr, and answers 401."""
    port = free_port()
    err = tmp_path / "serve.err"
    with err.open("wb") as stderr:
        proc = start_serve(f"sqlite:///{tmp_path}/u.db", port, stderr=stderr)
        try:
            await wait_healthy(port, proc)
            headers, body = to_binary_http(echo("anyone"))
            async with aiohttp.ClientSession() as s:
                async with s.post(f"http://127.0.0.1:{port}/events", data=body, headers=headers) as r:
                    assert r.status == 401
                    assert r.headers["WWW-Authenticate"].startswith("Bearer")
        finally:
            proc.terminate()
            assert proc.wait(timeout=30) == 0
    assert "no auth tokens are configured" in err.read_text()


def test_a_chat_edge_whose_secret_is_unset_is_warned_about(monkeypatch):
    text = (
        BASE + "chat: {slack: {signing_secret_env: UPSHIFT_T_SLACK}, mattermost: {token_env: UPSHIFT_T_MM}}\n"
    )
    monkeypatch.delenv("UPSHIFT_T_SLACK", raising=False)
    monkeypatch.setenv("UPSHIFT_T_MM", "mm-token-value")
    warnings = ingress_warnings(parse_fleet(text), release_hook=False)
    assert any("chat.slack" in w and "UPSHIFT_T_SLACK" in w for w in warnings)
    assert not any("chat.mattermost" in w for w in warnings)
    assert "mm-token-value" not in "\n".join(warnings)
