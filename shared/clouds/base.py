"""What every vendor client stands on: one HTTP exchange done right, retries that end, secrets.

* ``BaseClient._send`` makes exactly one HTTP exchange: per-endpoint concurrency limit, token-bucket
  rate limit, connect/total timeouts, the vendor's ``_sign`` hook right before sending, transport
  errors mapped to typed errors, and the vendor's ``_raise_for`` hook mapping status + body.
* ``BaseClient._call`` is ``_send`` inside ``with_retry``: transient errors are retried with
  exponential backoff and full jitter, honouring ``retry_after``, never past the deadline.
  A non-idempotent call (``idempotent=False``, e.g. "start an upgrade") is *not* retried once it
  may have reached the vendor (``maybe_applied``): the caller must reconcile instead, because a
  second upgrade call is exactly what Upshift promises never to make.
* One ``aiohttp.ClientSession`` per event loop (``get_session``), shared by every client.
* Credentials: config holds environment variable *names*; ``read_secret`` turns a name into a
  ``SecretStr`` and registers the value so no error message can ever show it.
"""

from __future__ import annotations

import asyncio
import inspect
import json as jsonlib
import os
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from yarl import URL

from shared.bus.base import backoff_delay
from shared.clouds.errors import (
    AuthError,
    CloudError,
    PermanentCloudError,
    ThrottledError,
    TransientCloudError,
    register_secret,
)
from shared.errors import ConfigError
from shared.log import get_logger

__all__ = [
    "BaseClient",
    "Limits",
    "Params",
    "ReconcilePolicy",
    "Response",
    "RetryPolicy",
    "TokenBucket",
    "close_sessions",
    "encode_query",
    "error_for_status",
    "get_session",
    "parse_retry_after",
    "quote_segment",
    "read_secret",
    "with_retry",
]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]
#: Query parameters: a mapping, or pairs when a name repeats.
Params = Mapping[str, str] | Sequence[tuple[str, str]]

_log = get_logger("upshift.clouds")


class RetryPolicy(BaseModel):
    """How long a transient failure is retried. All durations in seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(5, ge=1)
    base: float = Field(0.2, ge=0)
    cap: float = Field(10.0, ge=0)
    deadline: float = Field(60.0, gt=0)


class Limits(BaseModel):
    """Per endpoint (per client instance + endpoint key) politeness and timeouts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    concurrency: int = Field(8, ge=1)
    rate: float = Field(20.0, gt=0)  # requests per second, token bucket
    burst: int = Field(20, ge=1)
    connect_timeout: float = Field(5.0, gt=0)
    total_timeout: float = Field(30.0, gt=0)


class ReconcilePolicy(BaseModel):
    """How long to wait before believing that a call whose answer was lost did nothing.

    None of the five vendors documents an idempotency key or client token for its upgrade calls
    (CCE PySDK declares only ``Content-Type``; TaurusDB ``X-Language``/``Content-Type``; OCP and
    NAVER DSS name none — ../shared/seeds/vendor-facts.md), so a lost answer is reconciled by
    looking: not before ``settle_s`` after the call may last have been in flight (the vendor has
    had time to apply it and to list it), and only when two looks ``look_gap_s`` apart agree
    that nothing started. Real seconds. TaurusDB says a new job is queryable "after a few
    seconds"; the defaults leave a wide margin over that.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    settle_s: float = Field(60.0, ge=0)
    look_gap_s: float = Field(30.0, ge=0)


def read_secret(env_name: str) -> SecretStr:
    """The credential held in environment variable ``env_name``; ConfigError naming it when unset."""
    value = os.environ.get(env_name)
    if not value:
        raise ConfigError(env_name, "environment variable is not set (it should hold a credential)")
    register_secret(value)
    return SecretStr(value)


async def with_retry(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.monotonic,
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


class TokenBucket:
    """``rate`` requests per second on average, ``burst`` at once. Waiters are served in order."""

    def __init__(
        self, rate: float, burst: int, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
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
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await self._sleep((1 - self._tokens) / self.rate)


# One session per event loop: a session is bound to the loop it was created on, and a process may
# run several loops over its life (tests, the CLI). Weak keys let a dead loop take its entry along.
_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)


def get_session() -> aiohttp.ClientSession:
    """The process's shared session for the running loop, created on first use."""
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None or session.closed:
        # Pool size: the per-endpoint semaphores do the real limiting; this only caps the total.
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512), raise_for_status=False)
        _sessions[loop] = session
    return session


