"""Politeness per endpoint: ``Limits`` (concurrency, rate, timeouts) and the ``TokenBucket``.

A client keeps one semaphore of ``Limits.concurrency`` and one token bucket of ``Limits.rate``
per endpoint key (see ``shared.clouds.client.BaseClient``), so a burst of calls to one vendor API
neither floods it nor starves the client's other calls. The timeouts bound one HTTP exchange.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Limits", "TokenBucket"]


class Limits(BaseModel):
    """Per endpoint (per client instance + endpoint key) politeness and timeouts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    concurrency: int = Field(8, ge=1)
    rate: float = Field(20.0, gt=0)  # requests per second, token bucket
    burst: int = Field(20, ge=1)
    connect_timeout: float = Field(5.0, gt=0)
    total_timeout: float = Field(30.0, gt=0)


class TokenBucket:
    """``rate`` requests per second on average, ``burst`` at once. Waiters are served in order."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ):
        if rate <= 0 or burst < 1:
            raise ValueError("TokenBucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._last = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    async def acquire(self) -> None:
        """Wait for a token and take it. The lock keeps waiters in arrival order."""
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await self._sleep((1 - self._tokens) / self.rate)
