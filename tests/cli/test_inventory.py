"""`upshift inventory` and `upshift plan --live` on the demo fleet, against the simulator over
loopback, as a user runs them (subprocesses)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import aiohttp

from shared.ops.demo import DEMO_ENV, build_demo_fleet
from simulator.core import SimCredentials
from simulator.testing import run_simulator

ROOT = Path(__file__).resolve().parents[2]


async def upshift(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shared.ops.cli", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_inventory_reads_every_vendor_and_shows_drift(tmp_path: Path) -> None:
    creds = SimCredentials()
    plan = build_demo_fleet(5, "", creds.hw_project_id)
    async with run_simulator(targets=plan.sim_targets, creds=creds) as sim:
        fleet = build_demo_fleet(5, sim.url, creds.hw_project_id)
        path = tmp_path / "fleet.yaml"
        path.write_text(fleet.fleet_yaml)
        env = {**os.environ, "PYTHONPATH": str(ROOT), **{k: getattr(creds, f) for k, f in DEMO_ENV.items()}}

        code, out, err = await upshift("--log-json", "inventory", "--fleet", str(path), "--json", env=env)
        assert code == 0, err[-2000:]
        rows = {r["target"]: r for r in json.loads(out)["targets"]}
        assert len(rows) == 5 and not any(r["error"] for r in rows.values()), rows
        for st in plan.sim_targets:
            row = rows[st.name]
            assert row["version"] == st.version and not row["drift"], row
            assert row["state"], row
        kafka = next(r for r in rows.values() if r["kind"] == "ncloud-kafka")
        assert "3503006" in kafka["may_move_to"]  # the version the demo upgrades it to
        cce = next(r for r in rows.values() if r["kind"] == "cce")
        assert cce["may_move_to"], cce  # upgradeinfo's targetVersions
        ob = next(r for r in rows.values() if r["kind"] == "oceanbase")
        assert ob["may_move_to"] is None  # OCP names no targets per cluster

        # someone upgraded the CCE cluster by hand: the vendor now says so, the fleet file does not
        moved = next(t for t in plan.sim_targets if t.kind == "cce")
        async with (
            aiohttp.ClientSession() as s,
            s.post(f"{sim.url}/_sim/targets/{moved.id}", json={"version": moved.versions[-1]}) as r,
        ):
            assert r.status == 200
        code, out, _ = await upshift("--log-json", "inventory", "--fleet", str(path), "--json", env=env)
        assert code == 1
        drifted = {r["target"]: r for r in json.loads(out)["targets"] if r["drift"]}
        assert list(drifted) == [moved.name] and drifted[moved.name]["version"] == moved.versions[-1]

        # plan --live plans from what the vendor says: that cluster takes nothing, the others do
        release = next(r for r in fleet.releases if r["product"] == "cce")
        args = [
            "--log-json",
            "plan",
            "--fleet",
            str(path),
            "--release",
            f"cce={release['version']}",
            "--json",
        ]
        _, from_file, _ = await upshift(*args, env=env)
        code, live, err = await upshift(*args, "--live", env=env)
        assert code == 0, err[-2000:]

        def taken(doc: str) -> dict[str, bool]:
            return {
                t["target"]: t["take"]
                for t in json.loads(doc)["releases"][0]["targets"]
                if t["kind"] == "cce"
            }

        assert taken(from_file)[moved.name] is True
        assert taken(live)[moved.name] is False

        # a release CCE does not offer this cluster (upgradeinfo's targetVersions) is refused live
        args = ["--log-json", "plan", "--fleet", str(path), "--release", "cce=v1.31", "--json"]
        _, from_file, _ = await upshift(*args, env=env)
        code, live, err = await upshift(*args, "--live", env=env)
        assert code == 0, err[-2000:]
        rows = {t["target"]: t for t in json.loads(live)["releases"][0]["targets"]}
        assert taken(from_file)[moved.name] is True
        assert rows[moved.name]["take"] is False and rows[moved.name]["code"] == "not-offered", rows[
            moved.name
        ]
