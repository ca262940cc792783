"""Retries that end: ``RetryPolicy``, ``with_retry`` and the ``Retry-After`` header.

* ``with_retry`` awaits a call and retries ``TransientCloudError`` (throttling included) with
  exponential backoff and full jitter; a larger ``retry_after`` from the vendor wins. It stops
  when the attempts run out or when the next sleep would end past the policy's deadline.
* A non-idempotent call (``retry_applied=False``, e.g. "start an upgrade") is *not* retried once
  it may have reached the vendor (``maybe_applied``): the caller must reconcile instead, because
  a second upgrade call is exactly what Upshift promises never to make.
* ``parse_retry_after`` reads the header's seconds form; a date (or garbage) gives None, and the
  backoff decides alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from shared.bus.base import backoff_delay
from shared.clouds.errors import TransientCloudError
from shared.log import get_logger

__all__ = ["RetryPolicy", "parse_retry_after", "with_retry"]

T = TypeVar("T")

_log = get_logger("upshift.clouds")


class RetryPolicy(BaseModel):
    """How long a transient failure is retried. All durations in seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(5, ge=1)
    base: float = Field(0.2, ge=0)
    cap: float = Field(10.0, ge=0)
    deadline: float = Field(60.0, gt=0)


async def with_retry(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    retry_applied: bool = True,
) -> T:
    """``await call()``, retrying ``TransientCloudError`` (throttling included) per ``policy``.

    Backoff is exponential with full jitter (``shared.bus.base.backoff_delay``); a larger
    ``retry_after`` from the vendor wins. The last error is raised when attempts run out, when the
    next sleep would end past ``policy.deadline`` (measured from the first attempt), or — with
    ``retry_applied=False`` — when the failed attempt may have reached the vendor.
    """
    start = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except TransientCloudError as exc:
            if attempt >= policy.attempts or (exc.maybe_applied and not retry_applied):
                raise
            delay = backoff_delay(attempt, policy.base, policy.cap)
            if exc.retry_after is not None and exc.retry_after > delay:
                delay = exc.retry_after
            if clock() + delay - start > policy.deadline:
                raise
            _log.info(
                "cloud.retry",
                vendor=exc.vendor,
                code=exc.code,
                status=exc.status,
                attempt=attempt,
                delay=delay,
            )
            await sleep(delay)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds; None when absent or a date."""
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None
