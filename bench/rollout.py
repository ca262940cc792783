"""Rollout at scale: N targets on the simulator, wall time against the realised critical path.

    python -m bench.rollout [--targets 1000] [--bus sqlite|nats] [--workers 2] [--speed 200]
                            [--concurrency 100] [--sigma 0.3] [--seed 1] [--latency-ms 0]

The pipeline runs as deployed: ``upshift serve`` (ingress + every function + the clock) as a
subprocess, and with ``--bus nats`` also ``--workers`` ``upshift worker`` subprocesses sharing
its durable consumers on one nats-server (so "2 workers" is serve plus two workers: three
consumers per function). SQLite runs serve alone (one process owns the file's work; extra
workers on one SQLite file only contend for its lock). The simulator runs in this process; each
job's duration is drawn, seeded, from a lognormal around its kind's duration (median the demo's
``job_seconds``, ``--sigma``), and the simulator records when every job really ends.

Figures (domain seconds unless said; the ``*_s`` of wall and bound are real seconds):

* ``wall_s``: from the releases being accepted to the last run's ``ended_at``;
* ``bound_s``: :func:`bench._realised.bound_seconds` over the realised durations (canary wave,
  bake, then max(longest target, total work / concurrency)), plus ``--latency-ms`` per call;
* ``median_status_calls``/``p95_status_calls``: the ledger's status calls per followed job;
* ``median_notice_s``/``p95_notice_s``: a job's end at the vendor to its stage's ``ended_at``
  (goal p95 ≤ max(5 s, 10 % of the job): ``notice_goal_p95``, the p95 of each delay over its
  own goal, ≤ 1 when met — ``p95_notice_s`` pools 2-minute prechecks with 40-minute upgrades);
* ``peak_rss_mb``: the largest peak RSS (``VmHWM``) of the upshift processes; ``bench_rss_mb``
  is this process's (the simulator's) from ``resource.getrusage``.

Goals (issue 13): 1,000 targets ≤ 1.15× bound, 10,000 ≤ 1.25× with peak RSS ≤ 300 MB. The last
line is one JSON object with :data:`LAST_LINE`'s keys; the line before, ``{"details": {...}}``,
has every figure above (workers, notice median, late notices, the simulator's RSS, the settings).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench._realised import (
    bound_seconds,
    notice_delays,
    notice_ratios,
    pct,
    status_calls_per_job,
    target_seconds,
)
from bench._rollout import Proc, Rollout, wait_healthy
from simulator.core import JobDurations
from simulator.natsd import NatsServer

__all__ = ["main"]

#: Median simulated job seconds per kind (the demo's).
JOB_SECONDS = {
    "ncloud-kafka": 1500.0,
    "cce": 2400.0,
    "autopilot": 2400.0,
    "starrocks": 1200.0,
    "oceanbase": 1800.0,
}
#: Vendor calls per stage the bound counts latency for (a start and a status call).
CALLS_PER_STAGE = 2
STAGE_COUNT = {"ncloud-kafka": 3, "cce": 3, "autopilot": 5, "starrocks": 1, "oceanbase": 1}
BAKE_S = 600.0  # build_demo_fleet's default bake (10m)
#: Long enough for 10,000 targets at the concurrency used: the window must never be what holds.
WINDOW = "duration: 160h, cutoff: 30m"
#: The last line's keys (issue 13); the line before it has every figure (``{"details": ...}``).
LAST_LINE = (
    "targets",
    "bus",
    "upgraded",
    "wall_s",
    "bound_s",
    "ratio",
    "median_status_calls",
    "p95_status_calls",
    "p95_notice_s",
    "peak_rss_mb",
)
CLIENT: dict[str, Any] = {"limits": {"concurrency": 64, "rate": 2000, "burst": 500}}


def _hwm_mb(pid: int) -> float | None:
    """Peak resident set (VmHWM) of a live process, MB."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


