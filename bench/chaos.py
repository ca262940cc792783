"""Chaos: a rollout on a misbehaving simulator while its processes are killed -9 at random.

    python -m bench.chaos [--targets 200] [--kills 20] [--bus sqlite|nats|both] [--seed 4242]

* SQLite: ``upshift serve`` alone, killed ``--kills`` times, restarted each time.
* NATS: ``upshift serve`` plus ``--workers`` (3) ``upshift worker`` processes on the same bus,
  ``--kills`` kills spread over serve and the workers, and nats-server killed and restarted on
  the same port and store ``--nats-kills`` times (default 3; down 0.5–2 s each).

Simulator faults are on (``bench._rollout.FAULTS``: a few % of 5xx/429/resets, answers lost
after the job started or 1 s late, 1 s list lag, vendor clocks off on CCE and OCP) and one target
in 40 fails at the vendor. Kills happen only while runs are still open, up to ``--kill-gap`` s
apart (plus the restart): a rollout that ends first gets fewer (the line says how many landed).

One JSON line per bus: targets, kills (serve/worker/nats-server), start calls not made exactly
once, targets not upgraded, runs not terminal or ended wrongly, dead letters, wall seconds. Exit
status 1 when any invariant broke (the problems are printed to stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench._rollout import FAULTS, Figures, Rollout, wait_healthy
from simulator.natsd import NatsServer

__all__ = ["run_chaos"]


async def run_chaos(
    workdir: Path,
    *,
    bus: str,
    targets: int,
    kills: int,
    workers: int = 0,
    nats_kills: int = 0,
    failing: int | None = None,
    seed: int = 4242,
    speed: float = 300.0,
    concurrency: int = 20,
    faults: dict[str, Any] | None = None,
    give_up_s: float = 600.0,
    nats: NatsServer | None = None,
    kill_gap: tuple[float, float] = (0.5, 3.0),
) -> tuple[Figures, bool, Rollout]:
    """Run one chaos rollout; (figures, whether every run ended in time, the finished rollout —
    for its logs). ``nats``: a server this run may kill (default: one of its own). Kills are
    ``kill_gap`` (uniform, real seconds) apart, plus the restart; none once every run ended."""
    rng = random.Random(seed)
    own = None
    if bus == "nats" and nats is None:
        nats = own = NatsServer.start(log=str(Path(workdir) / "nats-server.log"))
    failing = max(1, targets // 40) if failing is None else failing
    try:
        async with Rollout(
            Path(workdir), targets=targets, failing=failing, bus=bus, nats=nats, speed=speed,
            concurrency=concurrency, seed=seed,
        ) as ro:  # fmt: skip
            await ro.set_faults(FAULTS if faults is None else faults)
            serve, port = ro.serve()
            serve.start()
            pool = [serve, *(ro.worker(i + 1).start() for i in range(workers))]
            await wait_healthy(port, serve)
            assert await ro.post_releases(port, proc=serve), "releases not accepted"
            # after which process kills nats-server goes down too: spread over the run
            nats_after = (
                set(rng.sample(range(1, kills + 1), min(nats_kills, kills))) if bus == "nats" else set()
            )
            upgraded_at_kill: list[int] = []

            async def next_kill() -> None:
                if len(upgraded_at_kill) >= kills:
                    return
                await asyncio.sleep(rng.uniform(*kill_gap))
                victim = rng.choice(pool)
                upgraded_at_kill.append(await ro.upgraded())
                await ro.kill(victim)
                if len(upgraded_at_kill) in nats_after:
                    await ro.kill_nats(down_s=rng.uniform(0.5, 2.0))
                victim.start()
                if victim is serve:
                    await wait_healthy(port, serve)

            done = await ro.wait_done(give_up_s, meanwhile=next_kill, every=1.0)
            fig = await ro.figures()
            fig.notes["upgraded_at_kill"] = upgraded_at_kill
            fig.notes["healthy_targets"] = targets
    finally:
        if own is not None:
            await asyncio.to_thread(own.stop)
    return fig, done, ro


async def _main(args: argparse.Namespace) -> int:
    status = 0
    for bus in ("sqlite", "nats") if args.bus == "both" else (args.bus,):
        with tempfile.TemporaryDirectory(prefix=f"upshift-chaos-{bus}-") as tmp:
            fig, done, _ = await run_chaos(
                Path(tmp), bus=bus, targets=args.targets, kills=args.kills,
                workers=args.workers if bus == "nats" else 0, nats_kills=args.nats_kills if bus == "nats" else 0,
                seed=args.seed, speed=args.speed, concurrency=args.concurrency, give_up_s=args.timeout,
                kill_gap=(args.kill_gap / 4, args.kill_gap),
            )  # fmt: skip
            line = fig.summary()
            line["all_ended"] = done
            print(json.dumps(line), flush=True)
            problems = fig.problems()
            if problems or not done:
                status = 1
                print("\n".join(problems) or "runs did not all end in time", file=sys.stderr)
    return status


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--kills", type=int, default=20, help="kills of serve/worker processes")
    parser.add_argument("--bus", choices=("sqlite", "nats", "both"), default="both")
    parser.add_argument("--workers", type=int, default=3, help="upshift worker processes beside serve (NATS)")
    parser.add_argument("--nats-kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=4242)
    parser.add_argument("--speed", type=float, default=300.0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up after this many real seconds")
    parser.add_argument(
        "--kill-gap", type=float, default=1.2, help="at most this many real seconds between kills"
    )
    # nats-py logs every failed reconnect of this process's own store reads while nats-server is down
    logging.getLogger("nats").setLevel(logging.CRITICAL)
    sys.exit(asyncio.run(_main(parser.parse_args())))
