"""A rollout on the in-process simulator driven by real ``upshift`` processes that get killed.

Shared by the crash-point and chaos tests (``tests/test_crashpoints.py``, ``tests/test_chaos.py``)
and by ``python -m bench.chaos``; it lives under ``bench/`` because a bench must not import
``tests/`` (tests may import bench).

A :class:`Rollout` owns:

* the simulator, in this process and this event loop (so nothing here may block the loop for
  long: processes are waited for by polling), with a domain clock that the ``upshift``
  processes share through ``--speed/--domain-start/--domain-anchor`` — restarts never move
  domain time back;
* a fleet from :func:`shared.ops.demo.build_demo_fleet` plus ``failing`` extra targets whose every job
  fails at the vendor (simulator ``outcome="fail"``). Each failing target sits alone in a window
  of its own (a copy of the demo window), so its failure halts only that window's waves, never
  the other targets' (DESIGN §6.6 is tested elsewhere): every run still ends, and the failing
  run must end ``failed``;
* the ``upshift serve`` / ``upshift worker`` subprocesses (:class:`Proc`), one log file each,
  appended to across restarts.

:meth:`Rollout.figures` reads the outcome from the simulator (versions, ``/_sim/stats`` call
counters), the ledger (runs, through ``shared.store.open_store``) and the bus (dead letters), and
:meth:`Figures.problems` lists every broken invariant: a target not upgraded, a start endpoint
not called exactly once per target, a run not terminal (or the failing one not ``failed``), a
dead letter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from shared.ops.demo import DEMO_ENV, DEMO_TOKEN_ENV, build_demo_fleet, window_start
from simulator.core import SimCredentials, SimTarget
from simulator.natsd import NatsServer, free_port
from simulator.testing import SimHandle, start_simulator

__all__ = [
    "CLIENT",
    "FAULTS",
    "START_ENDPOINTS",
    "TERMINAL",
    "Figures",
    "Proc",
    "Rollout",
    "wait_healthy",
]

ROOT = Path(__file__).resolve().parents[1]
#: Short client deadlines: a claim orphaned by a kill is reconciled after deadline + timeout (real
#: s), then the vendor's settle time and two looks a second apart.
CLIENT: dict[str, Any] = {
    "retry": {"deadline": 3.0, "attempts": 4},
    "limits": {"total_timeout": 2.0, "rate": 500, "burst": 100},
    "reconcile": {"settle_s": 2.0, "look_gap_s": 1.0},
}
#: Domain time follows the wall clock: a loaded machine or kills must not push the rollout past
#: the window's cutoff (that would be the window holding, correctly, not a lost run).
WINDOW = "duration: 48h, cutoff: 30m"
#: The vendor calls that start something, per kind: each must reach the vendor exactly once per
#: target (simulator ``/_sim/stats`` names). Prechecks and reads may repeat.
START_ENDPOINTS: dict[str, tuple[str, ...]] = {
    "cce": ("cce.upgrade",),
    "autopilot": ("autopilot.workflow", "autopilot.snapshot", "autopilot.upgrade"),
    "starrocks": ("taurusdb.upgrade",),
    "oceanbase": ("ocp.upgrade",),
    "ncloud-kafka": ("ncloud.upgrade",),
}
TERMINAL = frozenset({"succeeded", "failed", "halted", "cancelled", "superseded"})
_SERVICES = ("cce", "autopilot", "taurusdb", "ocp", "ncloud")
#: A realistic mix, a few % each: 5xx/429 (with Retry-After), resets before the handler, answers
#: lost after the job started (dropped, late by 1 s — under the 2 s client timeout — or a 5xx),
#: new jobs missing from lists for 1 s, and two vendors whose clocks are off.
FAULTS: dict[str, Any] = {
    svc: {
        "error_rates": {"500": 0.02, "503": 0.02, "429": 0.02},
        "retry_after": 1,
        "reset_rate": 0.02,
        "drop_after_commit_rate": 0.02,
        "apply_then_slow_rate": 0.02,
        "apply_then_slow_s": 1.0,
        "apply_then_5xx_rate": 0.01,
        "list_lag_s": 1.0,
        "clock_skew_s": {"cce": 90.0, "ocp": -45.0}.get(svc, 0.0),
    }
    for svc in _SERVICES
}


async def wait_healthy(port: int, proc: Proc | None = None, limit_s: float = 30.0) -> None:
    """Until ``GET /healthz`` on ``port`` answers 200; AssertionError if ``proc`` exits first."""
    deadline = time.monotonic() + limit_s
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            if proc is not None and not proc.alive:
                raise AssertionError(f"{proc.name} exited with {proc.returncode}:\n{proc.tail()}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with s.get(
                    f"http://127.0.0.1:{port}/healthz", timeout=aiohttp.ClientTimeout(total=2)
                ) as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise AssertionError(f"serve on port {port} did not come up in {limit_s}s")


class Proc:
    """One ``upshift`` process, restartable; its output goes to ``log`` (appended to)."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.cmd = cmd
        self.env = env
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, **env: str) -> Proc:
        if self.alive:
            raise RuntimeError(f"{self.name} is running")
        with open(self.log, "ab") as out:
            out.write(
                f"### start {self.starts + 1} {' '.join(f'{k}={v}' for k, v in env.items())}\n".encode()
            )
            out.flush()
            self.popen = subprocess.Popen(self.cmd, cwd=ROOT, env={**self.env, **env}, stdout=out, stderr=out)
        self.starts += 1
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    async def wait(self, limit_s: float) -> int | None:
        """The exit code once the process ended, None if it still runs after ``limit_s``."""
        deadline = time.monotonic() + limit_s
        while self.alive:
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.02)
        return self.returncode

    async def kill(self) -> int | None:
        """SIGKILL and wait for the exit."""
        if self.alive:
            assert self.popen is not None
            self.popen.send_signal(signal.SIGKILL)
        return await self.wait(30.0)

    async def stop(self, limit_s: float = 20.0) -> None:
        """SIGTERM (a clean shutdown), SIGKILL after ``limit_s``."""
        if not self.alive:
            return
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        if await self.wait(limit_s) is None:
            await self.kill()

    def kill_now(self) -> None:
        """Synchronous last resort (``finally`` blocks): nothing may outlive the test."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()

    def tail(self, n: int = 40) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (other lines skipped)."""
        out = []
        with contextlib.suppress(OSError):
            for line in self.log.read_text(errors="replace").splitlines():
                if line.startswith("{"):
                    with contextlib.suppress(ValueError):
                        out.append(json.loads(line))
        return out


