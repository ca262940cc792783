"""Prometheus metrics (:mod:`shared.runtime.metrics`): the recording helpers where events happen,
the state read at scrape time, and ``GET /metrics`` of ``upshift serve``'s app, parsed with
``prometheus_client``'s own text parser.

Real parts: a vendor client (``BaseClient``) against a loopback aiohttp server answering each
status; real buses (SQLite file and NATS) dead-lettering a failing handler; a real SQLite store
holding runs; ``build_app`` over a ``Runtime`` on loopback HTTP. Every test starts from a fresh
registry (:func:`metrics.reset`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from shared.bus import Subscription, open_bus
from shared.clouds.client import BaseClient
from shared.clouds.errors import CloudError
from shared.clouds.retry import RetryPolicy
from shared.domain.fleet import parse_fleet
from shared.runtime import metrics
from shared.runtime.host import Runtime
from shared.runtime.manifest import load_manifest
from shared.runtime.server import build_app
from shared.store import open_store
from shared.store.ledger import Ledger, RunState
from simulator.natsd import free_port
from tests.functions._planning import bus_url as _bus_url
from tests.helpers import echo, eventually


@pytest.fixture(autouse=True)
def fresh() -> metrics.Metrics:
    return metrics.reset()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(m: metrics.Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


# -- vendor calls ------------------------------------------------------------------------------


class _Vendor(BaseClient):
    vendor = "acme"


class _Service(BaseClient):
    vendor = "acme"
    service: ClassVar[str] = "db"


@pytest.fixture
async def answering() -> Any:
    """A loopback server answering ``/s/{status}`` with that status, and ``/flaky`` 503 then 200."""
    flaky = {"n": 0}

    async def status(request: web.Request) -> web.Response:
        return web.json_response({}, status=int(request.match_info["status"]))

    async def flaky_route(_: web.Request) -> web.Response:
        flaky["n"] += 1
        return web.json_response({}, status=503 if flaky["n"] == 1 else 200)

    app = web.Application()
    app.router.add_get("/s/{status}", status)
    app.router.add_get("/flaky", flaky_route)
    async with TestServer(app) as server:
        yield server


async def test_each_vendor_exchange_is_counted_by_outcome_and_timed(answering, fresh) -> None:
    client = _Vendor(str(answering.make_url("")))
    async with ClientSession() as session:
        client._session = session
        for status, key in ((200, "get"), (204, "get"), (404, "get"), (429, "get"), (503, "put")):
            try:
                await client._send("GET", f"/s/{status}", endpoint_key=key)
            except CloudError:
                pass
    assert value(fresh, "upshift_vendor_calls_total", vendor="acme", operation="get", outcome="ok") == 2
    for outcome in ("client_error", "throttled"):
        assert (
            value(fresh, "upshift_vendor_calls_total", vendor="acme", operation="get", outcome=outcome) == 1
        )
    assert (
        value(fresh, "upshift_vendor_calls_total", vendor="acme", operation="put", outcome="server_error")
        == 1
    )
    assert value(fresh, "upshift_vendor_call_duration_seconds_count", vendor="acme", operation="get") == 4
    assert value(fresh, "upshift_vendor_call_duration_seconds_count", vendor="acme", operation="put") == 1


async def test_no_answer_is_network_and_each_retry_counts(answering, fresh) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    async with ClientSession() as session:
        gone = _Service(closed, retry=RetryPolicy(attempts=2, base=0, cap=0), session=session)
        with pytest.raises(CloudError):
            await gone._call("GET", "/x", endpoint_key="read")
        retried = _Service(str(answering.make_url("")), retry=RetryPolicy(base=0, cap=0), session=session)
        await retried._call("GET", "/flaky", endpoint_key="read")
    # the service names the vendor's API (huawei-cce, huawei-taurusdb …)
    assert (
        value(fresh, "upshift_vendor_calls_total", vendor="acme-db", operation="read", outcome="network") == 2
    )
    got = {
        o: value(fresh, "upshift_vendor_calls_total", vendor="acme-db", operation="read", outcome=o)
        for o in ("ok", "server_error")
    }
    assert got == {"ok": 1, "server_error": 1}


async def test_a_cancelled_call_is_not_an_outcome(fresh) -> None:
    started = asyncio.Event()

    async def hang(_: web.Request) -> web.Response:
        started.set()
        await asyncio.sleep(30)
        return web.Response()

    app = web.Application()
    app.router.add_get("/hang", hang)
    async with TestServer(app) as server, ClientSession() as session:
        client = _Vendor(str(server.make_url("")), session=session)
        task = asyncio.create_task(client._send("GET", "/hang", endpoint_key="get"))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert value(fresh, "upshift_vendor_call_duration_seconds_count", vendor="acme", operation="get") is None


# -- deliveries, retries, dead letters ---------------------------------------------------------


async def test_delivery_counts_ok_and_error_but_not_a_cancellation(fresh) -> None:
    with metrics.delivery("f"):
        pass
    with pytest.raises(ValueError), metrics.delivery("f"):
        raise ValueError("boom")
    with pytest.raises(asyncio.CancelledError), metrics.delivery("f"):
        raise asyncio.CancelledError
    assert value(fresh, "upshift_bus_deliveries_total", function="f", outcome="ok") == 1
    assert value(fresh, "upshift_bus_deliveries_total", function="f", outcome="error") == 1


@pytest.fixture(params=["sqlite", "nats"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _bus_url(request, tmp_path)


async def test_the_bus_counts_retries_and_the_dead_letter_under_the_function(backend, fresh) -> None:
    """A handler failing every time with 3 attempts: 3 error deliveries, 2 retries, 1 dead letter,
    all under the function's name though its consumer is its second trigger's (``fails_2``)."""
    bus = open_bus(backend)
    metrics.name_consumer("fails_2", "fails")

    async def handler(_event: Any) -> None:
        with metrics.delivery("fails"):
            raise RuntimeError("always")

    bus.subscribe(
        Subscription("fails_2", "dev.upshift.echo", handler=handler, max_attempts=3, backoff_base=0.01)
    )
    await bus.start()
    runner = asyncio.create_task(bus.run())
    try:
        await bus.publish(echo("x"))
        await eventually(lambda: (value(fresh, "upshift_dead_letters_total", function="fails") or 0) >= 1, 30)
        assert len(await bus.dead_letters()) == 1
    finally:
        await bus.close()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    assert value(fresh, "upshift_bus_retries_total", function="fails") == 2
    assert value(fresh, "upshift_dead_letters_total", function="fails") == 1
    assert value(fresh, "upshift_bus_deliveries_total", function="fails", outcome="error") == 3
    assert value(fresh, "upshift_bus_retries_total", function="fails_2") is None


async def test_the_host_names_a_second_triggers_consumer_after_its_function(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/u.db"
    Runtime(load_manifest(), open_bus(url), open_store(url), only=["notify", "advance"])
    consumers = metrics.metrics().consumers
    assert consumers["notify_2"] == consumers["notify"] == "notify"
    assert consumers["advance_3"] == "advance"


# -- stage durations ---------------------------------------------------------------------------

T0 = datetime(2026, 3, 7, 17, 0, tzinfo=UTC)


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def test_stage_duration_is_the_ledgers_start_to_end(fresh) -> None:
    run = {
        "stages": {
            "upgrade": {"started_at": _iso(T0), "ended_at": _iso(T0 + timedelta(minutes=40))},
            "precheck": {"ended_at": _iso(T0)},  # synchronous: no start of its own
            "postcheck": {"started_at": _iso(T0)},  # not noted ended yet: ends now
        }
    }
    metrics.stage_ended("cce", "upgrade", None, run, T0 + timedelta(hours=5))
    metrics.stage_ended("cce", "precheck", "CCE.01400001", run, T0 + timedelta(hours=5))
    metrics.stage_ended("cce", "postcheck", "cancelled", run, T0 + timedelta(seconds=30))
    metrics.stage_ended("cce", "snapshot", None, run, T0)  # never noted: nothing to observe
    metrics.stage_ended("cce", None, None, run, T0)
    h = "upshift_stage_duration_seconds"
    assert value(fresh, f"{h}_sum", kind="cce", stage="upgrade", outcome="succeeded") == 2400
    assert value(fresh, f"{h}_count", kind="cce", stage="precheck", outcome="failed") == 1
    assert value(fresh, f"{h}_sum", kind="cce", stage="precheck", outcome="failed") == 0
    assert value(fresh, f"{h}_sum", kind="cce", stage="postcheck", outcome="cancelled") == 30
    assert value(fresh, f"{h}_count", kind="cce", stage="snapshot", outcome="succeeded") is None
    # 40 minutes falls in the 3600 s bucket, not the 1800 s one
    assert value(fresh, f"{h}_bucket", kind="cce", stage="upgrade", outcome="succeeded", le="1800.0") == 0
    assert value(fresh, f"{h}_bucket", kind="cce", stage="upgrade", outcome="succeeded", le="3600.0") == 1


# -- state at scrape time and GET /metrics ------------------------------------------------------

TOKEN_ENV, TOKEN = "UPSHIFT_T_METRICS_VIEW", "metrics-viewer-token-9f8e7d"
FLEET = f"""
clouds:
  huawei: {{region: ap-southeast-1, project_id: p1}}
