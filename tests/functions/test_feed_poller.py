"""feed_poller on a real SQLite bus, reading real Atom and RSS documents from a loopback server."""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from datetime import UTC, datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from events import Event, T, consequence_id
from events.catalog import Tick
from shared.bus import open_bus
from shared.clock import FakeClock
from shared.clouds.sessions import close_sessions
from shared.domain.fleet import parse_fleet
from shared.domain.releases import release_id
from shared.runtime.host import Runtime
from shared.runtime.manifest import Manifest
from shared.store import open_store
from simulator.natsd import free_port

PERIOD = 300
MANIFEST = Manifest.model_validate(
    {
        "service": "t",
        "functions": {
            "feed_poller": {
                "handler": "functions.feed_poller.feed_poller",
                "events": [{"schedule": f"rate({PERIOD // 60} minutes)"}],
            }
        },
    }
)


def _atom_entry(tag: str, title: str) -> str:
    return f"""
  <entry>
    <id>tag:github.com,2008:Repository/507775/{tag}</id>
    <updated>2024-08-01T10:00:00Z</updated>
    <link rel="alternate" type="text/html" href="https://github.com/StarRocks/starrocks/releases/tag/{tag}"/>
    <title>{title}</title>
    <content type="html">&lt;p&gt;notes&lt;/p&gt;</content>
    <author><name>starrocks</name></author>
  </entry>"""


def _atom(entries: list[tuple[str, str]]) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en-US">
  <id>tag:github.com,2008:https://github.com/StarRocks/starrocks/releases</id>
  <link type="text/html" rel="alternate" href="https://github.com/StarRocks/starrocks/releases"/>
  <title>Release notes from starrocks</title>
  <updated>2024-08-01T10:00:00Z</updated>{"".join(_atom_entry(tag, title) for tag, title in entries)}
</feed>"""


RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel>
  <title>CCE cluster versions</title><link>https://support.example.com/cce</link><description>CCE</description>
  <item><title>v1.29.8-r0</title><link>https://support.example.com/cce/v1.29.8-r0</link>
    <guid isPermaLink="false">cce-v1.29.8-r0</guid><pubDate>Thu, 01 Aug 2024 10:00:00 GMT</pubDate></item>
  <item><title>v1.30.2-r0</title><link>https://support.example.com/cce/v1.30.2-r0</link>
    <guid isPermaLink="false">cce-v1.30.2-r0</guid><pubDate>Fri, 02 Aug 2024 10:00:00 GMT</pubDate></item>
</channel></rss>"""


class FeedServer:
    """Serves the feeds (ETag-aware), a 500 and a non-feed; counts GETs per path."""

    def __init__(self) -> None:
        self.atom_entries = [("3.3.1", "3.3.1"), ("3.3.2", "StarRocks 3.3.2"), ("nightly", "Nightly build")]
        self.gets: Counter[str] = Counter()
        self.not_modified: Counter[str] = Counter()
        app = web.Application()
        app.router.add_get(
            "/starrocks.atom", self._doc(lambda: _atom(self.atom_entries), "application/atom+xml")
        )
        app.router.add_get("/cce.rss", self._doc(lambda: RSS, "application/rss+xml"))
        app.router.add_get("/broken", self._status(500))
        app.router.add_get("/garbage", self._doc(lambda: "<html><body>not a feed</body>", "text/html"))
        #: a body that is the name of a local file (set by a test): must be parsed as text, never opened
        self.path_body = ""
        app.router.add_get("/path", self._doc(lambda: self.path_body, "application/atom+xml"))
        self.big_entries = [(f"3.{i}.0", f"3.{i}.0") for i in range(400)]
        app.router.add_get("/big.atom", self._doc(lambda: _atom(self.big_entries), "application/atom+xml"))
        self.server = TestServer(app)

    def _doc(self, render, content_type: str):
        async def handler(request: web.Request) -> web.Response:
            self.gets[request.path] += 1
            body = render()
            etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:16] + '"'
            if request.headers.get("If-None-Match") == etag:
                self.not_modified[request.path] += 1
                return web.Response(status=304, headers={"ETag": etag})
            return web.Response(text=body, content_type=content_type, headers={"ETag": etag})

        return handler

    def _status(self, status: int):
        async def handler(request: web.Request) -> web.Response:
            self.gets[request.path] += 1
            return web.Response(status=status, text="oops")

        return handler

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))