async def close_sessions() -> None:
    """Close the running loop's shared session (call on shutdown)."""
    loop = asyncio.get_running_loop()
    session = _sessions.pop(loop, None)
    if session is not None and not session.closed:
        await session.close()


def quote_segment(value: str) -> str:
    """One path segment, percent-encoded (``/`` included), for ids put into URL paths."""
    return quote(str(value), safe="~")


def encode_query(params: Params | None) -> str:
    """``k=v&...`` percent-encoded (``~`` safe), in the order given; names may repeat."""
    if not params:
        return ""
    pairs = params.items() if isinstance(params, Mapping) else params
    return "&".join(f"{quote(str(k), safe='~')}={quote(str(v), safe='~')}" for k, v in pairs)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds; None when absent or a date."""
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


@dataclass(slots=True)
class Response:
    """One HTTP answer, fully read."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    request_id: str | None = None
    _parsed: Any = field(default=None, repr=False)

    def json(self) -> Any:
        """The body parsed as JSON; None for an empty body."""
        if self._parsed is None and self.body:
            self._parsed = jsonlib.loads(self.body)
        return self._parsed


def error_for_status(
    vendor: str,
    status: int,
    *,
    code: str = "",
    message: str = "",
    request_id: str | None = None,
    retry_after: float | None = None,
) -> CloudError:
    """The generic mapping of an HTTP error status; vendors refine it with their codes first.

    500/502/504 may have been applied (the vendor answered after or while working on it);
    503 and 429 mean the request was turned away.
    """
    message = message or f"HTTP {status}"
    kw: dict[str, Any] = {"vendor": vendor, "code": code, "request_id": request_id, "status": status}
    if status == 429:
        return ThrottledError(message, retry_after=retry_after, **kw)
    if status >= 500:
        return TransientCloudError(message, maybe_applied=status != 503, retry_after=retry_after, **kw)
    if status in (401, 403):
        return AuthError(message, **kw)
    return PermanentCloudError(message, **kw)


