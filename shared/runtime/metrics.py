"""Prometheus metrics: every metric's definition, the helpers that record them, ``GET /metrics``.

One process-wide :class:`prometheus_client.CollectorRegistry`, owned here (not the library's
global one): :func:`reset` gives tests a fresh one. Base units, ``_total`` on counters, label
values from bounded sets only — never a run or target id (those go in the logs).

Recorded where the event happens (one call each):

* ``upshift_vendor_calls_total{vendor, operation, outcome}`` and
  ``upshift_vendor_call_duration_seconds{vendor, operation}`` — every HTTP exchange of a vendor
  client (:meth:`shared.clouds.client.BaseClient._send`, :func:`vendor_call`). ``vendor`` is the
  client's vendor and service (``huawei-cce``, ``huawei-autopilot``, ``huawei-taurusdb``,
  ``huawei`` for IAM, ``ocp``, ``ncloud``), ``operation`` its endpoint key (``upgrade``,
  ``tasks``, …), ``outcome`` one of :data:`OUTCOMES`. A retried call counts each exchange.
* ``upshift_stage_duration_seconds{kind, stage, outcome}`` — when ``advance`` takes a stage's
  outcome (:func:`stage_ended`): from the ledger's ``started_at`` to ``ended_at`` of the stage
  (domain seconds; 0 for a synchronous stage, which has no start), ``outcome`` ``succeeded`` /
  ``failed`` / ``cancelled``.
* ``upshift_bus_deliveries_total{function, outcome}`` (``ok``/``error``: the handler returned
  or raised — a ``RetryLater`` too), by the host (:func:`delivery`);
  ``upshift_bus_retries_total{function}`` and ``upshift_dead_letters_total{function}`` by the bus
  backends when they schedule a redelivery or give up (:func:`bus_retry`, :func:`dead_letter`).
  ``function`` is the manifest's function (a second trigger's consumer ``notify_2`` counts as
  ``notify``: :func:`name_consumer`).

Counters count what *this process* did: with at-least-once delivery a redelivered handler
(a replay) may record its stage outcome again, so they can run slightly ahead of the ledger.

State, read from the store when ``/metrics`` is scraped (:func:`refresh`; the store is async and
a collector is not, so the handler computes them just before rendering — no background loop):
``upshift_runs{state}`` (every :class:`~shared.store.ledger.RunState`, 0 included),
``upshift_approvals_pending`` (runs awaiting approval), ``upshift_jobs_in_flight`` (stages of
running runs waiting on a vendor job) and ``upshift_windows_open`` (fleet windows open now). They
are the store's, so every process sharing it shows the same values (aggregate with ``max``).

The first three count the whole ledger, so a route keeps them :data:`LEDGER_TTL_S` seconds
(:class:`LedgerCounts`, monotonic time): scrapes within that — several Prometheus servers, a
short scrape interval — read the ledger once, and a scrape costs a ledger read per TTL however
often it comes. Those gauges may thus lag the ledger by up to the TTL; ``upshift_windows_open``
(the fleet and the clock only) is computed at every scrape.

``GET /metrics`` (:func:`add_metrics_route`; ``upshift serve``'s app and the small app of
``upshift worker --metrics-port``, :func:`serve_metrics`): the text exposition format; open
unless the fleet says ``metrics: {require_token: true}``, then a bearer token of ``auth.tokens``
(any role) or 401.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from aiohttp import web

    from shared.domain.fleet import Fleet
    from shared.runtime.host import Runtime
    from shared.store import Store

__all__ = [
    "LEDGER_TTL_S",
    "OUTCOMES",
    "LedgerCounts",
    "Metrics",
    "add_metrics_route",
    "bus_retry",
    "dead_letter",
    "delivery",
    "metrics",
    "name_consumer",
    "refresh",
    "render",
    "reset",
    "serve_metrics",
    "stage_ended",
    "vendor_call",
]

#: How long one read of the ledger serves the scrapes after it (seconds; see the module docstring).
LEDGER_TTL_S = 5.0
#: A vendor call's outcome: answered 2xx/3xx, 4xx (but 429), 5xx, 429, or no answer at all.
OUTCOMES = ("ok", "client_error", "server_error", "throttled", "network")
#: Vendor round trips: milliseconds to the clients' total timeout (30 s by default).
_CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Stages, in domain seconds: a check takes seconds, an upgrade an hour or more.
_STAGE_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0)


class Metrics:
    """The registry and every metric in it (one instance per process, :func:`metrics`)."""

    def __init__(self) -> None:
        # prometheus_client here, not at the top: the bus backends import this module, and a
        # deployed function that records nothing must not pay its import (~25 ms) on a cold start
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

        # no ``*_created`` series: they double the output and say only when this process started
        disable_created_metrics()  # type: ignore[no-untyped-call]
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.vendor_calls = Counter(
            "upshift_vendor_calls",
            "HTTP exchanges with a vendor API, by outcome (each retry counts).",
            ["vendor", "operation", "outcome"],
            registry=r,
        )
        self.vendor_call_duration = Histogram(
            "upshift_vendor_call_duration_seconds",
            "Time from sending a vendor request to having read its answer (or losing it).",
            ["vendor", "operation"],
            buckets=_CALL_BUCKETS,
            registry=r,
        )
        self.stage_duration = Histogram(
            "upshift_stage_duration_seconds",
            "How long a stage took, from its start to its outcome in the ledger (domain time).",
            ["kind", "stage", "outcome"],
            buckets=_STAGE_BUCKETS,
            registry=r,
        )
        self.deliveries = Counter(
            "upshift_bus_deliveries",
            "Events handed to a function by the bus, by how the handler ended.",
            ["function", "outcome"],
            registry=r,
        )
        self.retries = Counter(
            "upshift_bus_retries",
            "Deliveries the bus will make again after a handler failed.",
            ["function"],
            registry=r,
        )
        self.dead_letters = Counter(
            "upshift_dead_letters",
            "Events a function's consumer gave up on after its last attempt.",
            ["function"],
            registry=r,
        )
        self.runs = Gauge("upshift_runs", "Runs in the ledger, by state.", ["state"], registry=r)
        self.approvals_pending = Gauge(
            "upshift_approvals_pending", "Runs waiting for people to approve them.", registry=r
        )
        self.jobs_in_flight = Gauge(
            "upshift_jobs_in_flight", "Stages of running runs waiting on a vendor job.", registry=r
        )
        self.windows_open = Gauge("upshift_windows_open", "Maintenance windows open now.", registry=r)
        #: bus consumer name → the function it delivers to (``notify_2`` → ``notify``)
        self.consumers: dict[str, str] = {}


_metrics: Metrics | None = None  # made on first use (see Metrics.__init__)
_making = threading.Lock()  # two threads recording first must not make two registries


def metrics() -> Metrics:
    """This process's metrics."""
    global _metrics
    if _metrics is None:
        with _making:
            if _metrics is None:
                _metrics = Metrics()
    return _metrics


