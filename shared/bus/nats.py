"""The distributed bus: NATS JetStream (server 2.12+, for message schedules).

Layout, for namespace ``ns`` (stream names are the upper-cased namespace, so namespaces are
case-insensitive and ``x`` and ``x_dlq`` must not both be used):

* Stream ``NS`` holds ``ns.>``. An event lives on ``ns.<type, '.'→'_'>.<kind|_>.<stage|_>``, so a
  subscription's ``where`` on ``kind``/``stage`` is a subject filter; other ``where`` keys (and
  the type, in case two types map to one token) are checked here with ``matches()``; a
  non-matching message is acked and skipped. ``kind``/``stage`` are read like ``matches()`` does:
  the extension attribute, else the field of ``data``.
* Every publish carries ``Nats-Msg-Id`` = event id: the server drops a second publish of an id
  (``publish`` returns False). The stream's ``duplicate_window`` is 24 h because dedupe only
  holds inside it: a handler redelivered after a long ``RetryLater`` re-emits the same ids and
  they must still be dropped. The cost is one server-side map entry per event of the last 24 h.
* Delays use the server's message schedules: the event is stored on ``ns._delay.<hash of id>``
  with ``Nats-Schedule: @at <time>`` and the real subject as target; the server publishes it there
  when due (±0.25 s) and removes the schedule. Nothing consumes delivery attempts while waiting
  and no client-side scheduler has to be running. The dedupe id sits on the schedule message, so
  an id is accepted once whether it was sent now or later. Due times use this host's clock.
* Each ``Subscription`` is a durable pull consumer (name = sub name, made NATS-safe) with explicit
  ack, shared by every process that subscribes the same name (all workers fetch from it: each
  event goes to one of them; no queue-group push), ``ack_wait`` = lease, ``max_deliver`` = ``max_attempts`` + 1 and deliver policy *new*: like the
  SQLite bus, a consumer gets the events published after it was first registered.
* A handler's emitted events are published concurrently and every publish ack awaited **before**
  the input is acked. A failure naks with a backoff (always a delay: a plain nak redelivers at
  once). The last failing attempt writes a dead letter to stream ``NS_DLQ``, publishes
  ``event.deadlettered`` and terms the message; an event whose last attempt died with its process
  comes back once more (the spare delivery) and is dead-lettered the same way, unrun. ``NS_DLQ``
  also captures the server's max-deliveries advisories for ``NS`` (``dead_letters()`` fetches the
  original by stream sequence), for consumers made before the spare delivery existed.
* On a cluster (a URL listing several servers), both streams and every consumer have the URL's
  ``replicas``; the connection fails over to a surviving node and fetches, publishes and acks
  that fail meanwhile are retried (an ack lost so is a redelivery, which handlers absorb). A
  handler run that failed because the bus was unavailable (timeouts, no responders, no stream
  response while a leader is elected, 503) is run again in place, its lease renewed, for up to
  ``_OUTAGE_S``, not nak'ed: an outage of a few seconds must not spend its attempts and
  dead-letter it. A publish answered "duplicate message id is in process" (10158: the same id
  being stored by another publisher) is asked again until it is a plain duplicate.
* Deliveries reach their handlers the moment they arrive (:class:`shared.bus.pulling.Puller`,
  one pull request open per consumer for its free slots) and stay leased until settled:
  in-progress acks every ``ack_wait / 3`` from a thread with a connection of its own
  (:class:`shared.bus.pulling.LeaseKeeper`), so a handler that keeps the event loop busy past
  ``ack_wait`` is not redelivered (nor counted towards dead-lettering) while its process lives; a
  process that dies, or whose loop is frozen for ``_FROZEN_S``, stops renewing and the event is
  redelivered. A redelivery that still reaches the process handling it (a lease lost with a
  connection) is renewed and settled, not run a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import (
    ConnectionClosedError,
    ConnectionReconnectingError,
    NoRespondersError,
    OutboundBufferLimitError,
    StaleConnectionError,
)
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    PubAck,
    StorageType,
    StreamConfig,
)
from nats.js.errors import APIError, BadRequestError, NoStreamResponseError, NotFoundError

from events.codec import BadEvent, from_dict, from_json, to_json
from events.envelope import Event
from shared import crashpoints
from shared.bus.base import (
    DeadLetter,
    Delayed,
    Emitted,
    Subscription,
    backoff_delay,
    dead_letter_event,
    matches,
)
from shared.bus.jetstream import check_namespace, connect, name, read_all, token
from shared.bus.pulling import LeaseKeeper, Puller
from shared.errors import ConfigError, RetryLater
from shared.log import bind_correlation, get_logger
from shared.runtime import metrics

__all__ = ["NatsBus"]

log = get_logger("upshift.bus.nats")

DUPLICATE_WINDOW = 24 * 3600.0
#: Expiry of one pull request (deliveries go to handlers as they arrive, so this only bounds idle
#: traffic and how long a request lost with a connection is waited for).
_FETCH_WAIT = 1.0
#: Publish acks slower than this count as a failed publish (the handler's input is then retried).
_PUBLISH_TIMEOUT = 5.0
_MAX_BATCH = 256
_ADVISORY = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"
# A stream create that found the stream already there (with another config): update instead.
_STREAM_IN_USE = 10058
#: A publish whose Nats-Msg-Id another publish is still storing (a cluster's raft proposal in
#: flight): it is neither stored nor refused yet, so ask again (then it is a plain duplicate).
_DUPLICATE_IN_PROCESS = 10158
#: A consumer asking for more replicas than its stream has (yet: a scale-up is in progress).
_REPLICAS_EXCEED_STREAM = 10126
#: Errors that say the bus is unreachable or electing a leader, not that the handler is wrong.
_UNAVAILABLE = (
    NatsTimeout,
    NoRespondersError,
    NoStreamResponseError,
    ConnectionClosedError,
    ConnectionReconnectingError,
    StaleConnectionError,
    OutboundBufferLimitError,
)
#: How long a delivery whose handler met an unavailable bus is retried in place (not counted as
#: an attempt) before it is failed like any error: a node's loss costs a few seconds of election.
_OUTAGE_S = 60.0
_OUTAGE_RETRY_S = (0.25, 2.0)
#: An event loop that has not turned for this long (or 10 ack waits) is hung: leases lapse.
_FROZEN_S = 60.0


def _unavailable(exc: BaseException) -> bool:
    if isinstance(exc, APIError) and not isinstance(exc, _UNAVAILABLE):
        # 503: JetStream not ready (no leader yet); 10158: the same message id still in flight
        return exc.code == 503 or exc.err_code == _DUPLICATE_IN_PROCESS
    return isinstance(exc, _UNAVAILABLE)


def _attr(event: Event[Any], key: str) -> str | None:
    """The attribute ``matches()`` compares: the extension, else the ``data`` field."""
    got = getattr(event, key, None)
    if got is None:
        data = event.data
        # (a pydantic model without the field: getattr would go through its slow __getattr__)
        fields = getattr(type(data), "model_fields", None)
        if fields is None or key in fields:
            got = getattr(data, key, None)
    return got if isinstance(got, str) else None


class NatsBus:
    """JetStream implementation of :class:`shared.bus.base.Bus` (see the module docstring)."""

    def __init__(
        self, url: str, *, namespace: str = "upshift", ack_wait: float = 30.0, replicas: int = 1
    ) -> None:
        self.url = url
        #: of both streams and every durable consumer (3 on a 3-node cluster: a node may die)
        self.replicas = replicas
        self.namespace = check_namespace(namespace)
        self.ack_wait = ack_wait
        self.stream = namespace.upper()
        self.dlq_stream = f"{self.stream}_DLQ"
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._subs: dict[str, Subscription] = {}
        self._pulls: dict[str, Puller] = {}
        self._lock = asyncio.Lock()
        self._loops: list[asyncio.Task[None]] = []
        self._handlers: set[asyncio.Task[None]] = set()
        self._inflight: dict[str, int] = {}
        #: (consumer, stream seq) → [the newest delivery] of every message being handled here
        self._held: dict[tuple[str, int], list[Msg]] = {}
        self._leases = LeaseKeeper(
            lambda: connect(self.url), every=ack_wait / 3, frozen_after=max(_FROZEN_S, 10 * ack_wait)
        )
        self._room: dict[str, asyncio.Event] = {}
        self._want: dict[str, int] = {}  # consumer → wake its pull loop at this many in flight
        self._closed: asyncio.Event = asyncio.Event()

    # -- names ---------------------------------------------------------------------------------

    def subject_for(self, event: Event[Any]) -> str:
        kind, stage = _attr(event, "kind"), _attr(event, "stage")
        return ".".join(
            (
                self.namespace,
                event.type.replace(".", "_"),
                token(kind) if kind is not None else "_",
                token(stage) if stage is not None else "_",
            )
        )

    def filter_for(self, sub: Subscription) -> str:
        def part(key: str) -> str:
            return token(str(sub.where[key])) if key in sub.where else "*"

        return ".".join((self.namespace, sub.type.replace(".", "_"), part("kind"), part("stage")))

    @staticmethod
    def durable_for(sub_name: str) -> str:
        return name(sub_name)

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("NatsBus used before start()")
        return self._js

    async def start(self) -> None:
        """Connect, create/update both streams, then the consumers registered so far. Idempotent."""
        async with self._lock:
            if self._nc is None or self._nc.is_closed:
                nc = await connect(self.url)
                version = nc.connected_server_version
                if (version.major, version.minor) < (2, 12):
                    await nc.close()
                    raise ConfigError("bus url", f"nats-server {version} is too old: 2.12+ is needed")
                self._nc, self._js = nc, nc.jetstream()
                self._pulls.clear()
                await self._ensure_stream(
                    StreamConfig(
                        name=self.stream,
                        subjects=[f"{self.namespace}.>"],
                        storage=StorageType.FILE,
                        duplicate_window=DUPLICATE_WINDOW,
                        allow_msg_schedules=True,
                        num_replicas=self.replicas,
                    )
                )
                await self._ensure_stream(
                    StreamConfig(
                        name=self.dlq_stream,
                        subjects=[f"_dlq.{self.namespace}.>", f"{_ADVISORY}.{self.stream}.*"],
                        storage=StorageType.FILE,
                        duplicate_window=DUPLICATE_WINDOW,
                        num_replicas=self.replicas,
                    )
                )
            for sub in self._subs.values():
                if sub.name not in self._pulls:
                    await self._ensure_consumer(sub)

    async def _ensure_stream(self, config: StreamConfig) -> None:
        try:
            await self.js.add_stream(config)
        except BadRequestError as err:
            if err.err_code != _STREAM_IN_USE:
                raise
            await self.js.update_stream(config)

    async def _ensure_consumer(self, sub: Subscription) -> None:
        durable = self.durable_for(sub.name)
        config = ConsumerConfig(
            name=durable,
            durable_name=durable,
            description=sub.name,
            deliver_policy=DeliverPolicy.NEW,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            # One delivery more than attempts: a process that died in its last attempt leaves the
            # event to a spare delivery, which dead-letters it (and ends its run) without running it.
            max_deliver=sub.max_attempts + 1,
            filter_subject=self.filter_for(sub),
            max_ack_pending=max(1000, sub.concurrency * 4),
            num_replicas=self.replicas,
        )
        # CONSUMER.CREATE creates, or updates the editable fields of an existing durable. A stream
        # just updated to more replicas scales up in the background; until it has, a consumer
        # with as many is refused (10126), so ask again for a while.
        for tries in range(1, 101):
            try:
                await self.js.add_consumer(self.stream, config)
                break
            except BadRequestError as err:
                if err.err_code != _REPLICAS_EXCEED_STREAM or tries == 100:
                    raise
                await asyncio.sleep(0.1)
        assert self._nc is not None
        puller = Puller(self._nc, self.stream, durable, lambda msg: self._arrived(sub, msg))
        await puller.start()
        self._pulls[sub.name] = puller

    async def close(self) -> None:
        """Stop fetching, let running handlers finish (and ack), then flush and close the connection."""
        self._closed.set()
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops.clear()
        # (deliveries arriving from here on are nak'ed by _arrived: redelivered now, not after ack_wait)
        while self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        await asyncio.to_thread(self._leases.stop)
        # Drop the inboxes: the server forgets pull requests nobody listens to any more.
        for pull in self._pulls.values():
            await pull.stop()
        nc, self._nc, self._js = self._nc, None, None
        self._pulls.clear()
        if nc is not None and not nc.is_closed:
            # flush, not drain: drain waits for unread messages of every subscription, and a
            # closed inbox can leave some behind; acks and naks only need to be written out.
            with contextlib.suppress(Exception):
                await nc.flush(timeout=2)
            await nc.close()

    # -- publishing ----------------------------------------------------------------------------

    async def publish(self, event: Event[Any], *, delay: float = 0.0) -> bool:
        if self._js is None:
            await self.start()
        subject, payload, headers = self._message(event, delay)
        for tries in range(1, 11):
            try:
                ack = await self.js.publish(subject, payload, headers=headers, timeout=_PUBLISH_TIMEOUT)
            except APIError as err:
                if err.err_code != _DUPLICATE_IN_PROCESS or tries == 10:
                    raise
                await asyncio.sleep(0.05 * tries)  # (another process publishes the same id: a tick)
                continue
            return not ack.duplicate
        raise AssertionError("unreachable")

    def _message(self, event: Event[Any], delay: float) -> tuple[str, bytes, dict[str, str]]:
        subject = self.subject_for(event)
        headers = {"Nats-Msg-Id": event.id}
        if delay <= 0:
            return subject, to_json(event).encode(), headers
        due = datetime.now(UTC) + timedelta(seconds=delay)
        headers["Nats-Schedule"] = "@at " + due.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        headers["Nats-Schedule-Target"] = subject
        # One schedule per subject: a per-event subject keeps two schedules from replacing each other.
        schedule = f"{self.namespace}._delay.{hashlib.sha256(event.id.encode()).hexdigest()[:32]}"
        return schedule, to_json(event).encode(), headers

    async def _publish_all(self, emitted: Iterable[Emitted]) -> None:
        """Publish every emitted event at once (pipelined), returning once all are stored."""
        futures: list[asyncio.Future[PubAck]] = []
        for item in emitted:
            event, delay = (item.event, item.delay) if isinstance(item, Delayed) else (item, 0.0)
            subject, payload, headers = self._message(event, delay)
            futures.append(await self.js.publish_async(subject, payload, headers=headers))
        if not futures:
            return
        # One timer for them all (asyncio.timeout + gather cost ~20 µs per delivery, a tenth of it)
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            for future in futures:
                future.cancel()

        timer = asyncio.get_running_loop().call_later(_PUBLISH_TIMEOUT, expire)
        try:
            for future in futures:
                await future
        except asyncio.CancelledError:
            if expired:  # no acknowledgement: the bus is away (the caller retries in place)
                raise NatsTimeout from None
            raise
        finally:
            timer.cancel()
            for future in futures:  # the rest of a failed batch: not waited for, errors dropped
                if not future.done():
                    future.cancel()
                elif not future.cancelled():
                    future.exception()

    # -- consuming -----------------------------------------------------------------------------

    def subscribe(self, sub: Subscription) -> None:
        if sub.handler is None:
            raise ValueError(f"subscription {sub.name!r} has no handler")
        self._subs[sub.name] = sub
        self._pulls.pop(sub.name, None)  # (re)created with this config by start()/run()

    async def run(self) -> None:
        await self.start()
        self._closed.clear()
        self._loops = [asyncio.create_task(self._consume(sub)) for sub in self._subs.values()]
        self._loops.append(asyncio.create_task(self._beat()))
        try:
            await self._closed.wait()
        except asyncio.CancelledError:
            # run() cancelled without close(): stop fetching (running handlers finish on their own).
            for task in self._loops:
                task.cancel()
            raise

    async def _consume(self, sub: Subscription) -> None:
        """Keep one pull request open for the free slots (see :class:`Puller`). After a request
        that came back full (a backlog) the next waits for half the slots, so a busy consumer
        asks in batches rather than once per finished handler."""
        pull = self._pulls[sub.name]
        self._inflight.setdefault(sub.name, 0)
        room = self._room.setdefault(sub.name, asyncio.Event())
        low = max(1, min(sub.concurrency, _MAX_BATCH) // 2)
        loop = asyncio.get_running_loop()
        backlog = False
        while True:
            free = sub.concurrency - self._inflight[sub.name]
            need = low if backlog else 1
            if free < need:  # woken by _handle once that many slots are free, not at every one
                self._want[sub.name] = sub.concurrency - need
                room.clear()
                await room.wait()
                continue
            batch = min(free, _MAX_BATCH)
            asked = loop.time()
            try:
                got = await pull.pull(batch, _FETCH_WAIT)
            except Exception as exc:  # disconnected / reconnecting: try again shortly
                log.debug("pull request failed", consumer=sub.name, error=repr(exc))
                await asyncio.sleep(0.25)
                continue
            backlog = got == batch
            if not got and loop.time() - asked < _FETCH_WAIT / 2:
                await asyncio.sleep(0.25)  # refused at once (a 409 of some kind): do not spin

    def _arrived(self, sub: Subscription, msg: Msg) -> None:
        """A delivery: handle it in a task of its own, leased from now on. A redelivery of a
        message this process is still handling (its lease lapsed anyway) is not run again: its
        newer delivery is renewed and settled instead (only the newest delivery's in-progress
        acks count), and it is not an attempt."""
        try:
            key = (sub.name, msg.metadata.sequence.stream)
        except Exception:  # not a JetStream delivery (nothing to ack)
            return
        held = self._held.get(key)
        if held is not None:  # (even when closing: a nak would hand it to another worker now)
            self._leases.hold(key, msg.reply)
            held[0] = msg
            return
        if self._closed.is_set():  # closing: give it back at once
            self._spawn(msg.nak())
            return
        self._leases.hold(key, msg.reply)
        self._held[key] = [msg]
        self._inflight[sub.name] += 1
        self._spawn(self._handle(sub, key))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _beat(self) -> None:
        """Tell the lease keeper the event loop turns (a frozen one's leases are left to lapse)."""
        while True:
            self._leases.beat()
            await asyncio.sleep(self.ack_wait / 3)

    async def _handle(self, sub: Subscription, key: tuple[str, int]) -> None:
        try:
            await self._deliver(sub, key)
        except Exception as exc:  # ack/nak lost with the connection: ack_wait redelivers it
            log.warning("could not settle a delivery", consumer=sub.name, error=repr(exc))
        finally:
            self._held.pop(key, None)
            self._leases.release(key)
            self._inflight[sub.name] -= 1
            if self._inflight[sub.name] <= self._want.get(sub.name, 0):
                self._room[sub.name].set()

    async def _deliver(self, sub: Subscription, key: tuple[str, int]) -> None:
        held = self._held[key]  # [the newest delivery]: what is settled (see _arrived)
        msg = held[0]
        try:
            event = from_json(msg.data)
        except BadEvent as exc:
            log.error("undecodable event dropped", consumer=sub.name, subject=msg.subject, error=str(exc))
            await msg.term()
            return
        if not matches(event, sub.type, sub.where):
            await msg.ack()
            return
        attempt = msg.metadata.num_delivered
        if attempt > 1:
            log.info("redelivered", consumer=sub.name, attempt=attempt, event_id=event.id)
        if attempt > sub.max_attempts:  # the last attempt's process died before it could settle
            died = RuntimeError("max deliveries reached without an ack (the handler's process died or hung)")
            await self._failed(sub, held[0], event, attempt, died)
            return
        # Each delivery runs in its own task, hence its own context copy: binding the
        # correlation fields here needs no unbinding (what bind_event does, minus the undo).
        bind_correlation(event)
        loop = asyncio.get_running_loop()
        outage_ends, pause = loop.time() + _OUTAGE_S, _OUTAGE_RETRY_S[0]
        emitted: list[Emitted] | None = None
        while True:
            try:
                if emitted is None:  # once it returned, only its publishing is retried here
                    emitted = list(await sub.handler(event) or [])  # type: ignore[misc]
                crashpoints.hit("outbox.before_commit")
                if emitted:
                    await self._publish_all(emitted)
                break
            except Exception as exc:  # any failure (handler or publishing its output) means "retry"
                if _unavailable(exc) and loop.time() < outage_ends:
                    # The bus is away (a node lost, a leader being elected): run the delivery
                    # again here, as a redelivery would, without spending one of its attempts
                    # (a few seconds of election must not dead-letter it). Its lease is renewed.
                    if self._closed.is_set():
                        return  # unsettled: redelivered after ack_wait
                    log.info("bus unavailable; retrying in place", consumer=sub.name, error=repr(exc))
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, _OUTAGE_RETRY_S[1])
                    continue
                # the newest delivery's count: a redelivery that reached us meanwhile counts
                await self._failed(sub, held[0], event, max(attempt, held[0].metadata.num_delivered), exc)
                return
        crashpoints.hit("outbox.published")
        await held[0].ack()

    async def _failed(
        self, sub: Subscription, msg: Msg, event: Event[Any], attempt: int, exc: Exception
    ) -> None:
        text = f"{type(exc).__name__}: {exc}"[:2000]
        if attempt >= sub.max_attempts:
            try:
                await self._write_dead_letter(sub, msg, event, attempt, text)
                notice = dead_letter_event(sub.name, event, attempt, text)
                if notice is not None:  # before the term: its run is ended, not left open
                    await self.publish(notice)
            except Exception as err:  # a nak on the last attempt raises the advisory instead
                log.error("dead letter not written", consumer=sub.name, error=repr(err))
                await msg.nak(delay=1.0)
                return
            log.error("dead-lettered", consumer=sub.name, attempts=attempt, error=text)
            metrics.dead_letter(sub.name)
            await msg.term()
            return
        if isinstance(exc, RetryLater):
            delay = exc.delay
        else:
            delay = backoff_delay(attempt, sub.backoff_base, sub.max_backoff)
        metrics.bus_retry(sub.name)
        log.warning(
            "handler failed; will retry",
            consumer=sub.name,
            attempt=attempt,
            retry_in=round(delay, 3),
            error=text,
        )
        await msg.nak(delay=max(delay, 0.001))

    async def _write_dead_letter(
        self, sub: Subscription, msg: Msg, event: Event[Any], attempt: int, text: str
    ) -> None:
        durable = self.durable_for(sub.name)
        seq = msg.metadata.sequence.stream
        record = {
            "consumer": sub.name,
            "attempts": attempt,
            "error": text,
            "stream_seq": seq,
            "event": event.to_wire(),
        }
        await self.js.publish(
            f"_dlq.{self.namespace}.{durable}",
            json.dumps(record).encode(),
            headers={"Nats-Msg-Id": f"dlq:{durable}:{seq}"},
            timeout=_PUBLISH_TIMEOUT,
        )

    # -- inspection ----------------------------------------------------------------------------

    async def dead_letters(self) -> list[DeadLetter]:
        """Dead letters written by handlers, plus max-deliveries advisories not already covered."""
        if self._js is None:
            await self.start()
        written: list[dict[str, Any]] = []
        advisories: list[dict[str, Any]] = []
        for subject, data in await self._read_stream(self.dlq_stream):
            (advisories if subject.startswith(_ADVISORY) else written).append(json.loads(data))
        letters = [
            DeadLetter(
                consumer=r["consumer"], event=from_dict(r["event"]), attempts=r["attempts"], error=r["error"]
            )
            for r in written
        ]
        covered = {(self.durable_for(r["consumer"]), r["stream_seq"]) for r in written}
        names = {self.durable_for(n): n for n in self._subs}
        for adv in advisories:
            key = (adv["consumer"], adv["stream_seq"])
            if key in covered:
                continue
            covered.add(key)
            try:
                raw = await self.js.get_msg(self.stream, adv["stream_seq"])
                event = from_json(raw.data or b"")
            except (NotFoundError, BadEvent):
                log.warning("dead letter's event is gone", consumer=adv["consumer"], seq=adv["stream_seq"])
                continue
            letters.append(
                DeadLetter(
                    consumer=names.get(adv["consumer"]) or await self._sub_name(adv["consumer"]),
                    event=event,
                    attempts=int(adv.get("deliveries", 0)),
                    error="max deliveries reached without an ack (the handler's process died or hung)",
                )
            )
        return letters

    async def _sub_name(self, durable: str) -> str:
        try:
            info = await self.js.consumer_info(self.stream, durable)
        except NotFoundError:
            return durable
        return info.config.description or durable

    async def _read_stream(self, stream: str) -> list[tuple[str, bytes]]:
        """Every message of ``stream`` in order (all of them: see ``read_all``)."""
        return [(m.subject, m.data) for m in await read_all(self.js, stream)]

    async def pending(self) -> int:
        """Deliveries not yet acknowledged, for all consumers, plus delayed events not yet due."""
        if self._js is None:
            await self.start()
        total = 0
        for info in await self.js.consumers_info(self.stream):
            total += (info.num_pending or 0) + (info.num_ack_pending or 0)
        delayed = await self.js.stream_info(self.stream, subjects_filter=f"{self.namespace}._delay.>")
        total += sum((delayed.state.subjects or {}).values())
        return total