async def _run(args: argparse.Namespace, workdir: Path, nats: NatsServer | None) -> dict[str, Any]:
    async with Rollout(
        workdir,
        targets=args.targets,
        failing=0,
        bus=args.bus,
        nats=nats,
        speed=args.speed,
        concurrency=args.concurrency,
        window=WINDOW,
        client=CLIENT,
        seed=args.seed,
    ) as ro:
        assert ro.sim is not None
        for t in ro.sim_targets:
            t.job_seconds = JOB_SECONDS[t.kind]
        ro.sim.state.durations = JobDurations(sigma=args.sigma, seed=args.seed)
        if args.latency_ms:
            await ro.set_faults({"*": {"latency_ms": args.latency_ms}})
        serve, port = ro.serve()
        if args.profile:  # serve under cProfile: its stats are written when SIGTERM ends it
            serve.cmd[1:3] = ["-m", "cProfile", "-o", args.profile, "-m", "shared.ops.cli"]
        serve.start()
        procs: list[Proc] = [serve]
        if args.bus == "nats":
            procs += [ro.worker(i).start() for i in range(args.workers)]
        await wait_healthy(port, serve, limit_s=120)
        posted_at = _domain_now(ro)
        if not await ro.post_releases(port, proc=serve):
            raise SystemExit(f"serve did not take the releases:\n{serve.tail()}")
        done = await ro.wait_done(args.give_up_s, every=2.0)
        rss = [m for p in procs if p.popen is not None and (m := _hwm_mb(p.popen.pid)) is not None]
        offset = ro.sim.state.clock.now() - _domain_now(ro)  # simulator clock minus the pipeline's
        fig = await ro.figures()
        drawn = dict(ro.sim.state.durations.drawn)
    runs = [r for r in fig.runs.values() if r.get("state") != "superseded"]
    if args.dump:
        dump = json.dumps({"runs": runs, "drawn": drawn, "offset": offset}, default=str)
        await asyncio.to_thread(Path(args.dump).write_text, dump)
    ended = [datetime.fromisoformat(r["ended_at"]).timestamp() for r in runs if r.get("ended_at")]
    wall = ((max(ended) if ended else posted_at) - posted_at) / args.speed
    ids = [t.id for t in ro.sim_targets]
    waves = [ids[:5], ids[5:]]  # build_demo_fleet: the first of each kind is a wave-0 canary
    latency = {
        t.id: STAGE_COUNT[t.kind] * CALLS_PER_STAGE * args.latency_ms / 1000 * args.speed
        for t in ro.sim_targets
    }
    work = {k: v + latency.get(k, 0.0) for k, v in target_seconds(drawn).items()}
    bound = bound_seconds(waves, work, concurrency=args.concurrency, bake_s=BAKE_S) / args.speed
    calls = status_calls_per_job(runs)
    notices = notice_delays(runs, drawn, target_ids={t.name: t.id for t in ro.sim_targets}, offset_s=offset)
    delays = [d for d, _ in notices]
    p95 = pct(delays, 0.95)
    late = sum(d > max(5.0, 0.1 * s) for d, s in notices)
    result = {
        "targets": args.targets,
        "bus": args.bus,
        "workers": args.workers if args.bus == "nats" else 0,
        "upgraded": args.targets - len(fig.not_upgraded),
        "all_terminal": done,
        "problems": fig.problems()[:5],
        "wall_s": round(wall, 1),
        "bound_s": round(bound, 1),
        "ratio": round(wall / bound, 3) if bound else None,
        "median_status_calls": statistics.median(calls) if calls else None,
        "p95_status_calls": pct(calls, 0.95),
        "median_notice_s": round(statistics.median(delays), 2) if delays else None,
        "p95_notice_s": round(p95, 2) if p95 is not None else None,
        "p95_notice_real_s": round(p95 / args.speed, 3) if p95 is not None else None,
        "late_notices": late,
        "notice_goal_p95": round(g, 3) if (g := pct(notice_ratios(notices), 0.95)) is not None else None,
        "jobs_followed": len(notices),
        "peak_rss_mb": round(max(rss), 1) if rss else None,
        "bench_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "speed": args.speed,
        "concurrency": args.concurrency,
        "sigma": args.sigma,
        "clock_offset_s": round(offset, 2),
    }
    return result


def _domain_now(ro: Rollout) -> float:
    """The pipeline's domain time now (the upshift processes' clock: start + elapsed × speed)."""
    return ro.start.timestamp() + (time.time() - ro.anchor) * ro.speed


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="upshift-bench-rollout-") as tmp:
        nats = NatsServer.start(log=str(Path(tmp) / "nats-server.log")) if args.bus == "nats" else None
        try:
            return await _run(args, Path(tmp), nats)
        finally:
            if nats is not None:
                nats.stop()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--bus", choices=("sqlite", "nats"), default="sqlite")
    parser.add_argument("--workers", type=int, default=2, help="upshift worker processes beside serve (NATS)")
    parser.add_argument("--speed", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--sigma", type=float, default=0.3, help="lognormal sigma of job durations")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="simulated API latency per call")
    parser.add_argument("--give-up-s", type=float, default=3600.0, help="real seconds")
    parser.add_argument("--profile", help="run serve under cProfile, its stats to this file")
    parser.add_argument("--dump", help="write the runs and the drawn durations here (JSON)")
    args = parser.parse_args(argv)
    if args.profile:
        args.profile = os.path.abspath(args.profile)  # serve runs in the repository's root
    return args


if __name__ == "__main__":
    res = asyncio.run(main(parse()))
    for k, v in res.items():
        print(f"{k:>20}  {v}", file=sys.stderr)
    print(json.dumps({"details": res}))
    print(json.dumps({k: res[k] for k in LAST_LINE}))
