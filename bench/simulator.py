"""Simulator throughput: requests/s the simulator (one process, one core) answers on loopback.

The simulator runs in a subprocess (``python -m simulator.cli``); this process drives it with
aiohttp through the real clients (signed NAVER and OCP AK/SK calls) and with unauthenticated
``/_sim/fleet`` reads. Last line: one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import aiohttp

from shared.clouds import close_sessions
from shared.clouds.ncloud.client import NcloudClient, NcloudConfig
from shared.clouds.oceanbase.client import OceanBaseClient, OceanBaseConfig
from simulator.core import SimCredentials

__all__ = ["main"]

DURATION = float(os.environ.get("BENCH_SECONDS", "3"))
WORKERS = 32


async def _drive(call, duration: float) -> float:
    done = 0
    stop = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await call()
            done += 1

    await asyncio.gather(*(worker() for _ in range(WORKERS)))
    return done / duration


async def _run() -> dict[str, float]:
    creds = SimCredentials()
    os.environ.update(
        {
            "B_NCP_AK": creds.ncp_ak,
            "B_NCP_SK": creds.ncp_sk,
            "B_OCP_AK": creds.ocp_ak,
            "B_OCP_SK": creds.ocp_sk,
        }
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator.cli", "--port", "0", stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        url = json.loads(await proc.stdout.readline())["url"]
        fast = {"rate": 1e6, "burst": 10000, "concurrency": WORKERS}
        ncp = NcloudClient(
            NcloudConfig(endpoint=url, access_key_env="B_NCP_AK", secret_key_env="B_NCP_SK", limits=fast)
        )
        ocp = OceanBaseClient(
            OceanBaseConfig(url=url, auth="aksk", ak_env="B_OCP_AK", sk_env="B_OCP_SK", limits=fast)
        )
        async with aiohttp.ClientSession() as http:

            async def raw() -> None:
                async with http.get(f"{url}/_sim/stats") as r:
                    await r.read()

            results = {
                "raw_stats_rps": await _drive(raw, DURATION),
                "ncloud_status_rps": await _drive(lambda: ncp.get_cluster_status(3432149), DURATION),
                "ocp_cluster_rps": await _drive(lambda: ocp.get_cluster(22), DURATION),
            }
        await close_sessions()
        return {k: round(v, 1) for k, v in results.items()}
    finally:
        proc.terminate()
        await proc.wait()


def main() -> None:
    results = asyncio.run(_run())
    for name, value in results.items():
        print(f"{name:>20}: {value:,.0f} req/s")
    print(json.dumps({"bench": "simulator", "seconds": DURATION, "workers": WORKERS, **results}))


if __name__ == "__main__":
    main()
