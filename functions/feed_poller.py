"""feed_poller: on each tick, read every ``fleet.feeds`` URL once and announce releases not seen before.

One aiohttp GET per feed (the process's shared session), parsed with feedparser (GitHub
``releases.atom`` or any Atom/RSS). An entry's version is the feed's ``tag_pattern`` group applied
to, in order, the tag in its link (``.../releases/tag/<tag>``) and its title; the first candidate
that matches and parses (``shared.domain.versions.parse_version``) wins. Each new entry becomes one
``version.released`` (``origin: feed``) with the same id the release webhook would give it, so a
release seen by both is announced once.

State lives in the store, bucket ``feeds``, one document per feed URL:
``{"seen": {entry_key: tick_id}, "etag", "last_modified", "tick"}``.

* An entry is announced when it is not in ``seen`` — or when this very tick marked it: a
  redelivered tick re-emits what its first attempt marked (same ids, the bus drops copies), so a
  crash between writing the state and publishing loses nothing. For the same reason a tick that
  already wrote the state fetches without conditional headers.
* Conditional GET (``If-None-Match`` / ``If-Modified-Since``): a 304 announces nothing.
* ``seen`` keeps only the entries the feed still lists (feeds list their last few releases).
* Entries that do not match or parse are marked seen and logged once.
* A feed that fails (transport error, HTTP status, not a feed) is logged and skipped; the others are
  still processed and the next tick tries it again. A store conflict (two pollers at once) raises:
  the tick is redelivered.
"""

from __future__ import annotations

import asyncio
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import aiohttp
import feedparser
from yarl import URL

from events.catalog import Tick, VersionReleased
from events.envelope import Event
from shared.clouds.sessions import get_session
from shared.domain.fleet import Feed
from shared.domain.releases import Refused, Release, release_event, validate_release
from shared.runtime.function import Context, upshift_function

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

__all__ = ["BUCKET", "MAX_FEED_BYTES", "feed_poller"]

BUCKET = "feeds"
MAX_FEED_BYTES = 4 << 20
_TIMEOUT = aiohttp.ClientTimeout(total=20, connect=5)
_TAG_IN_LINK = re.compile(r"/releases/tag/([^/?#]+)")


@dataclass(frozen=True)
class _Fetched:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@upshift_function
async def feed_poller(event: Event[Tick], ctx: Context) -> list[Event[VersionReleased]]:
    feeds = ctx.fleet.feeds if ctx.fleet is not None else []
    results = await asyncio.gather(*(_poll(feed, event, ctx) for feed in feeds), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result  # a store failure: redeliver the tick (re-emission is idempotent)
    return [e for result in results for e in result]  # type: ignore[union-attr]


async def _poll(feed: Feed, tick: Event[Tick], ctx: Context) -> list[Event[VersionReleased]]:
    log = ctx.log.bind(feed=_loggable(feed.url), product=feed.product)
    if ctx.fleet is not None and feed.product not in ctx.fleet.products:
        log.error("feed names an unknown product; skipped")
        return []
    state = await ctx.store.kv.get(BUCKET, feed.url)
    doc: dict[str, Any] = dict(state.value) if state else {"seen": {}}
    retrying = doc.get("tick") == tick.id
    fetched = await _fetch(feed.url, {} if retrying else _conditional(doc), log)
    if fetched is None or fetched.status == 304:
        return []
    # A stream, never bytes: feedparser opens a bytes/str argument as a local file if one has that name.
    parsed = feedparser.parse(io.BytesIO(fetched.body), response_headers=fetched.headers)
    if parsed.bozo and not parsed.entries:
        log.warning("not a feed; skipped", error=type(parsed.get("bozo_exception")).__name__)
        return []

    seen: dict[str, str] = doc.get("seen", {})
    kept: dict[str, str] = {}
    out: list[Event[VersionReleased]] = []
    for entry in parsed.entries:
        key = entry.get("id") or entry.get("link") or entry.get("title")
        if not key:
            continue
        kept[key] = seen.get(key, tick.id)
        if kept[key] != tick.id:
            continue
        release = _release(feed, entry, ctx)
        if release is None:
            log.warning("entry has no version matching tag_pattern; skipped", entry=key[:200])
            continue
        out.append(release_event(release, ctx.clock.now()))

    new_doc = {
        "seen": kept,
        "etag": fetched.headers.get("etag"),
        "last_modified": fetched.headers.get("last-modified"),
        "tick": tick.id,
    }
    if state is None:
        await ctx.store.kv.create(BUCKET, feed.url, new_doc)
    elif new_doc != state.value:
        await ctx.store.kv.update(BUCKET, feed.url, new_doc, state.revision)
    log.info("feed polled", entries=len(parsed.entries), announced=len(out))
    return out


def _conditional(doc: dict[str, Any]) -> dict[str, str]:
    headers = {}
    if doc.get("etag"):
        headers["If-None-Match"] = doc["etag"]
    if doc.get("last_modified"):
        headers["If-Modified-Since"] = doc["last_modified"]
    return headers


async def _fetch(url: str, headers: dict[str, str], log: FilteringBoundLogger) -> _Fetched | None:
    """One GET; None (logged) on any transport error, unexpected status or oversized body."""
    try:
        async with get_session().get(url, headers=headers, timeout=_TIMEOUT) as r:
            if r.status == 304:
                return _Fetched(304)
            if r.status != 200:
                log.warning("feed answered an HTTP error; skipped", status=r.status)
                return None
            body = bytearray()
            # read(n) may return less than n before EOF: read to the end, stopping past the limit.
            async for chunk in r.content.iter_chunked(64 << 10):
                body += chunk
                if len(body) > MAX_FEED_BYTES:
                    log.warning("feed too large; skipped", limit=MAX_FEED_BYTES)
                    return None
            return _Fetched(200, bytes(body), {k.lower(): v for k, v in r.headers.items()})
    except (aiohttp.ClientError, TimeoutError) as exc:
        # The exception text may carry the URL (and any token in it): log its type only.
        log.warning("feed unreachable; skipped", error=type(exc).__name__)
        return None


def _release(feed: Feed, entry: Any, ctx: Context) -> Release | None:
    """The entry's release: the first candidate (link tag, title) that matches and parses."""
    tag = _TAG_IN_LINK.search(entry.get("link", ""))
    candidates = [unquote(tag.group(1))] if tag else []
    candidates.append(entry.get("title", ""))
    for text in candidates:
        m = re.search(feed.tag_pattern, text.strip())
        if m is None or not m.group(1):
            continue
        release = Release(
            product=feed.product,
            version=m.group(1),
            released_at=_when(entry),
            url=entry.get("link"),
            origin="feed",
        )
        try:
            return validate_release(ctx.fleet, release)
        except Refused:
            continue
    return None


def _when(entry: Any) -> datetime | None:
    t = entry.get("published_parsed") or entry.get("updated_parsed")
    return datetime(t[0], t[1], t[2], t[3], t[4], t[5], tzinfo=UTC) if t else None


def _loggable(url: str) -> str:
    # Private feeds put tokens in the query string or userinfo: never log those parts.
    return str(URL(url).with_query(None).with_user(None))