@pytest.fixture
async def feeds():
    server = FeedServer()
    await server.server.start_server()
    yield server
    await server.server.close()


class Poller:
    def __init__(self, runtime: Runtime, clock: FakeClock) -> None:
        self.runtime = runtime
        self.clock = clock

    def tick_event(self) -> Event:
        # The runtime's own tick for the current period (same id), so the start-up tick dedupes with it.
        slot = math.floor(self.clock.timestamp() / PERIOD) * PERIOD
        return Event(
            type=T.CLOCK_TICK,
            id=consequence_id("tick", "feed_poller", slot),
            subject="feed_poller",
            data=Tick(at=datetime.fromtimestamp(slot, UTC)),
        )

    async def handle_tick(self) -> None:
        await self.runtime.bus.publish(self.tick_event())
        await self.runtime.wait_idle()

    async def poll(self) -> None:
        """Move to the next period and let its tick be handled."""
        self.clock.advance(PERIOD)
        await self.handle_tick()

    def released(self) -> list[dict]:
        rows = self.runtime.bus.conn.execute(
            "SELECT body FROM bus_events WHERE type = ? ORDER BY rowid", (T.VERSION_RELEASED,)
        ).fetchall()
        return [json.loads(b) for (b,) in rows]

    def versions(self) -> list[tuple[str, str]]:
        return sorted((e["data"]["product"], e["data"]["version"]) for e in self.released())


async def _poller(tmp_path, feeds_yaml: str):
    fleet = parse_fleet(
        f"""
clouds:
  huawei: {{region: ap-southeast-1, project_id: p1}}
targets:
  - {{name: sr-1, kind: starrocks, instance_id: 1f2e3d4c5b6a47389a0b1c2d3e4f5a6bin07, starrocks_instance_id: 5c2f9e0d8b7a4c1e9f3d2a1b0c9e8d7fin17}}
  - {{name: cce-1, kind: cce, cluster_id: c-1}}
feeds:
{feeds_yaml}
"""
    )
    url = f"sqlite:///{tmp_path}/u.db"
    clock = FakeClock(datetime(2024, 8, 5, 12, 0, 1, tzinfo=UTC))
    runtime = Runtime(MANIFEST, open_bus(url), open_store(url), clock=clock, fleet=fleet)
    await runtime.start()
    poller = Poller(runtime, clock)
    # The runtime ticks once at start-up; publishing the same tick (same id) waits for it deterministically.
    await poller.handle_tick()
    return poller


@pytest.fixture
async def make_poller(tmp_path):
    made: list[Poller] = []

    async def make(feeds_yaml: str) -> Poller:
        p = await _poller(tmp_path, feeds_yaml)
        made.append(p)
        return p

    yield make
    for p in made:
        await p.runtime.stop()
    await close_sessions()


def _feeds(server: FeedServer, *extra: str) -> str:
    lines = [
        f'  - {{url: "{server.url("/starrocks.atom")}", product: starrocks}}',
        f'  - {{url: "{server.url("/cce.rss")}", product: cce, tag_pattern: "^(v[0-9].*)$"}}',
    ]
    return "\n".join(lines + list(extra))


