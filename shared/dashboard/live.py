"""The vendors' own answer on the fleet page, on request (``?live=true``), cached briefly.

A page never calls a vendor by itself: only ``GET /fleet?live=1`` / ``GET /api/fleet?live=true``
asks, through ``upshift inventory``'s read-only look (:func:`shared.ops.inventory.look_all`: one
or two GETs per target, each client within its own rate limits). The answer is kept
:data:`TTL_S` seconds per server, so a page that refreshes itself on every change (the live
updates re-fetch its fragment) or many viewers at once cost one look per target per TTL, not one
per request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from aiohttp import web

from shared.domain.fleet import Fleet
from shared.ops.inventory import Live, look_all
from shared.runtime.host import Runtime

__all__ = ["TTL_S", "LiveLooks", "live_flag", "looks_of"]

TTL_S = 60.0


def live_flag(value: str | None) -> bool | None:
    """``live`` as a query gives it: true/1/yes, false/0/no (any case), absent → False; None for
    anything else (the caller answers 400 naming ``live``)."""
    if value is None:
        return False
    low = value.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    return None


class LiveLooks:
    """One cached look at every target (:data:`TTL_S`); concurrent askers share one look."""

    def __init__(self, runtime: Runtime, ttl_s: float = TTL_S) -> None:
        self.runtime = runtime
        self.ttl_s = ttl_s
        self._at = 0.0
        self._looks: dict[str, Live] = {}
        self._lock = asyncio.Lock()

    async def get(self, fleet: Fleet) -> Mapping[str, Live]:
        """Each target's look by name; empty when this server has no vendor clients."""
        if self.runtime.clouds is None:
            return {}
        async with self._lock:
            if not self._looks or time.monotonic() - self._at > self.ttl_s:
                looks = await look_all(fleet, self.runtime.clouds, self.runtime.store.ledger)
                self._looks = {live.target: live for live in looks}
                self._at = time.monotonic()
            return dict(self._looks)


_LOOKS = web.AppKey("dashboard_live_looks", LiveLooks)


def looks_of(app: web.Application, runtime: Runtime) -> LiveLooks:
    """The app's one :class:`LiveLooks`: the JSON API and the pages share it, so one TTL costs
    one look at every target whichever of them asks."""
    if _LOOKS not in app:
        app[_LOOKS] = LiveLooks(runtime)
    return app[_LOOKS]