def reset() -> Metrics:
    """A fresh registry with every metric at zero (tests); the consumer names are kept."""
    global _metrics
    consumers = metrics().consumers
    _metrics = fresh = Metrics()
    fresh.consumers = consumers
    return fresh


# -- recording ---------------------------------------------------------------------------------


class _VendorClient(Protocol):
    @property
    def vendor(self) -> str: ...


@dataclass(slots=True)
class _Call:
    """What :func:`vendor_call` learns inside its block: the answer's status, if one came."""

    status: int | None = None


def _vendor_label(client: _VendorClient) -> str:
    service = getattr(client, "service", None)
    return f"{client.vendor}-{service}" if isinstance(service, str) and service else client.vendor


def _outcome(status: int | None) -> str:
    if status is None:
        return "network"
    if status == 429:
        return "throttled"
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "ok"


@contextmanager
def vendor_call(client: _VendorClient, operation: str) -> Iterator[_Call]:
    """Time one HTTP exchange of ``client``; set ``.status`` once the answer is read. A block
    left without a status is ``network``; one cancelled (shutdown) is not recorded."""
    call = _Call()
    started = time.monotonic()
    try:
        yield call
    except asyncio.CancelledError:
        raise
    except BaseException:  # lost before its answer was read: network (else what it answered)
        _record_call(client, operation, call.status, started)
        raise
    else:
        _record_call(client, operation, call.status, started)


def _record_call(client: _VendorClient, operation: str, status: int | None, started: float) -> None:
    vendor = _vendor_label(client)
    metrics().vendor_calls.labels(vendor, operation, _outcome(status)).inc()
    metrics().vendor_call_duration.labels(vendor, operation).observe(time.monotonic() - started)


def name_consumer(consumer: str, function: str) -> None:
    """Bus consumer ``consumer`` delivers to ``function`` (its label in the bus metrics)."""
    metrics().consumers[consumer] = function


def _function(consumer: str) -> str:
    return metrics().consumers.get(consumer, consumer)


@contextmanager
def delivery(function: str) -> Iterator[None]:
    """One delivery to ``function``'s handler: ``ok`` when the block returns, ``error`` when it
    raises (cancellation is not a delivery's end: not recorded)."""
    try:
        yield
    except asyncio.CancelledError:
        raise
    except BaseException:
        metrics().deliveries.labels(function, "error").inc()
        raise
    else:
        metrics().deliveries.labels(function, "ok").inc()


def bus_retry(consumer: str) -> None:
    """The bus will deliver to ``consumer`` again after a failure."""
    metrics().retries.labels(_function(consumer)).inc()


