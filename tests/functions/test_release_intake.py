"""release_intake through `upshift serve`'s app over loopback, on a real SQLite bus."""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import TestClient, TestServer

from events import T
from functions.release_intake import sign
from shared.bus import open_bus
from shared.domain.fleet import parse_fleet
from shared.domain.releases import release_id
from shared.runtime.host import Runtime
from shared.runtime.manifest import Manifest
from shared.runtime.server import build_app
from shared.store import open_store

SECRET = "gh-webhook-secret-do-not-leak"
SECRET_ENV = "UPSHIFT_TEST_GH_SECRET"
FLEET = """
clouds:
  huawei: {region: ap-southeast-1, project_id: p1}
targets:
  - {name: sr-1, kind: starrocks, instance_id: 1f2e3d4c5b6a47389a0b1c2d3e4f5a6bin07, starrocks_instance_id: 5c2f9e0d8b7a4c1e9f3d2a1b0c9e8d7fin17}
  - {name: cce-1, kind: cce, cluster_id: c-1}
feeds:
  - {url: "https://github.com/StarRocks/starrocks/releases.atom", product: starrocks}
"""
MANIFEST = Manifest.model_validate(
    {
        "service": "t",
        "functions": {
            "release_intake": {
                "handler": "functions.release_intake.release_intake",
                "events": [{"http": {"path": "/hooks/release", "method": "post"}}],
            }
        },
    }
)


async def _serve(tmp_path, fleet_yaml: str):
    url = f"sqlite:///{tmp_path}/u.db"
    runtime = Runtime(MANIFEST, open_bus(url), open_store(url), fleet=parse_fleet(fleet_yaml))
    await runtime.start()
    client = TestClient(TestServer(build_app(runtime)))
    await client.start_server()
    return client, runtime


@pytest.fixture
async def open_hook(tmp_path):
    """No secret configured, the hook explicitly open (tests/shared/test_ingress_auth.py: else a
    bearer token is required): unsigned requests are accepted."""
    client, runtime = await _serve(tmp_path, FLEET + "hooks: {allow_unauthenticated: true}\n")
    yield client, runtime
    await client.close()
    await runtime.stop()


@pytest.fixture
async def signed_hook(tmp_path, monkeypatch):
    """A GitHub secret is configured: every request must be signed."""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    client, runtime = await _serve(tmp_path, FLEET + f"hooks: {{github_secret_env: {SECRET_ENV}}}\n")
    yield client, runtime
    await client.close()
    await runtime.stop()


def _released(runtime) -> list[dict]:
    rows = runtime.bus.conn.execute(
        "SELECT body FROM bus_events WHERE type = ?", (T.VERSION_RELEASED,)
    ).fetchall()
    return [json.loads(b) for (b,) in rows]


def _count(runtime) -> int:
    return runtime.bus.conn.execute("SELECT COUNT(*) FROM bus_events").fetchone()[0]


def _github(
    action: str = "published", tag: str = "v3.3.2", repo: str = "StarRocks/starrocks", **release
) -> bytes:
    payload = {
        "action": action,
        "release": {
            "tag_name": tag,
            "html_url": f"https://github.com/{repo}/releases/tag/{tag}",
            "published_at": "2024-08-01T10:00:00Z",
            "draft": False,
            "prerelease": False,
            **release,
        },
        "repository": {"full_name": repo, "id": 1},
        "sender": {"login": "octocat"},
    }
    return json.dumps(payload).encode()


def _gh_headers(
    body: bytes, delivery: str = "d-1", event: str = "release", secret: str | None = SECRET
) -> dict[str, str]:
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "Content-Type": "application/json"}
    if secret is not None:
        headers["X-Hub-Signature-256"] = sign(secret, body)
    return headers


# -- accepted --------------------------------------------------------------------------------------


async def test_generic_body_publishes_one_version_released(open_hook):
    client, runtime = open_hook
    body = {
        "product": "starrocks",
        "version": "3.3.2",
        "released_at": "2024-08-01T10:00:00Z",
        "url": "https://x.example/r",
    }
    r = await client.post("/hooks/release", json=body)
    assert r.status == 202
    reply = await r.json()
    assert reply["status"] == "accepted"
    assert reply["id"] == release_id("starrocks", "3.3.2")
    [event] = _released(runtime)
    assert event["id"] == reply["id"]
    assert event["subject"] == "starrocks"
    assert event["data"] == {
        "product": "starrocks",
        "version": "3.3.2",
        "released_at": "2024-08-01T10:00:00Z",
        "url": "https://x.example/r",
        "origin": "webhook",
    }


