"""`upshift simulate` equivalent: ``python -m simulator.cli`` as a subprocess, hit over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import aiohttp

from shared.clouds import close_sessions
from shared.clouds.ncloud.client import NcloudClient, NcloudConfig


async def test_standalone_simulator_serves_and_takes_credentials_from_env(monkeypatch) -> None:
    env = {**os.environ, "UPSHIFT_SIM_NCP_AK": "cli-ak", "UPSHIFT_SIM_NCP_SK": "cli-secret-key"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator.cli", "--port", "0", "--speed", "600",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
        url = ready["url"]
        async with aiohttp.ClientSession() as http:
            fleet = await (await http.get(f"{url}/_sim/fleet")).json()
            assert fleet["speed"] == 600 and fleet["targets"]
        monkeypatch.setenv("T_NCP_AK", "cli-ak")
        monkeypatch.setenv("T_NCP_SK", "cli-secret-key")
        client = NcloudClient(
            NcloudConfig(endpoint=url, access_key_env="T_NCP_AK", secret_key_env="T_NCP_SK")
        )
        info = await client.get_cluster_info(3432149)
        assert info.kafkaVersionCode == 2823006
        await close_sessions()
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    assert proc.returncode == 0


async def test_bad_fleet_file_exits_with_a_message(tmp_path) -> None:
    bad = tmp_path / "fleet.yaml"
    bad.write_text("targets:\n  - {name: a, kind: cce, id: x, version: v1, colour: red}\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator.cli", "--fleet", str(bad),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 1
    assert f"{bad}:2: targets[0].colour" in err.decode()


def test_help_documents_credentials_and_env_vars() -> None:
    from click.testing import CliRunner

    from simulator.cli import simulate

    out = CliRunner().invoke(simulate, ["--help"]).output
    for flag in ("--fleet", "--port", "--speed", "--faults", "--ocp-password", "UPSHIFT_SIM_NCP_SK"):
        assert flag in out
