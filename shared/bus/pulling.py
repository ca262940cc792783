"""How the NATS bus receives deliveries and keeps them leased.

* :class:`Puller` asks one durable pull consumer for messages and hands each to ``on_msg`` the
  moment it arrives. One pull request is open at a time, for at most the free handler slots
  (so a process never holds more deliveries than it runs), asked again once the last one is
  done (its batch delivered, its expiry or another status from the server, or a local deadline
  past its expiry: a request lost with a connection). Each request has a reply subject of its
  own under one wildcard inbox, so a late status (408, 409) of an old request is not taken for
  the open one's. nats-py's ``fetch`` would instead hold the messages it got until its batch is full or its
  timeout passes (up to a whole ``ack_wait`` of a short lease spent before the handler starts),
  and asking once per freed slot costs one round trip per delivery.
* :class:`LeaseKeeper` sends in-progress acks (``+WPI``) for every held delivery every
  ``ack_wait / 3`` from a thread of its own, on a connection of its own: a handler that keeps
  the event loop busy past ``ack_wait`` (a slow handler on a loaded machine) cannot let its
  lease lapse, so the server does not redeliver, and count towards ``max_deliver``, a message
  a live process is handling. In-progress acks only count on the newest delivery's reply
  subject, so the holder renews whichever delivery it saw last. A process whose event loop has
  not turned for ``frozen_after`` seconds is hung, not slow: its leases are left to lapse.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Awaitable, Callable

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSub

from shared.log import get_logger

__all__ = ["LeaseKeeper", "Puller"]

log = get_logger("upshift.bus.nats")

_STATUS = "Status"
_HEARTBEAT = "100"
#: A request not answered this long after its expiry is taken as lost (a dropped connection).
_LOST_AFTER = 1.0
_WPI = b"+WPI"
_CONNECT_S = 5.0


class Puller:
    """Pull requests for ``stream``/``durable``; every message goes to ``on_msg`` as it arrives."""

    def __init__(self, nc: Client, stream: str, durable: str, on_msg: Callable[[Msg], None]) -> None:
        self._nc = nc
        self._api = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._on_msg = on_msg
        self._inbox = nc.new_inbox()
        self._sub: NatsSub | None = None
        self._seq = 0
        self._open: str | None = None  # the open request's reply subject
        self._left = 0  # messages the open request may still bring
        self._batch = self._got = 0  # the last request's size and what it brought
        self._done = asyncio.Event()
        self._done.set()

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(f"{self._inbox}.*", cb=self._received)

    @property
    def outstanding(self) -> int:
        """Messages the open request may still bring (0 when none is open)."""
        return self._left if self._open is not None else 0

    async def _received(self, msg: Msg) -> None:
        status = msg.headers.get(_STATUS) if msg.headers else None
        if status is None:
            # A delivery carries its stream subject, not the request's: counted against the open
            # request (a late one of an old request ends the open one a little early, harmless).
            if self._open is not None:
                self._left -= 1
                if self._left <= 0:
                    self._finish()
            self._on_msg(msg)
        elif status != _HEARTBEAT and msg.subject == self._open:
            self._finish()  # 408 expired, 409 leadership change / consumer deleted, 404 …

    def _finish(self) -> None:
        self._got = self._batch - self._left
        self._open, self._left = None, 0
        self._done.set()

    async def pull(self, batch: int, expires: float) -> int:
        """Ask for up to ``batch`` messages, waiting up to ``expires`` s for them; return how many
        came once the request is done (the messages themselves went to ``on_msg`` meanwhile)."""
        self._seq += 1
        reply = f"{self._inbox}.{self._seq}"
        self._open, self._left, self._batch = reply, batch, batch
        self._done.clear()
        body = json.dumps({"batch": batch, "expires": int(expires * 1e9)}).encode()
        await self._nc.publish(self._api, body, reply=reply)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(expires + _LOST_AFTER):
                await self._done.wait()
        if self._open == reply:
            self._finish()
        return self._got

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        self._finish()


class LeaseKeeper:
    """In-progress acks for held deliveries, from a thread with its own connection."""

    def __init__(self, connect: Callable[[], Awaitable[Client]], every: float, frozen_after: float) -> None:
        self._connect = connect  # called (and awaited) in the thread: a connection of its own
        self._every = every
        self._frozen_after = frozen_after
        self._replies: dict[object, str] = {}
        self._lock = threading.Lock()
        self._beat = time.monotonic()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._frozen_logged = False
        self._failing_since: float | None = None  # renewals failing since then (warned once)

    def hold(self, key: object, reply: str) -> None:
        """Keep the delivery whose ack subject is ``reply`` leased (replacing ``key``'s older one)."""
        with self._lock:
            self._replies[key] = reply
        if self._thread is None:
            # each thread its own stop flag: one that outlived stop()'s join still sees its own set
            self._stopping = threading.Event()
            self._thread = threading.Thread(
                target=self._main, args=(self._stopping,), name="upshift-nats-leases", daemon=True
            )
            self._thread.start()

    def release(self, key: object) -> None:
        with self._lock:
            self._replies.pop(key, None)

    def beat(self) -> None:
        """The event loop is turning (called from it every ``every`` s)."""
        self._beat = time.monotonic()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _main(self, stopping: threading.Event) -> None:
        asyncio.run(self._loop(stopping))

    async def _loop(self, stopping: threading.Event) -> None:
        nc: Client | None = None
        with contextlib.suppress(Exception):  # at once, not at the first renewal (else: retried then)
            nc = await asyncio.wait_for(self._connect(), _CONNECT_S)
        try:
            while not await asyncio.to_thread(stopping.wait, self._every):
                with self._lock:
                    replies = list(self._replies.values())
                if not replies:
                    continue
                if time.monotonic() - self._beat > self._frozen_after:
                    if not self._frozen_logged:
                        log.error("event loop frozen; leases left to lapse", held=len(replies))
                        self._frozen_logged = True
                    continue
                self._frozen_logged = False
                try:
                    if nc is None:  # (bounded: stop() must not wait on a server that is down)
                        nc = await asyncio.wait_for(self._connect(), _CONNECT_S)
                    for reply in replies:
                        await nc.publish(reply, _WPI)
                    await nc.flush(timeout=max(1, int(self._every)))
                    self._failing_since = None
                except Exception as exc:  # the next round tries again
                    log.debug("lease renewal failed", error=repr(exc))
                    now = time.monotonic()
                    if self._failing_since is None:
                        self._failing_since = now
                    elif now - self._failing_since > 3 * self._every:  # a whole ack_wait: lapsing
                        log.warning(
                            "lease renewals failing; held deliveries will be redelivered",
                            held=len(replies),
                            error=repr(exc),
                        )
                        self._failing_since = now  # again after another ack_wait, not every round
        finally:
            if nc is not None:
                with contextlib.suppress(Exception):
                    await nc.close()