async def test_generic_body_sent_twice_is_published_once(open_hook):
    client, runtime = open_hook
    for _ in range(2):
        r = await client.post("/hooks/release", json={"product": "cce", "version": "v1.29.8-r0"})
        assert r.status == 202
    [event] = _released(runtime)
    assert event["data"]["version"] == "v1.29.8-r0"
    assert event["data"]["released_at"] is not None  # no date given: taken as the time it was announced


async def test_github_release_is_mapped_through_the_fleet_feed(signed_hook):
    client, runtime = signed_hook
    body = _github()
    r = await client.post("/hooks/release", data=body, headers=_gh_headers(body))
    assert r.status == 202
    assert (await r.json())["version"] == "3.3.2"
    [event] = _released(runtime)
    assert event["id"] == release_id("starrocks", "3.3.2")
    assert event["data"]["product"] == "starrocks"
    assert event["data"]["url"] == "https://github.com/StarRocks/starrocks/releases/tag/v3.3.2"
    assert event["data"]["released_at"] == "2024-08-01T10:00:00Z"


async def test_github_product_from_query_parameter(signed_hook):
    client, runtime = signed_hook
    body = _github(tag="v1.30.2-r0", repo="acme/cce-releases")
    r = await client.post("/hooks/release?product=cce", data=body, headers=_gh_headers(body))
    assert r.status == 202
    [event] = _released(runtime)
    assert (event["data"]["product"], event["data"]["version"]) == ("cce", "1.30.2-r0")


async def test_replayed_delivery_is_answered_duplicate_and_dropped(signed_hook):
    client, runtime = signed_hook
    body = _github()
    first = await client.post("/hooks/release", data=body, headers=_gh_headers(body, delivery="abc"))
    again = await client.post("/hooks/release", data=body, headers=_gh_headers(body, delivery="abc"))
    assert first.status == 202
    assert again.status == 200
    assert (await again.json())["status"] == "duplicate"
    assert len(_released(runtime)) == 1
    assert _count(runtime) == 1


@pytest.mark.parametrize(
    ("event", "body"),
    [
        ("release", _github(action="created")),
        ("release", _github(action="edited")),
        ("release", _github(prerelease=True)),
        ("release", _github(draft=True)),
        ("ping", b'{"zen": "Keep it logically awesome.", "hook_id": 1}'),
        ("push", b'{"ref": "refs/heads/main"}'),
    ],
)
async def test_other_actions_and_events_are_ignored(signed_hook, event, body):
    client, runtime = signed_hook
    r = await client.post("/hooks/release", data=body, headers=_gh_headers(body, event=event))
    assert r.status in (200, 202)
    assert (await r.json())["status"] == "ignored"
    assert _count(runtime) == 0


# -- refused: nothing published, the reason and field named ---------------------------------------


async def _refused(
    client,
    runtime,
    body: bytes,
    headers: dict[str, str],
    status: int,
    field: str,
    path: str = "/hooks/release",
):
    r = await client.post(path, data=body, headers=headers)
    assert r.status == status
    payload = await r.json()
    assert payload["field"] == field
    assert payload["error"]
    assert "Traceback" not in json.dumps(payload)
    assert _count(runtime) == 0
    return payload


@pytest.mark.parametrize(
    ("signature", "field"),
    [
        (None, "X-Hub-Signature-256"),
        ("sha256=" + "0" * 64, "X-Hub-Signature-256"),
        (sign("another-secret", _github()), "X-Hub-Signature-256"),
        ("sha1=abc", "X-Hub-Signature-256"),
        ("sha256=ünicode", "X-Hub-Signature-256"),
    ],
)
async def test_wrong_or_missing_signature_is_401(signed_hook, log_buf, signature, field):
    client, runtime = signed_hook
    body = _github()
    headers = _gh_headers(body, secret=None)
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    payload = await _refused(client, runtime, body, headers, 401, field)
    assert "release refused" in log_buf.getvalue()
    assert SECRET not in json.dumps(payload)
    assert SECRET not in log_buf.getvalue()
    assert sign(SECRET, body) not in log_buf.getvalue()


