"""``/metrics`` after a demo-like rollout, and ``upshift worker --metrics-port`` as a user runs it.

The rollout: the real pipeline (every stage function, ``track_job``, ``advance``) on the embedded
SQLite bus against the real simulator over loopback — one run of each of the five kinds, plus one
the vendor refuses — then ``GET /metrics`` of ``upshift serve``'s app over loopback HTTP, parsed
with ``prometheus_client``'s text parser. The vendor call counters must equal the simulator's own
count of the requests it handled (``GET /_sim/stats``), per vendor and operation; the run gauges
must equal the ledger's; and no label may carry a run, target or job id.

The worker: a real ``upshift worker --only echo --metrics-port 0`` process serving the metrics of
its own deliveries; a port it cannot bind is one line and exit 2.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from events import T
from shared.bus import open_bus
from shared.domain.stages import run_id
from shared.runtime import metrics
from shared.runtime.server import build_app
from simulator.natsd import free_port
from tests.functions._stages_harness import ENV, TARGETS, pipeline, until
from tests.helpers import ROOT, echo

#: The simulator's service (its endpoint's prefix) → the client's ``vendor`` label.
VENDOR = {
    "cce": "huawei-cce",
    "autopilot": "huawei-autopilot",
    "taurusdb": "huawei-taurusdb",
    "iam": "huawei",
    "ocp": "ocp",
    "ncloud": "ncloud",
}
#: The simulator's operation → the client's endpoint key, where the two differ (the simulator
#: counts each route; a client groups routes under one key: its rate limit and concurrency gate).
OPERATION = {
    "cluster": "clusters",
    "upgradeinfo": "clusters",
    "upgrade_paths": "clusters",
    "upgrade_task": "tasks",
    "upgrade_tasks": "tasks",
    "upgrade_retry": "upgrade",
    "snapshot_tasks": "snapshot",
    "workflow": "workflows",
    "workflow_cancel": "workflows",
    "instance": "instances",
    "tokens": "iam",
    "get_task": "task",
    "subtask_log": "task",
    "list_tasks": "tasks",
    "get_cluster": "cluster",
    "config_groups": "groups",
    "upgrade_progress": "progress",
    "cluster_info": "info",
    "cluster_status": "status",
}


def expected_calls(stats: dict[str, dict[str, int]]) -> Counter[tuple[str, str]]:
    """The simulator's counts as (vendor, operation) of our clients."""
    out: Counter[tuple[str, str]] = Counter()
    for endpoint, per_target in stats.items():
        service, _, op = endpoint.partition(".")
        out[VENDOR[service], OPERATION.get(op, op)] += sum(per_target.values())
    return out


