"""``BaseClient``, what every vendor client stands on: one HTTP exchange done right, retried right.

* ``BaseClient._send`` makes exactly one HTTP exchange: per-endpoint concurrency limit, token-bucket
  rate limit (``shared.clouds.limits``), connect/total timeouts, the vendor's ``_sign`` hook right
  before sending, transport errors mapped to typed errors, and the vendor's ``_raise_for`` hook
  mapping status + body (default ``shared.clouds.response.error_for_status``).
* ``BaseClient._call`` is ``_send`` inside ``shared.clouds.retry.with_retry``: transient errors
  are retried with backoff, never past the deadline, and a non-idempotent call
  (``idempotent=False``) is not retried once it may have reached the vendor.
* ``ReconcilePolicy`` says how long a caller waits before believing a lost answer did nothing.
* Every exchange is counted and timed by vendor, endpoint key and outcome
  (:func:`shared.runtime.metrics.vendor_call`).
* The client learns the vendor's clock from each ``Date`` header (``vendor_epoch``): vendors stamp
  their tasks in their own clock.

Clients share the running loop's session (``shared.clouds.sessions``) unless given one.
"""

from __future__ import annotations

import asyncio
import inspect
import json as jsonlib
import time
from collections.abc import Awaitable, Mapping
from email.utils import parsedate_to_datetime
from typing import ClassVar, TypeVar

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from yarl import URL

from shared.clouds.errors import PermanentCloudError, TransientCloudError
from shared.clouds.limits import Limits, TokenBucket
from shared.clouds.response import Response, error_for_status
from shared.clouds.retry import RetryPolicy, parse_retry_after, with_retry
from shared.clouds.sessions import get_session
from shared.clouds.urls import Params, encode_query
from shared.log import get_logger
from shared.runtime import metrics

__all__ = ["BaseClient", "JsonObject", "ReconcilePolicy"]

M = TypeVar("M", bound=BaseModel)
#: A JSON request body: an object, sent as compact UTF-8 JSON.
JsonObject = Mapping[str, object]

_log = get_logger("upshift.clouds")


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
    def _parse(cls, model: type[M], data: object) -> M:
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
        json: JsonObject | None = None,
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
            with metrics.vendor_call(self, endpoint_key) as call:  # counted and timed, by outcome
                try:
                    async with self.session.request(
                        method, url, data=body or None, headers=hdrs, timeout=timeout, allow_redirects=False
                    ) as resp:
                        raw = await resp.read()
                        response = Response(resp.status, resp.headers, raw, self._request_id(resp.headers))
                        call.status = resp.status
                        self._learn_date(resp.headers.get("Date"))
                except aiohttp.ConnectionTimeoutError as exc:
                    raise self._transport_error("connect timeout", exc, applied=False) from None
                except aiohttp.ClientConnectorError as exc:
                    raise self._transport_error("cannot connect", exc, applied=False) from None
                except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
                    raise self._transport_error(
                        "timed out waiting for the answer", exc, applied=True
                    ) from None
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
        json: JsonObject | None = None,
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