def dead_letter(consumer: str) -> None:
    """The bus gave up delivering an event to ``consumer``."""
    metrics().dead_letters.labels(_function(consumer)).inc()


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def stage_ended(kind: str, stage: str | None, code: str | None, run: dict[str, Any], now: datetime) -> None:
    """A stage's outcome taken by ``advance``: ``code`` None for success (``cancelled``: it was
    cancelled before it began). Its duration is the ledger's ``started_at`` → ``ended_at`` (``now``
    when not noted; 0 without a start); a stage the ledger never noted is not observed."""
    if stage is None:
        return
    entry = (run.get("stages") or {}).get(stage)
    if not isinstance(entry, dict):
        return
    ended = _instant(entry.get("ended_at")) or now
    started = _instant(entry.get("started_at")) or ended
    outcome = "succeeded" if code is None else ("cancelled" if code == "cancelled" else "failed")
    seconds = max(0.0, (ended - started).total_seconds())
    metrics().stage_duration.labels(kind, stage, outcome).observe(seconds)


# -- state, at scrape time ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Counted:
    """What the ledger-derived gauges show: runs by state, and stages waiting on a vendor job."""

    runs: dict[str, int]
    jobs: int


async def _count(store: Store) -> _Counted:
    # here, not at the top: every vendor client imports this module, and the domain imports them
    from shared.store.ledger import RunState

    counts = dict.fromkeys(RunState, 0)
    jobs = 0
    for run in await store.ledger.runs():
        try:
            state = RunState(str(run.get("state")))
        except ValueError:
            continue  # a state this version does not know is no series of ours
        counts[state] += 1
        if state == RunState.RUNNING:
            jobs += sum(
                1
                for entry in (run.get("stages") or {}).values()
                if isinstance(entry, dict) and entry.get("state") == "running" and entry.get("job_id")
            )
    return _Counted({state.value: n for state, n in counts.items()}, jobs)


class LedgerCounts:
    """The ledger's counts, read at most once per ``ttl_s`` seconds of ``clock`` (monotonic
    seconds; a seam for tests) for a given store; concurrent scrapes share one read."""

    def __init__(self, ttl_s: float = LEDGER_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._kept: tuple[Store, float, _Counted] | None = None
        self._lock = asyncio.Lock()

    async def of(self, store: Store) -> _Counted:
        async with self._lock:
            kept = self._kept
            if kept is not None and kept[0] is store and self.clock() - kept[1] < self.ttl_s:
                return kept[2]
            counted = await _count(store)
            # the read's start would be as fair; its end keeps a slow read from expiring at once
            self._kept = (store, self.clock(), counted)
            return counted


async def refresh(
    store: Store, fleet: Fleet | None, now: datetime, counts: LedgerCounts | None = None
) -> None:
    """Set the state gauges from the store's runs (through ``counts`` when given, else read now)
    and the fleet's windows at ``now``."""
    from shared.domain.windows import window_at  # here: see _count

    m = metrics()
    counted = await (counts.of(store) if counts is not None else _count(store))
    for state, n in counted.runs.items():
        m.runs.labels(state).set(n)
    m.approvals_pending.set(counted.runs["awaiting_approval"])
    m.jobs_in_flight.set(counted.jobs)
    windows = fleet.windows.values() if fleet is not None else ()
    m.windows_open.set(sum(1 for w in windows if window_at(w, now) is not None))


async def render(runtime: Runtime, counts: LedgerCounts | None = None) -> bytes:
    """The text exposition of this process's metrics, state gauges refreshed from ``runtime``
    (the ledger's through ``counts`` when given)."""
    await refresh(runtime.store, runtime.fleet, runtime.clock.now(), counts)
    from prometheus_client import generate_latest  # here: see Metrics.__init__

    return generate_latest(metrics().registry)


# -- serving -----------------------------------------------------------------------------------


def add_metrics_route(app: web.Application, runtime: Runtime, counts: LedgerCounts | None = None) -> None:
    """``GET /metrics`` on ``app``: open, or a bearer token when the fleet requires one; the
    ledger's gauges kept by ``counts`` (a :class:`LedgerCounts` of its own by default)."""
    # aiohttp here, not at the top: the bus backends record through this module, and a deployed
    # function (functions-framework, no aiohttp server) must not pay aiohttp's import on its cold start
    from aiohttp import web
    from prometheus_client import CONTENT_TYPE_LATEST

    from shared.runtime.edge import Refused, principal_of

    fleet = runtime.fleet
    guarded = fleet is not None and fleet.metrics.require_token
    kept = counts or LedgerCounts()

    async def get_metrics(request: web.Request) -> web.Response:
        if guarded:
            try:
                principal_of(fleet.auth if fleet is not None else None, request)
            except Refused as refused:
                return refused.reply
        body = await render(runtime, kept)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/metrics", get_metrics)


async def serve_metrics(runtime: Runtime, host: str, port: int) -> web.AppRunner:
    """A small app serving only ``GET /metrics`` on ``host:port`` (``upshift worker
    --metrics-port``), started; the caller cleans the runner up. ``OSError`` if it cannot bind."""
    from aiohttp import web  # here: see add_metrics_route

    app = web.Application()
    add_metrics_route(app, runtime)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError:
        await runner.cleanup()
        raise
    return runner