async def test_metrics_after_a_rollout_match_the_simulator_and_the_ledger(tmp_path, monkeypatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    metrics.reset()
    async with pipeline(f"sqlite:///{tmp_path}/u.db") as p:
        for name in TARGETS:
            await p.start(name)
        # and one the vendor refuses: Kafka's precheck of a version not later than the cluster's
        refused = p.request("kafka-a", "precheck")
        same = refused.data.model_copy(update={"to_version": "2823006"})
        await p.runtime.bus.publish(
            refused.model_copy(update={"data": same, "runid": run_id("kafka-a", "2823006")})
        )
        for name in TARGETS:
            assert (await p.outcome(name)).type == T.UPGRADE_SUCCEEDED
        await until(lambda: len(p.seen.get(T.UPGRADE_FAILED, [])) == 1, 60)
        await p.runtime.wait_idle()
        stats = await p.stats()
        runs = await p.store.ledger.runs()
        async with TestServer(build_app(p.runtime)) as server, ClientSession() as http:
            async with http.get(server.make_url("/metrics")) as r:
                assert r.status == 200
                text = await r.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}

    # every request the simulator handled is one counted call of ours, and no other was made
    counted: Counter[tuple[str, str]] = Counter()
    for s in families["upshift_vendor_calls"].samples:
        counted[s.labels["vendor"], s.labels["operation"]] += int(s.value)
        assert s.labels["outcome"] in metrics.OUTCOMES
    assert counted == expected_calls(stats), (counted, stats)
    assert sum(counted.values()) > 5 * 3  # a real rollout: checks, upgrades and status looks
    outcomes = {s.labels["outcome"] for s in families["upshift_vendor_calls"].samples if s.value}
    assert outcomes == {"ok", "client_error"}  # Kafka's refusal is a 4xx
    timed = Counter(
        {
            (s.labels["vendor"], s.labels["operation"]): int(s.value)
            for s in families["upshift_vendor_call_duration_seconds"].samples
            if s.name.endswith("_count")
        }
    )
    assert timed == counted

    by_state = {s.labels["state"]: s.value for s in families["upshift_runs"].samples}
    assert by_state["succeeded"] == len(TARGETS) == sum(r["state"] == "succeeded" for r in runs)
    assert by_state["failed"] == 1 and by_state["running"] == 0
    assert families["upshift_jobs_in_flight"].samples[0].value == 0

    stages = {
        (s.labels["kind"], s.labels["stage"], s.labels["outcome"]): s.value
        for s in families["upshift_stage_duration_seconds"].samples
        if s.name.endswith("_count")
    }
    assert stages[("cce", "upgrade", "succeeded")] == 1
    assert stages[("ncloud-kafka", "precheck", "failed")] == 1
    assert stages[("ncloud-kafka", "precheck", "succeeded")] == 1
    upgrade_s = next(
        s.value
        for s in families["upshift_stage_duration_seconds"].samples
        if s.name.endswith("_sum") and s.labels["kind"] == "oceanbase" and s.labels["stage"] == "upgrade"
    )
    assert upgrade_s > 0  # a job: its start and end are apart (domain seconds)

    delivered = {
        (s.labels["function"], s.labels["outcome"]): s.value
        for s in families["upshift_bus_deliveries"].samples
    }
    assert delivered[("advance", "ok")] >= len(TARGETS)
    assert delivered[("track_job", "ok")] >= len(TARGETS)

    # ids belong in the logs: no label value is a run, target, vendor object or job id
    ids = {r["id"] for r in runs} | set(TARGETS) | {id_ for _k, id_, *_ in TARGETS.values()}
    ids |= {st.get("job_id") for r in runs for st in r.get("stages", {}).values() if st.get("job_id")}
    ids |= {t for per in stats.values() for t in per}
    labels = {v for f in families.values() for s in f.samples for k, v in s.labels.items() if k != "le"}
    assert labels and not labels & ids, labels & ids


# -- upshift worker --metrics-port -------------------------------------------------------------


def _worker(db: Path, err: Path, *args: str) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "shared.ops.cli",
        "worker",
        "--bus",
        f"sqlite:///{db}",
        "--only",
        "echo",
        *args,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err.open("wb"))


async def _metrics_url(proc: subprocess.Popen[bytes], err: Path, limit: float = 30.0) -> str:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for line in err.read_text().splitlines():
            if line.startswith("upshift worker metrics on "):
                return line.rsplit(" ", 1)[1]
        assert proc.poll() is None, err.read_text()
        await asyncio.sleep(0.05)
    raise AssertionError(f"no metrics URL within {limit}s: {err.read_text()}")


async def test_a_worker_serves_the_metrics_of_its_own_deliveries(tmp_path) -> None:
    db, err = tmp_path / "u.db", tmp_path / "worker.err"
    proc = _worker(db, err, "--metrics-port", "0")
    try:
        url = await _metrics_url(proc, err)
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
        bus = open_bus(f"sqlite:///{db}")
        await bus.start()
        await bus.publish(echo("from the test"))  # echo answers once: two deliveries
        await bus.close()
        async with ClientSession() as http:
            deadline = time.monotonic() + 30
            while True:
                async with http.get(url) as r:
                    assert r.status == 200
                    text = await r.text()
                got = {
                    (s.name, tuple(sorted(s.labels.items()))): s.value
                    for f in text_string_to_metric_families(text)
                    for s in f.samples
                }
                ok = got.get(("upshift_bus_deliveries_total", (("function", "echo"), ("outcome", "ok"))), 0)
                if ok >= 2 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
        assert ok == 2, text
        assert got[("upshift_runs", (("state", "succeeded"),))] == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, err.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_a_metrics_port_it_cannot_bind_is_one_line_and_exit_2(tmp_path) -> None:
    port = free_port()
    holder = await asyncio.start_server(lambda r, w: None, "127.0.0.1", port)
    try:
        proc = _worker(tmp_path / "u.db", tmp_path / "worker.err", "--metrics-port", str(port))
        code = await asyncio.to_thread(proc.wait, 60)
    finally:
        holder.close()
        await holder.wait_closed()
    text = (tmp_path / "worker.err").read_text()
    assert code == 2, text
    assert f"--metrics-port: cannot listen on 127.0.0.1:{port}" in text and "Traceback" not in text
