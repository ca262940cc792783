"""Hypothesis against ``POST /events`` (and ``POST /hooks/release``): valid envelopes with one field broken (a wrong type, an
oversized value, text that is not Unicode, nesting too deep, a bad attribute name), each sent to
a real ``upshift serve`` app on loopback. Every one must be a 4xx naming the broken field, publish
nothing (the bus rows are counted), leave the server healthy, and no log line may hold the token.

The server runs in a thread of its own (its own event loop), so Hypothesis drives a plain
synchronous test; the bus is counted through a second SQLite connection to the same file.
"""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import T
from shared.bus import open_bus
from shared.clouds.sessions import close_sessions
from shared.domain.fleet import parse_fleet
from shared.log import configure
from shared.runtime.host import Runtime
from shared.runtime.manifest import load_manifest
from shared.runtime.server import build_app
from shared.store import open_store

TOKEN = "fuzz-token-do-not-leak"
TOKEN_ENV = "UPSHIFT_TEST_FUZZ_TOKEN"
SECRET = "fuzz-gh-secret-do-not-leak"
SECRET_ENV = "UPSHIFT_TEST_FUZZ_GH_SECRET"
FLEET = f"""
clouds:
  huawei: {{region: ap-southeast-1, project_id: p1}}
targets:
  - {{name: cce-1, kind: cce, cluster_id: c-1}}
  - {{name: sr-1, kind: starrocks, instance_id: 1f2e3d4c5b6a47389a0b1c2d3e4f5a6bin07, starrocks_instance_id: 5c2f9e0d8b7a4c1e9f3d2a1b0c9e8d7fin17}}
feeds:
  - {{url: "https://github.com/StarRocks/starrocks/releases.atom", product: starrocks}}
hooks: {{github_secret_env: {SECRET_ENV}}}
auth:
  tokens: [{{name: fuzz, token_env: {TOKEN_ENV}, role: operator, publish: [echo]}}]
"""
HEADERS = {"content-type": "application/cloudevents+json", "Authorization": f"Bearer {TOKEN}"}
BIG = "x" * 5000
DEEP: Any = 1
for _ in range(200):
    DEEP = {"a": DEEP}


class Served:
    def __init__(self, url: str, db: str, log: io.StringIO) -> None:
        self.url, self.db, self.log = url, db, log

    def published(self) -> int:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(
                "SELECT COUNT(*) FROM bus_events WHERE type != ?", (T.CLOCK_TICK,)
            ).fetchone()[0]


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    import os

    os.environ[TOKEN_ENV] = TOKEN
    os.environ[SECRET_ENV] = SECRET
    log = io.StringIO()
    configure(json=True, stream=log, level=0)
    db = tmp_path_factory.mktemp("fuzz") / "u.db"
    url = f"sqlite:///{db}"
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def start() -> None:
        runtime = Runtime(load_manifest(), open_bus(url), open_store(url), fleet=parse_fleet(FLEET))
        await runtime.start()
        runner = web.AppRunner(build_app(runtime), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        state.update(runtime=runtime, runner=runner, port=runner.addresses[0][1])

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30)
    try:
        yield Served(f"http://127.0.0.1:{state['port']}", str(db), log)
    finally:

        async def stop() -> None:
            await state["runner"].cleanup()
            await state["runtime"].stop()
            await close_sessions()  # the feed poller's session lives on this loop

        asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        os.environ.pop(TOKEN_ENV, None)
        os.environ.pop(SECRET_ENV, None)
        configure()


def envelope(message: str = "m", **extensions: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "type": T.ECHO,
        "source": "/fuzz",
        "id": "f1",
        "time": "2026-01-05T00:00:00Z",
        "subject": "s",
        "data": {"message": message},
        **extensions,
    }


MISSING = object()
WRONG_TYPES = st.sampled_from([5, 1.5, True, [], ["x"], {}, {"a": 1}])
#: field -> values that must be refused for it (MISSING: the attribute left out)
BROKEN: dict[str, st.SearchStrategy[Any]] = {
    "specversion": st.one_of(st.sampled_from([MISSING, "0.3", "", "1.0 ", BIG]), WRONG_TYPES),
    "type": st.one_of(
        st.sampled_from([MISSING, "", "dev.upshift.nope", BIG, "dev.upshift.echo\ud800"]), WRONG_TYPES
    ),
    "source": st.one_of(st.sampled_from([MISSING, "", "/" + BIG, "/x\ud800"]), WRONG_TYPES),
    "id": st.one_of(st.sampled_from([MISSING, "", "i" * 129, "x\udc80"]), WRONG_TYPES),
    "time": st.one_of(st.sampled_from(["2026-01-05T00:00:00", "yesterday", "", BIG]), WRONG_TYPES),
    "subject": st.one_of(
        st.sampled_from(["/" + BIG, "s\ud800"]), WRONG_TYPES.filter(lambda v: v is not None)
    ),
    "data": st.one_of(st.sampled_from([MISSING, "text", DEEP]), st.sampled_from([5, True, [], ["x"]])),
    "data.message": st.one_of(st.sampled_from(["", BIG, "m\ud800"]), WRONG_TYPES),
}


