"""Helpers shared by the NATS bus and the NATS KV store: connecting, NATS-safe names, and
reading a stream (or the last message per subject) completely.

Subject tokens, stream, consumer and bucket names have small alphabets; everything we put in
them goes through :func:`token` (subject tokens) or :func:`name` (stream/consumer/bucket names),
both injective so two different inputs never share a subject or a consumer.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from shared.bus.url import servers_of
from shared.errors import ConfigError
from shared.log import get_logger

__all__ = ["check_namespace", "connect", "last_headers", "name", "read_all", "token"]

log = get_logger("upshift.bus.nats")

_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_TOKEN_SAFE = re.compile(r"[A-Za-z0-9_:\-]")
_TOKEN_ALL_SAFE = re.compile(r"^[A-Za-z0-9_:\-]+$")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_namespace(namespace: str) -> str:
    """The namespace prefixes stream, subject and bucket names, so it must be a plain token."""
    if not _NAMESPACE.match(namespace):
        raise ConfigError(
            "namespace", f"{namespace!r}: 1-64 of letters, digits, '_' or '-', starting alphanumeric"
        )
    return namespace


def token(value: str) -> str:
    """One subject token for ``value``: characters outside ``[A-Za-z0-9_:-]`` become ``=XX``.

    Event extension values may contain '.', which would split the token; '=' never occurs in a
    valid value, so the mapping is injective. The empty string maps to ``=`` (still a token).
    """
    if not value:
        return "="
    if _TOKEN_ALL_SAFE.match(value):
        return value
    return "".join(ch if _TOKEN_SAFE.match(ch) else "".join(f"={b:02X}" for b in ch.encode()) for ch in value)


def name(value: str) -> str:
    """A stream/consumer/bucket-safe name: ``value`` itself when already safe, else a readable
    prefix plus a hash of the whole (so distinct unsafe values stay distinct)."""
    if _NAME.match(value):
        return value
    readable = re.sub(r"[^A-Za-z0-9_-]", "-", value)[:40]
    return f"{readable}-{hashlib.sha256(value.encode()).hexdigest()[:16]}"


async def connect(url: str) -> Client:
    """A connection that keeps reconnecting forever: a restarted server is waited for, not fatal.

    ``url`` may list several servers (``nats://a:1,b:2``, as ``BusUrl.location`` has it):
    the client connects to one and, when it goes away, reconnects to any other of them (or of the
    cluster's members the server announced). Publishes made while disconnected are buffered by
    nats-py and their acks time out, so callers see an error (and retry) rather than a hang.
    """
    servers = servers_of(url)

    async def on_error(exc: Exception) -> None:
        # nats-py's default logs a traceback per failed reconnect attempt: connection failures
        # are one quiet line here (the disconnect itself is logged once); anything else warns.
        lost = isinstance(exc, OSError | nats.errors.StaleConnectionError | nats.errors.TimeoutError)
        (log.debug if lost else log.warning)("nats connection error", error=repr(exc))

    client: list[Client] = []

    async def on_disconnected() -> None:
        if client and (client[0].is_closed or client[0].is_draining):
            return  # our own close()
        log.warning("nats disconnected; reconnecting", servers=len(servers))

    async def on_reconnected() -> None:
        log.info("nats reconnected")

    nc = await nats.connect(
        servers=servers,
        error_cb=on_error,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
        max_reconnect_attempts=-1,
        # short: a killed node's clients move to a survivor at once (the pool is tried in turn,
        # each server waited for this long only after a failed attempt on it)
        reconnect_time_wait=0.25,
        allow_reconnect=True,
        connect_timeout=5,
        name="upshift",
    )
    client.append(nc)
    return nc


async def read_all(
    js: JetStreamContext,
    stream: str,
    subject: str = ">",
    *,
    last_per_subject: bool = False,
    headers_only: bool = False,
    limit: float = 60.0,
) -> list[Msg]:
    """Every message of ``stream`` on ``subject`` (or its last one per subject), in order.

    How many there are is read from the ephemeral consumer's own pending count when it is made,
    and exactly that many are fetched: neither a per-message ``num_pending`` of 0 (which can
    reach 0 and rise again, nats.py #842/#995 — ``KeyValue.keys()`` returns partial lists so)
    nor a fetch that timed out on a busy server ends the read early. TimeoutError after ``limit``.
    """
    policy = DeliverPolicy.LAST_PER_SUBJECT if last_per_subject else DeliverPolicy.ALL
    config = ConsumerConfig(
        ack_policy=AckPolicy.NONE,
        deliver_policy=policy,
        headers_only=headers_only or None,
        inactive_threshold=30.0,
        mem_storage=True,
    )
    pull = await js.pull_subscribe(subject, stream=stream, config=config)
    out: list[Msg] = []
    try:
        info = await pull.consumer_info()
        want = int(info.num_pending or 0)
        deadline = time.monotonic() + limit
        while len(out) < want:
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {len(out)} of {want} messages of {stream} in {limit:.0f}s")
            try:
                out.extend(await pull.fetch(batch=min(256, want - len(out)), timeout=2.0))
            except TimeoutError:
                continue
    finally:
        with contextlib.suppress(Exception):
            await pull.unsubscribe()
    return out


async def last_headers(
    js: JetStreamContext, stream: str, subject: str, subjects: set[str], *, limit: float = 60.0
) -> dict[str, str | None]:
    """The ``KV-Operation`` header of the last message of each of ``subjects`` (None for a put).

    Read with a last-per-subject consumer until every subject has been seen once: a subject
    rewritten meanwhile shows its newer message instead (bucket history 1 drops the old one),
    which is as current. TimeoutError after ``limit``."""
    config = ConsumerConfig(
        ack_policy=AckPolicy.NONE,
        deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
        headers_only=True,
        inactive_threshold=30.0,
        mem_storage=True,
    )
    pull = await js.pull_subscribe(subject, stream=stream, config=config)
    seen: dict[str, str | None] = {}
    try:
        deadline = time.monotonic() + limit
        while len(seen) < len(subjects):
            if time.monotonic() > deadline:
                raise TimeoutError(f"saw {len(seen)} of {len(subjects)} subjects of {stream} in {limit:.0f}s")
            try:
                msgs = await pull.fetch(batch=256, timeout=2.0)
            except TimeoutError:
                continue
            for m in msgs:
                if m.subject in subjects:
                    seen[m.subject] = (m.headers or {}).get("KV-Operation")
    finally:
        with contextlib.suppress(Exception):
            await pull.unsubscribe()
    return seen