class BaseClient:
    """Base of every vendor client. Subclasses set ``vendor`` and implement ``_sign``/``_raise_for``.

    ``_sign(method, url, headers, body)`` receives the final ``yarl.URL`` (already encoded: use
    ``url.raw_path``, ``url.raw_query_string``, ``url.host``, ``url.port``), the mutable header
    dict and the body bytes; it adds auth headers in place. It may be sync or ``async``.
    """

    vendor: ClassVar[str] = "cloud"
    #: Response headers that carry the vendor's request id, first found wins.
    request_id_headers: ClassVar[tuple[str, ...]] = ("X-Request-Id",)

    @classmethod
    def _parse(cls, model: type[M], data: Any) -> M:
        """A vendor answer read as ``model``; a shape we do not know is a PermanentCloudError."""
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise PermanentCloudError(
                f"unexpected {model.__name__} in answer: {exc.errors()[0]['msg']}",
                vendor=cls.vendor,
                code="bad_answer",
            ) from None

    def __init__(
        self,
        endpoint: str,
        *,
        limits: Limits | None = None,
        retry: RetryPolicy | None = None,
        reconcile: ReconcilePolicy | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.limits = limits or Limits()
        self.retry = retry or RetryPolicy()
        self.reconcile = reconcile or ReconcilePolicy()
        #: The vendor's clock as its last ``Date`` header gave it: (vendor epoch, our monotonic
        #: time at receipt). Vendors stamp their tasks in their own clock; see ``vendor_epoch``.
        self.last_date: tuple[float, float] | None = None
        self._session = session
        self._gates: dict[str, tuple[asyncio.Semaphore, TokenBucket]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint={self.endpoint!r})"

    @property
    def session(self) -> aiohttp.ClientSession:
        return self._session if self._session is not None else get_session()

    def _gate(self, key: str) -> tuple[asyncio.Semaphore, TokenBucket]:
        gate = self._gates.get(key)
        if gate is None:
            gate = (
                asyncio.Semaphore(self.limits.concurrency),
                TokenBucket(self.limits.rate, self.limits.burst),
            )
            self._gates[key] = gate
        return gate

    # -- vendor hooks -------------------------------------------------------------------------
    def _sign(self, method: str, url: URL, headers: dict[str, str], body: bytes) -> Awaitable[None] | None:
        """Add authentication headers in place. Default: none."""
        return None

    def _raise_for(self, response: Response) -> None:
        """Raise the typed error for an error answer. Default: the generic status mapping."""
        if response.status >= 400:
            raise error_for_status(
                self.vendor,
                response.status,
                request_id=response.request_id,
                retry_after=parse_retry_after(response.headers),
            )

    # -- the exchange -------------------------------------------------------------------------
    def _url(self, url_path: str, params: Params | None) -> URL:
        query = encode_query(params)
        return URL(self.endpoint + url_path + (f"?{query}" if query else ""), encoded=True)

    async def _send(
        self,
        method: str,
        url_path: str,
        *,
        endpoint_key: str,
        json: Any = None,
        params: Params | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """One HTTP exchange; raises the typed error for transport failures and error answers."""
        url = self._url(url_path, params)
        hdrs = dict(headers or {})
        body = b""
        if json is not None:
            body = jsonlib.dumps(json, separators=(",", ":"), ensure_ascii=False).encode()
            hdrs.setdefault("Content-Type", "application/json")
        semaphore, bucket = self._gate(endpoint_key)
        timeout = aiohttp.ClientTimeout(
            total=self.limits.total_timeout, sock_connect=self.limits.connect_timeout
        )
        async with semaphore:
            await bucket.acquire()
            signed = self._sign(method, url, hdrs, body)
            if inspect.isawaitable(signed):
                await signed
            started = time.monotonic()
            try:
                async with self.session.request(
                    method, url, data=body or None, headers=hdrs, timeout=timeout, allow_redirects=False
                ) as resp:
                    raw = await resp.read()
                    response = Response(resp.status, resp.headers, raw, self._request_id(resp.headers))
                    self._learn_date(resp.headers.get("Date"))
            except aiohttp.ConnectionTimeoutError as exc:
                raise self._transport_error("connect timeout", exc, applied=False) from None
            except aiohttp.ClientConnectorError as exc:
                raise self._transport_error("cannot connect", exc, applied=False) from None
            except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
                raise self._transport_error("timed out waiting for the answer", exc, applied=True) from None
            except aiohttp.ClientError as exc:
                # Disconnects, resets, truncated payloads: the request was (probably) sent.
                raise self._transport_error("connection lost", exc, applied=True) from None
        _log.debug(
            "cloud.http",
            vendor=self.vendor,
            method=method,
            path=url.raw_path,
            status=response.status,
            ms=round((time.monotonic() - started) * 1000, 2),
            request_id=response.request_id,
        )
        if response.status >= 400:
            self._raise_for(response)
        return response

    async def _call(
        self,
        method: str,
        url_path: str,
        *,
        endpoint_key: str,
        json: Any = None,
        params: Params | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool = True,
    ) -> Response:
        """``_send`` with retries per ``self.retry``; see ``with_retry`` for ``idempotent=False``."""
        return await with_retry(
            lambda: self._send(
                method, url_path, endpoint_key=endpoint_key, json=json, params=params, headers=headers
            ),
            self.retry,
            retry_applied=idempotent,
        )

    def _learn_date(self, value: str | None) -> None:
        if not value:
            return
        try:
            self.last_date = (parsedate_to_datetime(value).timestamp(), time.monotonic())
        except (TypeError, ValueError):
            pass  # a vendor's malformed Date teaches us nothing; keep the last good one

    def vendor_epoch(self, speed: float = 1.0) -> float | None:
        """The vendor's clock now, extrapolated from its last ``Date`` (``speed``: how fast the
        domain clock runs, 1 outside the simulator); None before the first answer."""
        if self.last_date is None:
            return None
        epoch, at = self.last_date
        return epoch + (time.monotonic() - at) * speed

    def _request_id(self, headers: Mapping[str, str]) -> str | None:
        for name in self.request_id_headers:
            value = headers.get(name)
            if value:
                return value
        return None

    def _transport_error(self, what: str, exc: BaseException, *, applied: bool) -> TransientCloudError:
        # The exception text may carry the host, never credentials; keep only its type for brevity.
        return TransientCloudError(
            f"{what} ({type(exc).__name__}) calling {self.endpoint}",
            vendor=self.vendor,
            code="transport",
            maybe_applied=applied,
        )