async def test_signature_over_a_different_body_is_401(signed_hook):
    client, runtime = signed_hook
    body = _github()
    headers = _gh_headers(_github(tag="v9.9.9"))
    await _refused(client, runtime, body, headers, 401, "X-Hub-Signature-256")


async def test_generic_body_must_be_signed_when_a_secret_is_configured(signed_hook):
    client, runtime = signed_hook
    body = json.dumps({"product": "starrocks", "version": "3.3.2"}).encode()
    await _refused(client, runtime, body, {"Content-Type": "application/json"}, 401, "X-Hub-Signature-256")
    r = await client.post("/hooks/release", data=body, headers={"X-Hub-Signature-256": sign(SECRET, body)})
    assert r.status == 202
    assert len(_released(runtime)) == 1


async def test_configured_but_unset_secret_refuses_everything(signed_hook, monkeypatch):
    client, runtime = signed_hook
    monkeypatch.delenv(SECRET_ENV)
    body = _github()
    r = await client.post("/hooks/release", data=body, headers=_gh_headers(body))
    assert r.status == 500
    assert _count(runtime) == 0


@pytest.mark.parametrize("body", [b"{oops", b"", b"\xff\xfe", b'{"product": "starrocks", "version": '])
async def test_malformed_json_is_400(open_hook, body):
    client, runtime = open_hook
    await _refused(client, runtime, body, {"Content-Type": "application/json"}, 400, "body")


async def test_malformed_json_in_a_signed_github_hook_is_400(signed_hook):
    client, runtime = signed_hook
    body = b'{"action": "published", '
    await _refused(client, runtime, body, _gh_headers(body), 400, "body")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": "3.3.2"}, "product"),
        ({"product": "starrocks"}, "version"),
        ({"product": "starrocks", "version": "3.3.2", "verison": "x"}, "verison"),
        ({"product": "starrocks", "version": "3.3.2", "released_at": "yesterday"}, "released_at"),
        ({"product": "starrocks", "version": "3.3.2", "url": "javascript:alert(1)"}, "url"),
        ([1, 2], "body"),
    ],
)
async def test_wrong_shape_is_400_naming_the_field(open_hook, body, field):
    client, runtime = open_hook
    await _refused(
        client, runtime, json.dumps(body).encode(), {"Content-Type": "application/json"}, 400, field
    )


async def test_github_payload_missing_the_release_is_400(signed_hook):
    client, runtime = signed_hook
    body = json.dumps({"action": "published", "repository": {"full_name": "StarRocks/starrocks"}}).encode()
    await _refused(client, runtime, body, _gh_headers(body), 400, "release")


async def test_unknown_product_is_422(open_hook):
    client, runtime = open_hook
    body = json.dumps({"product": "postgres", "version": "16.2"}).encode()
    payload = await _refused(client, runtime, body, {"Content-Type": "application/json"}, 422, "product")
    assert "postgres" in payload["error"]


async def test_unknown_product_in_query_is_422(signed_hook):
    client, runtime = signed_hook
    body = _github(repo="acme/other")
    await _refused(
        client, runtime, body, _gh_headers(body), 422, "product", path="/hooks/release?product=postgres"
    )


async def test_repository_without_a_product_is_422(signed_hook):
    client, runtime = signed_hook
    body = _github(repo="acme/unmapped")
    await _refused(client, runtime, body, _gh_headers(body), 422, "repository.full_name")


@pytest.mark.parametrize(
    ("product", "version"),
    [("starrocks", "three.three"), ("cce", "1.29.8-beta"), ("starrocks", "3.3.2 ; rm -rf /")],
)
async def test_version_that_does_not_parse_is_422(open_hook, product, version):
    client, runtime = open_hook
    body = json.dumps({"product": product, "version": version}).encode()
    await _refused(client, runtime, body, {"Content-Type": "application/json"}, 422, "version")


async def test_github_tag_that_does_not_parse_is_422(signed_hook):
    client, runtime = signed_hook
    body = _github(tag="nightly-2024-08-01")
    await _refused(client, runtime, body, _gh_headers(body), 422, "version")


async def test_form_encoded_github_hook_is_400_with_a_hint(signed_hook):
    client, runtime = signed_hook
    body = b"payload=%7B%7D"
    headers = _gh_headers(body) | {"Content-Type": "application/x-www-form-urlencoded"}
    payload = await _refused(client, runtime, body, headers, 400, "content-type")
    assert "application/json" in payload["error"]