@st.composite
def broken_envelopes(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A valid envelope (perhaps with well-formed extensions) with exactly one field broken."""
    exts = draw(
        st.dictionaries(
            st.from_regex(r"\Acomexample[a-z0-9]{0,8}\Z"),
            st.one_of(st.text(max_size=20), st.integers(), st.booleans()),
            max_size=3,
        )
    )
    obj = envelope(
        draw(
            st.text(min_size=1, max_size=50).filter(
                lambda t: t.encode("utf-8", "surrogatepass") == t.encode("utf-8", "ignore")
            )
        ),
        **exts,
    )
    kind = draw(st.sampled_from([*BROKEN, "extension-value", "extension-name"]))
    if kind == "extension-value":
        name = draw(st.from_regex(r"\Acomexample[a-z0-9]{0,8}\Z"))
        obj[name] = draw(st.sampled_from([1.5, [], {"a": 1}, ["x"], BIG]))
        return name, obj
    if kind == "extension-name":
        name = draw(st.sampled_from(["Bad", "bad-name", "bad_name", "a" * 21, "é"]))
        obj[name] = "v"
        return name, obj
    value = draw(BROKEN[kind])
    if kind == "data.message":
        obj["data"]["message"] = value
    elif value is MISSING:
        del obj[kind]
    else:
        obj[kind] = value
    return kind, obj


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=broken_envelopes())
def test_one_broken_field_is_a_4xx_naming_it_and_publishes_nothing(served, case):
    field, obj = case
    # json.dumps writes a lone surrogate as its \\u escape, as a hostile client would send it
    body = json.dumps(obj)
    with httpx.Client(base_url=served.url, timeout=30) as client:
        r = client.post("/events", content=body.encode(), headers=HEADERS)
        assert 400 <= r.status_code < 500, (r.status_code, r.text, field)
        payload = r.json()
        assert payload.get("field") == field, (payload, field)
        assert "Traceback" not in r.text
        assert client.get("/healthz").status_code == 200
    assert served.published() == 0
    assert TOKEN not in served.log.getvalue()


# -- POST /hooks/release: a GitHub release webhook with one field broken ---------------------------


def github(**release: Any) -> dict[str, Any]:
    base = {
        "tag_name": "v3.3.2",
        "html_url": "https://github.com/StarRocks/starrocks/releases/tag/v3.3.2",
        "published_at": "2024-08-01T10:00:00Z",
        "draft": False,
        "prerelease": False,
    }
    return {
        "action": "published",
        "release": {**base, **release},
        "repository": {"full_name": "StarRocks/starrocks"},
    }


HOOK_BROKEN: dict[str, st.SearchStrategy[Any]] = {
    "action": st.sampled_from([MISSING, 5, [], {}, BIG, "x\ud800"]),
    "release": st.sampled_from([MISSING, 5, "text", [], DEEP]),
    "release.tag_name": st.sampled_from([MISSING, "", 5, [], "v" + BIG, "v3\ud800"]),
    "release.html_url": st.sampled_from([5, [], "https://github.com/" + BIG, "https://x/\ud800"]),
    "release.published_at": st.sampled_from(["yesterday", [], {}]),
    "repository.full_name": st.sampled_from([MISSING, "", 5, [], "a/" + BIG, "a/b\ud800"]),
}


@st.composite
def broken_hooks(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    doc = github()
    field = draw(st.sampled_from(sorted(HOOK_BROKEN)))
    value = draw(HOOK_BROKEN[field])
    *parents, leaf = field.split(".")
    holder = doc
    for p in parents:
        holder = holder[p]
    if value is MISSING:
        del holder[leaf]
    else:
        holder[leaf] = value
    return field, doc


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=broken_hooks(), delivery=st.uuids())
def test_one_broken_webhook_field_is_a_4xx_naming_it_and_publishes_nothing(served, case, delivery):
    from functions.release_intake import sign

    field, doc = case
    body = json.dumps(doc).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "release",
        "X-GitHub-Delivery": str(delivery),
        "X-Hub-Signature-256": sign(SECRET, body),
    }
    with httpx.Client(base_url=served.url, timeout=30) as client:
        r = client.post("/hooks/release", content=body, headers=headers)
        assert 400 <= r.status_code < 500, (r.status_code, r.text, field)
        payload = r.json()
        # a nested value too deep or not Unicode is named by where it is, at least its top field
        assert payload.get("field") == field or field.startswith(f"{payload.get('field')}."), (payload, field)
        assert client.get("/healthz").status_code == 200
    assert served.published() == 0
    assert SECRET not in served.log.getvalue()


# -- last (they publish): the bases the fuzzers break are valid ----------------------------------


def test_the_fuzzer_sends_what_the_server_accepts_when_nothing_is_broken(served):
    """The base envelope is valid (so a refusal above is the broken field's doing)."""
    with httpx.Client(base_url=served.url, timeout=30) as client:
        r = client.post("/events", content=json.dumps(envelope(comexampleextension1="v")), headers=HEADERS)
        assert r.status_code == 202, r.text


def test_the_webhook_fuzzer_base_is_accepted(served):
    from functions.release_intake import sign

    body = json.dumps(github(tag_name="v9.9.9")).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "release",
        "X-Hub-Signature-256": sign(SECRET, body),
    }
    with httpx.Client(base_url=served.url, timeout=30) as client:
        r = client.post("/hooks/release", content=body, headers=headers)
        assert r.status_code == 202, r.text
