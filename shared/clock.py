"""Time for the domain logic: real, sped up (demo, simulator), or fixed (tests).

The bus works in real seconds; functions think in *domain* time (windows, job durations).
``Clock.real_delay`` converts a domain duration into the real delay to put on the bus.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = ["Clock", "FakeClock"]


class Clock:
    """Domain time that runs ``speed`` times faster than real time, from ``start`` (default now)."""

    def __init__(
        self, speed: float = 1.0, start: datetime | None = None, *, anchor: float | None = None
    ) -> None:
        """``start`` is the domain time at real epoch ``anchor`` (default: now). Processes given the
        same three values agree on domain time, across restarts too."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._real0 = time.time() if anchor is None else anchor
        self._dom0 = (start or datetime.fromtimestamp(self._real0, UTC)).timestamp()

    def timestamp(self) -> float:
        return self._dom0 + (time.time() - self._real0) * self.speed

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def real_delay(self, domain_seconds: float) -> float:
        return max(0.0, domain_seconds) / self.speed


class FakeClock(Clock):
    """A clock that moves only when told to (tests)."""

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        super().__init__(speed, start)
        self._t = start.timestamp()

    def timestamp(self) -> float:
        return self._t

    def advance(self, seconds: float) -> None:
        self._t += seconds

    def set(self, when: datetime) -> None:
        self._t = when.timestamp()