@dataclass
class Figures:
    """What a rollout ended with. ``problems()`` is empty when every invariant held."""

    bus: str
    targets: int
    failing: list[str]
    #: target -> (version at the simulator, version wanted), for targets that should be upgraded
    not_upgraded: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    #: failing target -> its version at the simulator, when it moved (it must not)
    failing_upgraded: dict[str, str | None] = field(default_factory=dict)
    #: "target endpoint" -> calls the vendor processed, when that is not exactly 1
    calls_not_one: dict[str, int] = field(default_factory=dict)
    #: run -> "target: state", for runs not terminal, and runs of a target missing entirely
    not_terminal: dict[str, str] = field(default_factory=dict)
    #: run -> what its ledger document lacks (every run names its target, kind and versions)
    runs_incomplete: dict[str, str] = field(default_factory=dict)
    #: failing target -> the state its run ended in, when not "failed"
    failing_not_failed: dict[str, str] = field(default_factory=dict)
    #: healthy target -> its run's state, when it is terminal but not "succeeded"
    not_succeeded: dict[str, str] = field(default_factory=dict)
    #: "consumer: event type (target) error"
    dead_letters: list[str] = field(default_factory=list)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    kills: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    #: the services the simulator's faults were on for
    faults: list[str] = field(default_factory=list)
    #: anything a driver wants in the summary line (e.g. targets upgraded at each kill)
    notes: dict[str, Any] = field(default_factory=dict)

    def problems(self) -> list[str]:
        out = []
        for label, value in (
            ("not upgraded (now, wanted)", self.not_upgraded),
            ("failing target upgraded anyway", self.failing_upgraded),
            ("start endpoint not called exactly once (target endpoint: calls)", self.calls_not_one),
            ("runs not terminal", self.not_terminal),
            ("run documents incomplete in the ledger", self.runs_incomplete),
            ("failing target's run not failed", self.failing_not_failed),
            ("run not succeeded", self.not_succeeded),
            ("dead letters", self.dead_letters),
        ):
            if value:
                out.append(f"{label}: {value}")
        return out

    def summary(self) -> dict[str, Any]:
        """One JSON-able line of figures (bench output, test logs)."""
        return {
            "bus": self.bus,
            "targets": self.targets,
            "failing": len(self.failing),
            "kills": {role: self.kills.get(role, 0) for role in ("serve", "worker", "nats-server")},
            "upgrade_calls_not_1": len(self.calls_not_one),
            "not_upgraded": len(self.not_upgraded) + len(self.failing_upgraded),
            "runs_not_terminal": len(self.not_terminal),
            "runs_wrong_end": len(self.failing_not_failed) + len(self.not_succeeded),
            "runs_incomplete": len(self.runs_incomplete),
            "dead_letters": len(self.dead_letters),
            "wall_s": round(self.wall_s, 1),
            "faults": self.faults,
            **self.notes,
        }