async def test_first_poll_announces_each_entry_once_second_poll_nothing(feeds, make_poller):
    p = await make_poller(_feeds(feeds))  # the start-up tick is the first poll
    assert p.versions() == [
        ("cce", "v1.29.8-r0"),
        ("cce", "v1.30.2-r0"),
        ("starrocks", "3.3.1"),
        ("starrocks", "3.3.2"),
    ]
    by_version = {e["data"]["version"]: e for e in p.released()}
    # Same id the release webhook would give: a release seen by both is announced once.
    assert by_version["3.3.2"]["id"] == release_id("starrocks", "3.3.2")
    assert by_version["3.3.2"]["data"]["origin"] == "feed"
    assert by_version["3.3.2"]["data"]["url"] == "https://github.com/StarRocks/starrocks/releases/tag/3.3.2"
    assert by_version["v1.30.2-r0"]["data"]["released_at"] == "2024-08-02T10:00:00Z"

    await p.poll()
    assert len(p.released()) == 4
    # one GET per feed per poll; the second was conditional and answered 304
    assert feeds.gets == Counter({"/starrocks.atom": 2, "/cce.rss": 2})
    assert feeds.not_modified == Counter({"/starrocks.atom": 1, "/cce.rss": 1})


async def test_a_new_entry_is_announced_on_the_next_poll(feeds, make_poller):
    p = await make_poller(_feeds(feeds))
    before = {e["id"] for e in p.released()}
    feeds.atom_entries.insert(0, ("3.3.3", "3.3.3"))
    await p.poll()
    new = [e for e in p.released() if e["id"] not in before]
    assert [(e["data"]["product"], e["data"]["version"]) for e in new] == [("starrocks", "3.3.3")]
    await p.poll()
    assert len(p.released()) == 5
    assert feeds.gets["/starrocks.atom"] == 3


async def test_broken_feeds_are_skipped_and_the_others_still_processed(feeds, make_poller, log_buf):
    dead = f"http://127.0.0.1:{free_port()}/releases.atom?token=feed-token-do-not-leak"
    p = await make_poller(
        _feeds(
            feeds,
            f'  - {{url: "{feeds.url("/broken")}", product: starrocks}}',
            f'  - {{url: "{feeds.url("/garbage")}", product: starrocks}}',
            f'  - {{url: "{dead}", product: cce}}',
        )
    )
    assert len(p.versions()) == 4
    assert await p.runtime.bus.dead_letters() == []
    logs = log_buf.getvalue()
    assert "feed answered an HTTP error" in logs
    assert "not a feed" in logs
    assert "feed unreachable" in logs
    assert "feed-token-do-not-leak" not in logs
    # a broken feed is tried again on the next tick
    gets = feeds.gets["/broken"]
    await p.poll()
    assert feeds.gets["/broken"] == gets + 1


async def test_a_redelivered_tick_re_emits_the_same_events(feeds, make_poller):
    """A crash after the state was written but before the outbox commit loses nothing."""
    p = await make_poller(_feeds(feeds))
    feeds.atom_entries.insert(0, ("3.3.3", "3.3.3"))
    p.clock.advance(PERIOD)
    tick = p.tick_event()
    fn = p.runtime.functions["feed_poller"].function
    # the handler's output is dropped (as if the process died before the outbox commit) …
    first = await fn(tick, p.runtime.context("feed_poller"))
    assert [e.id for e in first] == [release_id("starrocks", "3.3.3")]
    # … and the redelivered tick announces it again, though the state already marks it seen
    again = await fn(tick, p.runtime.context("feed_poller"))
    assert [e.id for e in again] == [e.id for e in first]
    p.clock.advance(PERIOD)
    assert await fn(p.tick_event(), p.runtime.context("feed_poller")) == []


async def test_no_feeds_is_a_quiet_tick(make_poller):
    p = await make_poller("  []")
    await p.poll()
    assert p.released() == []


async def test_a_body_naming_a_local_file_is_not_read_from_disk(feeds, make_poller, tmp_path):
    local = tmp_path / "local.atom"
    local.write_text(_atom([("9.9.9", "9.9.9")]))
    feeds.path_body = str(local)
    p = await make_poller(f'  - {{url: "{feeds.url("/path")}", product: starrocks}}')
    assert feeds.gets["/path"] == 1
    assert p.released() == []


async def test_a_large_feed_is_read_to_the_end(feeds, make_poller):
    p = await make_poller(f'  - {{url: "{feeds.url("/big.atom")}", product: starrocks}}')
    assert len(p.released()) == 400
