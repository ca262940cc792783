"""The bundled demo fleet and its simulator agree on ids."""

from __future__ import annotations

import aiohttp

from shared.demo import build_demo_fleet
from shared.fleet import parse_fleet
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
        r = await v.hw("GET", f"/v3/{{p}}/instances/{target.instance_id}/starrocks/{target.starrocks_instance_id}")
        assert r.status == 200, await r.text()
        [instance] = (await r.json())["instances"]
        assert (instance["id"], instance["data_store_version"]) == (target.starrocks_instance_id, target.version)
        # the upgrade path takes the TaurusDB id the stage sends
        r = await v.hw("POST", f"/v3/{{p}}/instances/{target.instance_id}/starrocks/db-upgrade", json={})
        assert r.status == 200 and sim.state.active_job(node) is not None

