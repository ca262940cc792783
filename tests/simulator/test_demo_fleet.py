"""The bundled demo fleet and its simulator agree on ids, and its fault mix is valid."""

from __future__ import annotations

import aiohttp

from shared.domain.fleet import parse_fleet
from shared.ops.demo import DEMO_FAULTS, build_demo_fleet
from simulator.core import SimCredentials
from simulator.testing import run_simulator
from tests.simulator._vendor import Vendor


async def test_the_demo_starrocks_target_is_readable_through_the_instance_route() -> None:
    creds = SimCredentials()
    sims = build_demo_fleet(5, "", creds.hw_project_id).sim_targets
    async with run_simulator(targets=sims, speed=1.0, creds=creds) as sim, aiohttp.ClientSession() as http:
        fleet = parse_fleet(build_demo_fleet(5, sim.url, creds.hw_project_id).fleet_yaml, "demo fleet")
        [target] = [t for t in fleet.targets if t.kind == "starrocks"]
        assert target.instance_id.endswith("in07") and target.starrocks_instance_id.endswith("in17")
        node = sim.target("starrocks")
        assert (node.id, node.extra["instance_id"]) == (target.starrocks_instance_id, target.instance_id)
        v = Vendor(sim, http)
        r = await v.hw(
            "GET", f"/v3/{{p}}/instances/{target.instance_id}/starrocks/{target.starrocks_instance_id}"
        )
        assert r.status == 200, await r.text()
        [instance] = (await r.json())["instances"]
        assert (instance["id"], instance["data_store_version"]) == (
            target.starrocks_instance_id,
            target.version,
        )
        # the upgrade path takes the TaurusDB id the stage sends
        r = await v.hw("POST", f"/v3/{{p}}/instances/{target.instance_id}/starrocks/db-upgrade", json={})
        assert r.status == 200 and sim.state.active_job(node) is not None


async def test_the_demo_fault_mix_is_accepted_and_skews_two_clocks() -> None:
    async with run_simulator(faults=DEMO_FAULTS) as sim:
        skews = {key: spec.clock_skew_s for key, spec in sim.state.faults.specs.items()}
        assert sorted(s for s in skews.values() if s) == [-45.0, 90.0]
        for spec in sim.state.faults.specs.values():
            assert 0 < spec.apply_then_slow_s < 30  # under the clients' default 30 s timeout
            assert spec.list_lag_s and spec.apply_then_5xx_rate and spec.drop_after_commit_rate