windows:
  sat: {{rrule: "FREQ=WEEKLY;BYDAY=SA;BYHOUR=2", duration: 4h, timezone: Asia/Seoul}}
  sun: {{rrule: "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2", duration: 4h, timezone: Asia/Seoul}}
targets:
  - {{name: cce-1, kind: cce, cluster_id: c1, window: sat}}
auth:
  tokens:
    - {{name: board, token_env: {TOKEN_ENV}, role: viewer}}
"""
#: Saturday 03:00 in Seoul: inside ``sat``, not ``sun``
IN_SAT = datetime(2026, 3, 7, 3, 0, tzinfo=UTC) - timedelta(hours=9)


async def _runtime(tmp_path: Path, fleet_text: str) -> Runtime:
    url = f"sqlite:///{tmp_path}/u.db"
    fleet = parse_fleet(fleet_text, "test-fleet.yaml")
    runtime = Runtime(load_manifest(), open_bus(url), open_store(url), fleet=fleet, only=[])
    await runtime.start()
    ledger = runtime.store.ledger
    for i, state in enumerate(
        [RunState.SUCCEEDED, RunState.SUCCEEDED, RunState.AWAITING_APPROVAL, RunState.RUNNING]
    ):
        await ledger.open_run(f"r{i:015x}", target="cce-1", kind="cce", state=state)
    rid = "r000000000000003"
    await ledger.note_stage(rid, "precheck", state="succeeded")
    await ledger.note_stage(rid, "upgrade", state="running", job_id="job-1")
    return runtime


async def test_state_gauges_are_read_from_the_store_when_scraped(tmp_path, fresh) -> None:
    runtime = await _runtime(tmp_path, FLEET)
    try:
        await metrics.refresh(runtime.store, runtime.fleet, IN_SAT)
        assert value(fresh, "upshift_runs", state="succeeded") == 2
        assert value(fresh, "upshift_runs", state="running") == 1
        assert value(fresh, "upshift_runs", state="failed") == 0  # every state has its series
        assert value(fresh, "upshift_approvals_pending") == 1
        assert value(fresh, "upshift_jobs_in_flight") == 1
        assert value(fresh, "upshift_windows_open") == 1
        await metrics.refresh(runtime.store, runtime.fleet, IN_SAT + timedelta(hours=12))
        assert value(fresh, "upshift_windows_open") == 0
        # a run that ends is no job in flight any more, at the next scrape
        await runtime.store.ledger.end_run("r000000000000003", RunState.SUCCEEDED)
        await metrics.refresh(runtime.store, runtime.fleet, IN_SAT)
        assert value(fresh, "upshift_jobs_in_flight") == 0
        assert value(fresh, "upshift_runs", state="succeeded") == 3
    finally:
        await runtime.stop()


async def test_get_metrics_is_open_by_default_and_parses(tmp_path, fresh) -> None:
    runtime = await _runtime(tmp_path, FLEET)
    metrics.stage_ended("cce", "upgrade", None, {"stages": {"upgrade": {}}}, IN_SAT)
    try:
        async with TestServer(build_app(runtime)) as server, ClientSession() as http:
            async with http.get(server.make_url("/metrics")) as r:
                assert r.status == 200
                assert r.headers["Content-Type"].startswith("text/plain")
                text = await r.text()
    finally:
        await runtime.stop()
    got = samples(text)
    assert got[("upshift_runs", frozenset({("state", "succeeded")}))] == 2
    assert got[("upshift_approvals_pending", frozenset())] == 1
    names = {name for name, _ in got}
    assert "upshift_stage_duration_seconds_count" in names
    assert not any(name.endswith("_created") for name in names)
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert families["upshift_vendor_calls"] == "counter"
    assert families["upshift_stage_duration_seconds"] == "histogram"
    assert families["upshift_runs"] == "gauge"


async def test_scrapes_within_the_ttl_read_the_ledger_once(tmp_path, fresh, monkeypatch) -> None:
    """The ledger's gauges are kept ``ttl_s`` (a fake monotonic clock here): scrapes within it do
    not read the ledger (their values may lag it that long); the first after it reads it again."""
    runtime = await _runtime(tmp_path, FLEET)
    reads: list[int] = []
    real = Ledger.runs

    async def counted(self: Ledger, *args: Any, **kwargs: Any) -> Any:
        reads.append(1)
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(Ledger, "runs", counted)
    clock = [1000.0]
    app = web.Application()
    metrics.add_metrics_route(app, runtime, metrics.LedgerCounts(ttl_s=5.0, clock=lambda: clock[0]))
    succeeded = ("upshift_runs", frozenset({("state", "succeeded")}))
    jobs = ("upshift_jobs_in_flight", frozenset())
    try:
        async with TestServer(app) as server, ClientSession() as http:

            async def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
                async with http.get(server.make_url("/metrics")) as r:
                    assert r.status == 200
                    return samples(await r.text())

            first = await scrape()
            assert len(reads) == 1 and first[succeeded] == 2 and first[jobs] == 1
            await runtime.store.ledger.end_run("r000000000000003", RunState.SUCCEEDED)
            for _ in range(3):
                clock[0] += 1.5  # 4.5 s after the read: still within the TTL
                kept = await scrape()
                assert len(reads) == 1 and kept[succeeded] == 2 and kept[jobs] == 1
            clock[0] += 0.5  # 5 s: the TTL is over
            fresh_ = await scrape()
            assert len(reads) == 2 and fresh_[succeeded] == 3 and fresh_[jobs] == 0
            assert (await scrape())[succeeded] == 3 and len(reads) == 2
    finally:
        await runtime.stop()


async def test_get_metrics_asks_for_a_token_when_the_fleet_says_so(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    runtime = await _runtime(tmp_path, FLEET + "metrics: {require_token: true}\n")
    try:
        async with TestServer(build_app(runtime)) as server, ClientSession() as http:
            url = server.make_url("/metrics")
            for headers in ({}, {"Authorization": "Bearer not-the-token"}, {"Authorization": TOKEN}):
                async with http.get(url, headers=headers) as r:
                    assert r.status == 401, headers
                    body = await r.json()
                    assert body["field"] == "Authorization" and TOKEN not in await r.text()
                    assert r.headers["WWW-Authenticate"].startswith("Bearer")
            # any role will do: a viewer's token reads the metrics
            async with http.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                assert r.status == 200
                assert samples(await r.text())[("upshift_runs", frozenset({("state", "running")}))] == 1
            async with http.get(server.make_url("/healthz")) as r:
                assert r.status == 200  # still open
    finally:
        await runtime.stop()


async def test_a_fleet_metrics_block_is_strict() -> None:
    with pytest.raises(Exception, match="require_tokn"):
        parse_fleet(FLEET + "metrics: {require_tokn: true}\n", "test-fleet.yaml")


async def test_the_worker_app_serves_the_same_text(tmp_path, fresh) -> None:
    runtime = await _runtime(tmp_path, FLEET)
    runner = await metrics.serve_metrics(runtime, "127.0.0.1", 0)
    try:
        port = runner.addresses[0][1]
        async with ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                assert r.status == 200
                got = samples(await r.text())
            async with http.get(f"http://127.0.0.1:{port}/events") as r:
                assert r.status == 404  # only /metrics
        assert got[("upshift_runs", frozenset({("state", "awaiting_approval")}))] == 1
        with pytest.raises(OSError):
            await metrics.serve_metrics(runtime, "127.0.0.1", port)  # taken: the caller says so
    finally:
        await runner.cleanup()
        await runtime.stop()
