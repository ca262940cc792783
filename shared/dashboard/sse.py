"""Live updates of the dashboard: a server-sent event stream saying *something changed*.

Contract:

* :class:`Changes` watches the store while at least one stream listens: every ``interval_s`` it
  takes the store's mark of what the pages show (:mod:`shared.dashboard.marks`: a revision
  counter, a fixed number of store calls however long the history — not a read per key) and,
  when it differs from the last one, wakes every stream (:meth:`Changes.poll` is one such look).
  One watcher per app, however many streams: the store is asked once per interval, not once per
  browser tab. A store error is logged and the next poll tries again.
* :meth:`Changes.respond` is the stream (``text/event-stream``): a ``retry:`` hint, then
  ``event: changed`` (``data`` a counter) on each change and a comment line (``: heartbeat``)
  every ``heartbeat_s`` so proxies keep the connection and a gone client is noticed. The first
  line (``retry:`` and ``: connected``) is sent once the watcher has its baseline: any change
  after it is announced (the page re-fetches once on connecting for what came before). It says
  nothing about *what* changed: the page re-fetches its fragment, which the session may read.
* At most ``max_streams`` streams at once; one more is 503 with ``Retry-After`` (the browser's
  EventSource retries).
* :meth:`Changes.close` (the app's ``on_shutdown``) ends every stream and the watcher, so the
  server stops without waiting for its shutdown timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Hashable

from aiohttp import web

from shared.dashboard.marks import Marks, marks_of
from shared.log import get_logger
from shared.store.base import KV

__all__ = ["HEARTBEAT_S", "MAX_STREAMS", "POLL_S", "Changes"]

POLL_S = 1.0
HEARTBEAT_S = 15.0
MAX_STREAMS = 64
#: What the browser waits before reconnecting a dropped stream (ms).
RETRY_MS = 3000

log = get_logger("upshift.dashboard")


class Changes:
    """The change watcher and its streams (see the module docstring)."""

    def __init__(
        self,
        kv: KV,
        *,
        interval_s: float = POLL_S,
        heartbeat_s: float = HEARTBEAT_S,
        max_streams: int = MAX_STREAMS,
    ) -> None:
        self.kv = kv
        self.marks: Marks = marks_of(kv)
        self._last: Hashable | None = None  # the mark at the last poll (None: no baseline yet)
        self.interval_s = interval_s
        self.heartbeat_s = heartbeat_s
        self.max_streams = max_streams
        #: how many changes were seen since the app started (the events' ``data``)
        self.count = 0
        self.streams = 0
        self._changed = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        #: set once the watcher has its first fingerprint (what later changes are compared with)
        self._ready = asyncio.Event()

    def _wake(self) -> None:
        woken, self._changed = self._changed, asyncio.Event()
        woken.set()

    async def poll(self) -> bool:
        """One look at the store's mark: True (and every stream woken) when it moved since the
        last look; the first look only takes the baseline."""
        now = await self.marks.mark()
        moved = self._last is not None and now != self._last
        self._last = now
        if moved:
            self.count += 1
            self._wake()
        return moved

    async def _watch(self) -> None:
        self._last = None
        try:
            while not self._closing:
                try:
                    await self.poll()
                except Exception as exc:  # a store hiccup: the next poll tries again
                    log.warning("dashboard change watch failed", error_type=type(exc).__name__)
                self._ready.set()
                await asyncio.sleep(self.interval_s)
        finally:  # nobody listens (or shutdown): let go of the mark's connection
            with contextlib.suppress(Exception):
                await self.marks.close()

    def _listen(self) -> None:
        self.streams += 1
        if self._task is None or self._task.done():
            self._ready = asyncio.Event()
            self._task = asyncio.create_task(self._watch(), name="dashboard-changes")

    async def _leave(self) -> None:
        self.streams -= 1
        if self.streams == 0 and self._task is not None:  # nobody listens: stop reading the store
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def respond(self, request: web.Request) -> web.StreamResponse:
        """The event stream of one browser tab (the caller checked the session)."""
        if self._closing or self.streams >= self.max_streams:
            raise web.HTTPServiceUnavailable(
                text="too many live streams; reload later", headers={"Retry-After": "10"}
            )
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
            }
        )
        self._listen()
        try:
            await response.prepare(request)
            await self._ready.wait()
            await response.write(f"retry: {RETRY_MS}\n: connected\n\n".encode())
            seen = self.count
            while not self._closing:
                if self.count == seen:  # (a change during the last write is not missed)
                    changed = self._changed
                    try:
                        async with asyncio.timeout(self.heartbeat_s):
                            await changed.wait()
                    except TimeoutError:
                        await response.write(b": heartbeat\n\n")
                    continue
                seen = self.count
                await response.write(f"event: changed\ndata: {seen}\n\n".encode())
        except ConnectionError:
            pass  # the tab went away: nothing to answer
        finally:
            await self._leave()
        return response

    async def close(self, _app: web.Application | None = None) -> None:
        """End every stream and the watcher (the app's ``on_shutdown``)."""
        self._closing = True
        self._ready.set()
        self._wake()
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
