"""A deliberately broken signer in our clients makes the simulator refuse the demo fleet's
requests, every vendor: the simulator checks each vendor's auth itself (it shares no code with
our signers), so this fails if either side stops checking what the other computes."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from shared.clouds.huawei import HuaweiClient
from shared.clouds.ncloud.client import NcloudClient
from shared.clouds.oceanbase.client import OceanBaseClient
from shared.clouds.registry import CloudClients
from shared.domain.fleet import parse_fleet
from shared.ops.demo import DEMO_ENV, build_demo_fleet
from shared.ops.inventory import look_all
from simulator.core import SimCredentials
from simulator.testing import run_simulator

#: The headers that carry each vendor's credential or signature.
AUTH_HEADERS = {"authorization", "x-ncp-apigw-signature-v2", "x-auth-token"}


def break_signer(monkeypatch: pytest.MonkeyPatch, cls: type) -> None:
    """Sign as usual, then damage the signature: what a signer bug puts on the wire."""
    original = cls._sign

    async def broken(self: Any, method: str, url: Any, headers: dict[str, str], body: bytes) -> None:
        signed = original(self, method, url, headers, body)
        if inspect.isawaitable(signed):
            await signed
        for name in list(headers):
            if name.lower() in AUTH_HEADERS:
                value = headers[name]
                headers[name] = value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB")

    monkeypatch.setattr(cls, "_sign", broken)


async def test_a_broken_signer_is_refused_by_every_vendor(monkeypatch: pytest.MonkeyPatch) -> None:
    creds = SimCredentials()
    plan = build_demo_fleet(5, "", creds.hw_project_id)
    for env, field in DEMO_ENV.items():
        monkeypatch.setenv(env, getattr(creds, field))
    async with run_simulator(targets=plan.sim_targets, creds=creds) as sim:
        fleet = parse_fleet(build_demo_fleet(5, sim.url, creds.hw_project_id).fleet_yaml, "demo.yaml")

        async def look() -> list[Any]:
            clouds = CloudClients.from_fleet(fleet)
            try:
                return await look_all(fleet, clouds)
            finally:
                await clouds.close()

        healthy = await look()
        assert not [live.error for live in healthy if live.error]
        sim.state.stats.reset()

        for cls in (HuaweiClient, NcloudClient, OceanBaseClient):
            break_signer(monkeypatch, cls)
        lives = await look()
        assert all(live.error and live.version is None for live in lives), lives
        assert all("401" in live.error or "403" in live.error for live in lives), [
            live.error for live in lives
        ]
        stats = sim.state.stats.snapshot()
        assert not stats["calls"], "a refused request reached a vendor handler"
        refused = {svc for svc, n in stats["auth_failures"].items() if n}
        assert {"cce", "autopilot", "taurusdb", "ocp", "ncloud"} <= refused, stats["auth_failures"]
