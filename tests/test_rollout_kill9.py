"""kill -9 of `upshift serve` at random moments during a 50-target rollout, restarted each time:
every target ends upgraded, zero duplicate upgrade calls, nothing stuck — on both buses.

The simulator runs in this process; `upshift serve` is a real subprocess sharing the domain clock
(`--speed/--domain-start/--domain-anchor`), so restarts do not move time back.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from shared.demo import DEMO_ENV, build_demo_fleet, window_start
from shared.natsd import free_port
from simulator.core import SimCredentials
from simulator.testing import run_simulator
from tests.helpers import wait_healthy

ROOT = Path(__file__).resolve().parents[1]
N = 50
SPEED = 300.0
#: Domain time runs from the wall clock: a loaded machine or the kills' lease waits must not push the
#: rollout past the window's cutoff (that would be the window holding, correctly, not a lost run).
WINDOW = "duration: 16h, cutoff: 30m"
#: Short client deadlines: a claim orphaned by a kill is reconciled after deadline + timeout (real s).
CLIENT = {"retry": {"deadline": 3.0, "attempts": 4}, "limits": {"total_timeout": 2.0, "rate": 500, "burst": 100}}


@pytest.mark.parametrize("backend", ["sqlite", "nats"])
async def test_kill_9_during_a_50_target_rollout(tmp_path, backend, request):
    rng = random.Random(4242)
    creds = SimCredentials()
    start = window_start(datetime.now(UTC)) + timedelta(minutes=1)
    plan = build_demo_fleet(N, "http://placeholder", creds.hw_project_id, concurrency=20, window=WINDOW)
    anchor = time.time()
    async with run_simulator(targets=plan.sim_targets, speed=SPEED, creds=creds, seed=3, start=start.timestamp()) as sim:
        fleet = build_demo_fleet(N, sim.url, creds.hw_project_id, concurrency=20, window=WINDOW, client=CLIENT)
        fleet_file = tmp_path / "fleet.yaml"
        fleet_file.write_text(fleet.fleet_yaml)
        if backend == "sqlite":
            bus = f"sqlite:///{tmp_path}/upshift.db?lease=1"
        else:
            server = request.getfixturevalue("nats_server")
            bus = f"{server.url}?namespace=kill{rng.randrange(10**6)}&lease=1"
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT), **{k: getattr(creds, f) for k, f in DEMO_ENV.items()}}
        cmd = [
            sys.executable, "-m", "shared.cli", "--log-json", "serve", "--fleet", str(fleet_file), "--bus", bus,
            "--port", str(port), "--speed", str(SPEED),
            "--domain-start", start.strftime("%Y-%m-%dT%H:%M:%S%z"), "--domain-anchor", str(anchor),
        ]
        log = open(tmp_path / "serve.log", "ab")  # noqa: SIM115 - appended to across restarts

        def launch() -> subprocess.Popen:
            return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)

        proc = launch()
        kills = 0
        upgraded_at_kill: list[int] = []
        try:
            await wait_healthy(port, proc)
            async with aiohttp.ClientSession() as http:
                for rel in fleet.releases:
                    body = {**rel, "released_at": (start - timedelta(days=30)).isoformat()}
                    async with http.post(f"http://127.0.0.1:{port}/hooks/release", json=body) as r:
                        assert r.status == 202, await r.text()

                async def versions() -> dict[str, str]:
                    async with http.get(f"{sim.url}/_sim/fleet") as r:
                        doc = await r.json()
                    return {t["id"]: t["version"] for t in doc["targets"]}

                want = {t.id: t.versions[-1] for t in plan.sim_targets}
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline:
                    now = await versions()
                    if all(now.get(i) == v for i, v in want.items()):
                        break
                    if kills < 6:
                        await asyncio.sleep(rng.uniform(0.3, 2.0))
                        upgraded_at_kill.append(sum(now.get(i) == v for i, v in want.items()))
                        proc.send_signal(signal.SIGKILL)
                        proc.wait()
                        kills += 1
                        proc = launch()
                        await wait_healthy(port, proc)
                    else:
                        await asyncio.sleep(0.5)
                now = await versions()
                async with http.get(f"{sim.url}/_sim/stats") as r:
                    stats = await r.json()
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
        assert kills == 6
        assert any(0 < n < N for n in upgraded_at_kill), f"no kill landed mid-rollout: {upgraded_at_kill}"
        lagging = {i: (now.get(i), v) for i, v in want.items() if now.get(i) != v}
        assert not lagging, f"not upgraded: {lagging}"
        upgrade_calls = {
            tid: n for ep, per in stats["calls"].items() if ep.endswith(".upgrade") for tid, n in per.items()
        }
        assert set(upgrade_calls) == set(want), "every target had its upgrade call"
        duplicates = {tid: n for tid, n in upgrade_calls.items() if n != 1}
        assert not duplicates, f"upgrade API called more than once: {duplicates}"