class Rollout:
    """See the module docstring. Use as ``async with Rollout(...) as ro:``."""

    def __init__(
        self,
        workdir: Path,
        *,
        targets: int,
        failing: int = 1,
        bus: str = "sqlite",
        nats: NatsServer | None = None,
        speed: float = 300.0,
        concurrency: int = 20,
        window: str = WINDOW,
        client: dict[str, Any] | None = None,
        seed: int = 3,
    ) -> None:
        if bus not in ("sqlite", "nats"):
            raise ValueError(f"bus must be sqlite or nats, not {bus!r}")
        if bus == "nats" and nats is None:
            raise ValueError("a NATS rollout needs a nats-server")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.n = targets
        self.n_failing = failing
        self.bus_kind = bus
        self.nats = nats
        self.speed = speed
        self.concurrency = concurrency
        self.window = window
        self.client = CLIENT if client is None else client
        self.seed = seed
        self.creds = SimCredentials()
        self.start = window_start(datetime.now(UTC)) + timedelta(minutes=1)
        self.anchor = time.time()
        if bus == "sqlite":
            self.bus_url = f"sqlite:///{self.workdir}/upshift.db?lease=1"
        else:
            assert nats is not None
            self.bus_url = f"{nats.url}?namespace=r{uuid.uuid4().hex[:10]}&lease=1"
        self.sim: SimHandle | None = None
        self.sim_targets: list[SimTarget] = []
        self.failing: list[SimTarget] = []
        self.releases: list[dict[str, str]] = []
        self.token = ""  # the demo fleet's ingress token (DEMO_TOKEN_ENV), set with the fleet
        self.procs: list[Proc] = []
        self.kills: dict[str, int] = {}
        self.faults: dict[str, Any] = {}
        self._t0 = time.monotonic()
        self._http: aiohttp.ClientSession | None = None
        self._store: Any = None

    # -- setup -----------------------------------------------------------------------------------

    async def __aenter__(self) -> Rollout:
        total = self.n + self.n_failing
        shape = {"concurrency": self.concurrency, "window": self.window}
        self.sim_targets = build_demo_fleet(total, "", self.creds.hw_project_id, **shape).sim_targets
        self.failing = self.sim_targets[self.n :]
        for t in self.failing:
            t.outcome = "fail"
        # the simulator's clock starts now from ``start``; the upshift processes agree through the anchor
        self.anchor = time.time()
        self.sim = await start_simulator(
            targets=self.sim_targets,
            speed=self.speed,
            creds=self.creds,
            seed=self.seed,
            start=self.start.timestamp(),
        )
        fleet = build_demo_fleet(total, self.sim.url, self.creds.hw_project_id, client=self.client, **shape)
        self.releases = fleet.releases
        self.token = fleet.token
        self.fleet_file = self.workdir / "fleet.yaml"
        self.fleet_file.write_text(self._isolate_failing(fleet.fleet_yaml))
        self._http = aiohttp.ClientSession()
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            **{k: getattr(self.creds, f) for k, f in DEMO_ENV.items()},
            DEMO_TOKEN_ENV: self.token,
        }
        for key in ("UPSHIFT_CRASH_AT", "UPSHIFT_CRASH_MODE", "UPSHIFT_CRASH_FILE"):
            self.env.pop(key, None)
        return self

    def _isolate_failing(self, fleet_yaml: str) -> str:
        """Each failing target alone in a copy of the demo window: its failure halts only itself."""
        doc = yaml.safe_load(fleet_yaml)
        (name, window), *_ = doc["windows"].items()
        for i, sim in enumerate(self.failing, 1):
            solo = f"{name}-solo{i}"
            doc["windows"][solo] = dict(window)
            for t in doc["targets"]:
                if t["name"] == sim.name:
                    t["window"], t["wave"] = solo, 0
        return yaml.safe_dump(doc, sort_keys=False)

    async def __aexit__(self, *exc: object) -> None:
        try:
            for p in self.procs:
                with contextlib.suppress(Exception):
                    await p.stop(limit_s=10)
        finally:
            for p in self.procs:
                p.kill_now()
            if self._store is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._store.close(), 5)
            if self._http is not None:
                await self._http.close()
            if self.sim is not None and self.sim.runner is not None:
                await self.sim.runner.cleanup()

    @property
    def http(self) -> aiohttp.ClientSession:
        assert self._http is not None
        return self._http

    # -- processes -------------------------------------------------------------------------------

    def _cmd(self, role: str, *extra: str) -> list[str]:
        return [
            sys.executable, "-m", "shared.ops.cli", "--log-json", role,
            "--fleet", str(self.fleet_file), "--bus", self.bus_url, "--speed", str(self.speed),
            "--domain-start", self.start.strftime("%Y-%m-%dT%H:%M:%S%z"), "--domain-anchor", str(self.anchor),
            *extra,
        ]  # fmt: skip

    def serve(self) -> tuple[Proc, int]:
        """A (not yet started) ``upshift serve`` on a free port."""
        port = free_port()
        p = Proc("serve", self._cmd("serve", "--port", str(port)), self.env, self.workdir / "serve.log")
        self.procs.append(p)
        return p, port

    def worker(self, i: int) -> Proc:
        p = Proc(f"worker{i}", self._cmd("worker"), self.env, self.workdir / f"worker{i}.log")
        self.procs.append(p)
        return p

    async def kill(self, proc: Proc) -> int | None:
        """SIGKILL ``proc`` (counted under its role)."""
        rc = await proc.kill()
        self.count_kill(proc)
        return rc

    def count_kill(self, proc: Proc) -> None:
        """Count a kill of ``proc`` (also one it did itself, at a crash point)."""
        role = "serve" if proc.name == "serve" else "worker"
        self.kills[role] = self.kills.get(role, 0) + 1

    async def kill_nats(self, down_s: float = 0.0) -> None:
        """SIGKILL nats-server, keep it down ``down_s`` s, start it again on the same port and store."""
        assert self.nats is not None
        await asyncio.to_thread(self.nats.kill)
        self.kills["nats-server"] = self.kills.get("nats-server", 0) + 1
        if down_s:
            await asyncio.sleep(down_s)
        await asyncio.to_thread(self.nats.start_again)

    # -- driving ---------------------------------------------------------------------------------

    async def set_faults(self, faults: dict[str, Any]) -> None:
        """``POST /_sim/faults`` (the simulator's control route)."""
        async with self.http.post(f"{self.sim_url}/_sim/faults", json=faults) as r:
            assert r.status == 200, await r.text()
        self.faults = faults

    @property
    def sim_url(self) -> str:
        assert self.sim is not None
        return self.sim.url

    async def post_releases(
        self,
        port: int,
        *,
        kinds: tuple[str, ...] | None = None,
        proc: Proc | None = None,
        stop: Callable[[], bool] | None = None,
        tries: float = 30.0,
    ) -> bool:
        """Announce the releases (of ``kinds``, default all) through ``POST /hooks/release``; True
        once all are accepted.

        Re-posting is harmless (a release's id is its product and version: the bus drops the
        copy), so this is called again after every restart of serve. False when serve (``proc``)
        died meanwhile, ``stop()`` became true, or serve did not answer for ``tries`` s: the next
        call after a restart posts again."""
        from shared.domain.fleet import DEFAULT_PRODUCT

        products = None if kinds is None else {DEFAULT_PRODUCT[k] for k in kinds}
        deadline = time.monotonic() + tries
        for rel in self.releases:
            if products is not None and rel["product"] not in products:
                continue
            body = {**rel, "released_at": (self.start - timedelta(days=30)).isoformat()}
            while True:
                try:
                    async with self.http.post(
                        f"http://127.0.0.1:{port}/hooks/release",
                        json=body,
                        headers={"Authorization": f"Bearer {self.token}"},
                        timeout=aiohttp.ClientTimeout(total=5),
                    ) as r:
                        if r.status in (200, 202):
                            break
                        raise AssertionError(f"release intake refused {rel}: {r.status} {await r.text()}")
                except (aiohttp.ClientError, OSError, TimeoutError):
                    gone = (proc is not None and not proc.alive) or (stop is not None and stop())
                    if gone or time.monotonic() > deadline:
                        return False
                    await asyncio.sleep(0.2)
        return True

    async def sim_fleet(self) -> dict[str, str]:
        async with self.http.get(f"{self.sim_url}/_sim/fleet") as r:
            doc = await r.json()
        return {t["id"]: t["version"] for t in doc["targets"]}

    async def sim_stats(self) -> dict[str, Any]:
        async with self.http.get(f"{self.sim_url}/_sim/stats") as r:
            return await r.json()

    async def upgraded(self) -> int:
        """Healthy targets already at their new version at the simulator."""
        now = await self.sim_fleet()
        return sum(now.get(t.id) == t.versions[-1] for t in self.sim_targets[: self.n])

    async def runs(self, limit_s: float = 10.0) -> dict[str, dict[str, Any]] | None:
        """Every run in the ledger by id (None when the store cannot be read right now)."""
        from shared.store import open_store

        try:
            async with asyncio.timeout(limit_s):
                if self._store is None:
                    store = open_store(self.bus_url)
                    await store.start()
                    self._store = store
                return {r["id"]: r for r in await self._store.ledger.runs()}
        except Exception:  # nats-server down, sqlite busy: not known now
            return None

    def run_ids(self) -> dict[str, str]:
        """target name -> the id of its run (one run per target and version: ``run_id``)."""
        from shared.domain.stages import run_id

        return {t.name: run_id(t.name, t.versions[-1]) for t in self.sim_targets}

    def _done(self, runs: dict[str, dict[str, Any]] | None) -> bool:
        if runs is None:
            return False
        return all(runs.get(rid, {}).get("state") in TERMINAL for rid in self.run_ids().values())

    async def wait_done(
        self, limit_s: float, *, meanwhile: Callable[[], Awaitable[None]] | None = None, every: float = 0.5
    ) -> bool:
        """Until every target's run is terminal (True) or ``limit_s`` passed (False).
        ``meanwhile`` is awaited between looks (chaos: the next kill)."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if self._done(await self.runs()):
                return True
            if meanwhile is not None:
                await meanwhile()
            await asyncio.sleep(every)
        return self._done(await self.runs())

    # -- the outcome -----------------------------------------------------------------------------

    async def dead_letters(self) -> list[str]:
        from shared.bus import open_bus

        bus = open_bus(self.bus_url)
        try:
            async with asyncio.timeout(30):
                await bus.start()
                letters = await bus.dead_letters()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(bus.close(), 10)
        return [
            f"{d.consumer}: {d.event.type} ({d.event.target or '-'}) after {d.attempts}: {d.error[:300]}"
            for d in letters
        ]

    async def figures(self) -> Figures:
        versions = await self.sim_fleet()
        stats = (await self.sim_stats())["calls"]
        runs = await self.runs(limit_s=30) or {}
        fig = Figures(
            bus=self.bus_kind,
            targets=len(self.sim_targets),
            failing=[t.name for t in self.failing],
            runs=runs,
            kills=dict(self.kills),
            wall_s=time.monotonic() - self._t0,
            faults=sorted(self.faults),
        )
        ids = self.run_ids()
        failing = {t.name for t in self.failing}
        for t in self.sim_targets:
            now, want = versions.get(t.id), t.versions[-1]
            if t.name in failing:
                if now == want:
                    fig.failing_upgraded[t.name] = now
            elif now != want:
                fig.not_upgraded[t.name] = (now, want)
            for ep in START_ENDPOINTS[t.kind]:
                n = stats.get(ep, {}).get(t.id, 0)
                if n != 1:
                    fig.calls_not_one[f"{t.name} {ep}"] = n
            run = runs.get(ids[t.name])
            if run is None:
                fig.not_terminal[f"(no run) {t.name}"] = "missing"
                continue
            missing = [
                k for k in ("target", "kind", "from_version", "to_version", "created_at") if k not in run
            ]
            if run.get("target", t.name) != t.name or missing:
                fig.runs_incomplete[run["id"]] = f"{t.name}: target {run.get('target')!r}, missing {missing}"
            state = run.get("state", "?")
            if state not in TERMINAL:
                fig.not_terminal[run["id"]] = f"{t.name}: {state} {_stages(run)}"
            elif t.name in failing and state != "failed":
                fig.failing_not_failed[t.name] = state
            elif t.name not in failing and state != "succeeded":
                fig.not_succeeded[t.name] = f"{state} {run.get('code', '')}: {run.get('message', '')}"[:300]
        fig.dead_letters = await self.dead_letters()
        if fig.not_terminal:
            fig.notes["waves"] = await self.waves()
        return fig

    async def waves(self) -> dict[str, Any]:
        """What each window's waves document holds (for a run left open: which slot holds it)."""
        from shared.domain.waves import BUCKET

        out: dict[str, Any] = {}
        try:
            async with asyncio.timeout(30):
                await self.runs(limit_s=30)  # (opens the store)
                kv = self._store.kv
                for key in await kv.keys(BUCKET):
                    entry = await kv.get(BUCKET, key)
                    doc = entry.value if entry is not None else {}
                    out[key] = {
                        "halted": doc.get("halted"),
                        "queue": doc.get("queue"),
                        "runs": {
                            rid: f"{r.get('target')} wave {r.get('wave')} {r.get('state')}"
                            for rid, r in doc.get("runs", {}).items()
                        },
                    }
        except Exception as exc:  # a diagnostic: never the reason a figure is missing
            out["error"] = repr(exc)
        return out

    def log_excerpt(self, *names: str, limit: int = 60) -> str:
        """Warning-and-worse log lines of every process, plus every line naming one of ``names``."""
        picked = []
        for p in self.procs:
            for line in p.lines():
                text = json.dumps(line, sort_keys=True)
                if line.get("level") in ("warning", "error", "critical") or any(n in text for n in names):
                    picked.append(f"[{p.name}] {text[:500]}")
        return "\n".join(picked[-limit:])


def _stages(run: dict[str, Any]) -> str:
    return " ".join(f"{k}:{v.get('state', '?')}" for k, v in run.get("stages", {}).items())
