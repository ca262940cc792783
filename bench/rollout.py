"""Rollout: N targets on the simulator, wall time against the critical-path bound.

    python -m bench.rollout [--targets 1000] [--speed 200] [--concurrency 100] [--latency-ms 5]

The whole pipeline runs as in ``upshift demo`` (embedded bus, every function, the simulator
in-process, releases through the webhook edge). The bound is computed from the same settings:

* each target's intrinsic time is the sum of its stages' simulated job durations (the simulator's
  upgrade ``job_seconds``; CCE/Autopilot prechecks take 5 %, Autopilot snapshots 10 %) plus one
  start call and one status call of API latency per stage;
* wave 0 (the canaries, one per kind) takes its longest target; then the bake time; then wave 1
  takes at least max(longest target, total work / concurrency) — the list-scheduling lower bound.

Budget: wall ≤ 1.25 × bound; median ≤ 10 status calls per completed job. The last line is one
JSON object (``targets``, ``wall_s``, ``bound_s``, ``ratio``, ``median_status_calls``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
from typing import Any

from rich.console import Console

from shared.ops.demo import run_demo

#: Simulated upgrade job seconds per kind (the demo's values).
JOB_SECONDS = {
    "ncloud-kafka": 1500.0,
    "cce": 2400.0,
    "autopilot": 2400.0,
    "starrocks": 1200.0,
    "oceanbase": 1800.0,
}
#: Simulated seconds of the other stages, as fractions of the upgrade job (see simulator/huawei/cce.py).
STAGE_FRACTIONS = {
    "ncloud-kafka": (1.0,),
    "cce": (0.05, 1.0),
    "autopilot": (0.05, 0.10, 1.0),
    "starrocks": (1.0,),
    "oceanbase": (1.0,),
}
STAGE_COUNT = {"ncloud-kafka": 3, "cce": 3, "autopilot": 5, "starrocks": 1, "oceanbase": 1}
KINDS = ("ncloud-kafka", "cce", "autopilot", "starrocks", "oceanbase")  # the demo fleet's order
BAKE_S = 600.0


def target_seconds(kind: str, latency_s: float, speed: float) -> float:
    """Domain seconds one target needs at the least: its jobs, plus a start and a status call per stage."""
    jobs = sum(f * JOB_SECONDS[kind] for f in STAGE_FRACTIONS[kind])
    return jobs + STAGE_COUNT[kind] * 2 * latency_s * speed


def bound_seconds(n: int, concurrency: int, latency_s: float, speed: float) -> float:
    """The critical-path bound in real seconds (see the module docstring)."""
    kinds = [KINDS[i % len(KINDS)] for i in range(n)]
    d = [target_seconds(k, latency_s, speed) for k in kinds]
    wave0, wave1 = d[: len(KINDS)], d[len(KINDS) :]
    domain = max(wave0)
    if wave1:
        domain += BAKE_S + max(max(wave1), sum(wave1) / concurrency)
    return domain / speed


def status_calls_per_job(runs: dict[str, dict[str, Any]]) -> list[int]:
    """Status calls of every completed stage that had a vendor job to follow."""
    out = []
    for run in runs.values():
        for stage in run.get("stages", {}).values():
            if stage.get("job_id") and stage.get("state") == "succeeded" and stage.get("status_calls"):
                out.append(int(stage["status_calls"]))
    return out


async def main(n: int, speed: float, concurrency: int, latency_ms: float) -> dict[str, Any]:
    faults = (
        {svc: {"latency_ms": latency_ms} for svc in ("iam", "cce", "autopilot", "taurusdb", "ocp", "ncloud")}
        if latency_ms
        else False
    )
    with tempfile.TemporaryDirectory(prefix="upshift-bench-") as tmp:
        summary = await run_demo(
            targets=n,
            speed=speed,
            faults=faults,
            give_up_s=3600,
            live=False,
            console=Console(quiet=True),
            workdir=tmp,
            concurrency=concurrency,
            window="duration: 23h, cutoff: 30m",
            bake=f"{int(BAKE_S)}s",
            client={"limits": {"concurrency": 64, "rate": 2000, "burst": 500}},
            job_seconds=JOB_SECONDS,
        )
    bound = bound_seconds(n, concurrency, latency_ms / 1000, speed)
    calls = status_calls_per_job(summary["runs"])
    upgraded = sum(r["result"] == "upgraded" for r in summary["targets"])
    dup = sum(r["upgrade_calls"] != 1 for r in summary["targets"])
    median = statistics.median(calls) if calls else None
    print(f"targets            {n} ({upgraded} upgraded, {dup} with != 1 upgrade call)")
    print(f"wall               {summary['wall_s']:.1f} s")
    print(
        f"critical-path bound {bound:.1f} s  (speed {speed:g}x, concurrency {concurrency}, latency {latency_ms:g} ms)"
    )
    print(f"ratio              {summary['wall_s'] / bound:.3f}  (budget <= 1.25)")
    print(
        f"status calls/job   median {median}, max {max(calls) if calls else None} over {len(calls)} jobs (budget median <= 10)"
    )
    return {
        "targets": n,
        "upgraded": upgraded,
        "wall_s": summary["wall_s"],
        "bound_s": round(bound, 2),
        "ratio": round(summary["wall_s"] / bound, 3),
        "median_status_calls": median,
        "speed": speed,
        "concurrency": concurrency,
        "latency_ms": latency_ms,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--speed", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    args = parser.parse_args()
    from shared.log import configure

    configure(json=True, level=40, stream=open("/dev/null", "w"))
    print(json.dumps(asyncio.run(main(args.targets, args.speed, args.concurrency, args.latency_ms))))
