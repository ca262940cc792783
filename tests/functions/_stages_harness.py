"""A harness for the stage functions, track_job and advance: the real functions in a Runtime on a
real bus and store (SQLite file or NATS), the real simulator over loopback, clocks sped up alike.

Nothing of ours is faked. ``Doubling`` duplicates deliveries by wrapping handlers so that each
original event they emit is also published a second time under a fresh id.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from events import Event, T
from events.catalog import StageRequested
from events.envelope import consequence_id, new_id
from shared.bus import Delayed, Subscription, open_bus
from shared.clock import Clock
from shared.clouds.registry import CloudClients
from shared.domain.fleet import parse_fleet
from shared.domain.stages import first_stage, run_id
from shared.runtime.host import Runtime
from shared.runtime.manifest import load_manifest
from shared.store import open_store
from simulator.core import SimCredentials, SimTarget
from simulator.testing import run_simulator

__all__ = [
    "CLIENT",
    "CREDS",
    "ENV",
    "FUNCTIONS",
    "KINDS",
    "SPEED",
    "TARGETS",
    "UPGRADE_ENDPOINT",
    "Doubling",
    "Pipeline",
    "pipeline",
    "sim_targets",
    "until",
]

SPEED = 600.0
CREDS = SimCredentials()
ENV = {
    "HW_AK": CREDS.hw_ak,
    "HW_SK": CREDS.hw_sk,
    "OCP_USER": CREDS.ocp_user,
    "OCP_PASSWORD": CREDS.ocp_password,
    "NCP_ACCESS_KEY": CREDS.ncp_ak,
    "NCP_SECRET_KEY": CREDS.ncp_sk,
}
JOB_SECONDS = 600.0

#: name -> (kind, simulator id, from version, to version, fleet fields)
TARGETS: dict[str, tuple[str, str, str, str, str]] = {
    "cce-a": ("cce", "7378a198-4b2c-11ef-9a5e-0255ac100b01", "v1.28.5-r0", "v1.29.3-r0", "cluster_id: {id}"),
    "ap-a": (
        "autopilot",
        "9e1f0c2a-5d3b-11ef-8f1c-0255ac100c01",
        "v1.28.5-r0",
        "v1.29.3-r0",
        "cluster_id: {id}",
    ),
    "sr-a": (
        "starrocks",
        "5c2f9e0d8b7a4c1e9f3d2a1b0c9e8d7fin17",
        "3.1.6",
        "3.2.11",
        "instance_id: 1f2e3d4c5b6a47389a0b1c2d3e4f5a6bin07, starrocks_instance_id: {id}",
    ),
    "ob-a": (
        "oceanbase",
        "22",
        "4.2.1.0-100000102023092807",
        "4.2.1.8-108000022024072217",
        "cluster_id: '{id}', operating_system: el7",
    ),
    "kafka-a": ("ncloud-kafka", "3432149", "2823006", "3503006", "cluster: {id}, config_group: 170"),
}
KINDS = {kind: name for name, (kind, *_rest) in TARGETS.items()}
#: The simulator's endpoint counting each kind's upgrade call.
UPGRADE_ENDPOINT = {
    "cce": "cce.upgrade",
    "autopilot": "autopilot.upgrade",
    "starrocks": "taurusdb.upgrade",
    "oceanbase": "ocp.upgrade",
    "ncloud-kafka": "ncloud.upgrade",
}


#: The functions under test, wired exactly as ``serverless.yml`` wires them (triggers, filters,
#: attempts): every stage function, track_job, advance and autopilot_cancel.
FUNCTIONS = tuple(
    name
    for name, fdef in load_manifest(resolve=False).functions.items()
    if fdef.handler.startswith(
        ("functions.stages.", "functions.track_job.", "functions.advance.", "functions.autopilot_cancel.")
    )
)


def sim_targets(job_seconds: float = JOB_SECONDS) -> list[SimTarget]:
    out = []
    for name, (kind, id_, from_v, to_v, _) in TARGETS.items():
        extra: dict[str, Any] = {}
        if kind == "starrocks":
            extra["instance_id"] = "1f2e3d4c5b6a47389a0b1c2d3e4f5a6bin07"
        if kind == "oceanbase":
            extra = {"obClusterId": 1, "operatingSystem": "el7"}
        if kind == "ncloud-kafka":
            extra = {"brokers": 3, "configGroupNo": 170}
        out.append(SimTarget(name, kind, id_, from_v, [to_v], job_seconds=job_seconds, extra=extra))
    return out


#: Client settings of every cloud in the test fleet (YAML flow mapping items).
CLIENT = (
    "retry: {attempts: 4, base: 0.01, cap: 0.05, deadline: 2}, limits: {total_timeout: 2}, "
    "reconcile: {settle_s: 0.5, look_gap_s: 0.3}"
)


def fleet_text(url: str, durations: str, window: str | None = None, client: str = CLIENT) -> str:
    """``window``: a window spec (YAML flow mapping) every target is placed in, as window ``w``."""
    placed = ", window: w" if window else ""
    targets = "\n".join(
        f"  - {{name: {name}, kind: {kind}, version: '{from_v}', {fields.format(id=id_)}{placed}}}"
        for name, (kind, id_, from_v, _to, fields) in TARGETS.items()
    )
    windows = f"windows: {{w: {window}}}" if window else ""
    retry = client
    return f"""
clouds:
  huawei: {{region: ap-southeast-1, project_id: {CREDS.hw_project_id}, {retry},
            endpoints: {{cce: "{url}", autopilot: "{url}", taurusdb: "{url}", iam: "{url}"}}}}
  ocp: {{url: "{url}", {retry}}}
  ncloud: {{endpoint: "{url}", {retry}}}
{windows}
durations:
{durations}
targets:
{targets}
"""


#: Expected durations equal to what the simulator takes for JOB_SECONDS (checks 5%, snapshot 10%).
DURATIONS = """
  cce: {precheck: 30s, upgrade: 600s, postcheck: 5s}
  autopilot: {workflow: 5s, precheck: 30s, snapshot: 60s, upgrade: 600s, postcheck: 5s}
  starrocks: {upgrade: 600s}
  oceanbase: {upgrade: 600s}
  ncloud-kafka: {precheck: 5s, upgrade: 600s, verify: 5s}
"""


class Doubling:
    """Every event a handler emits is published twice: as emitted, and as a copy with a fresh id
    (copies are not copied again). Together with the first event published twice, every event of
    the pipeline is delivered at least twice."""

    def __init__(self, bus: Any) -> None:
        self.bus = bus
        self.copies: set[str] = set()

    def copy(self, event: Event) -> Event:
        """A copy with another id, derived from the original's: a handler's copies are replays
        too (a handler run again after a late publish ack emits the same copies, which the bus
        drops; fresh random ids made the count of copies depend on the machine's load)."""
        dup = event.model_copy(update={"id": consequence_id(event.id, "copy")})
        self.copies.add(dup.id)
        return dup

    def __getattr__(self, name: str) -> Any:
        return getattr(self.bus, name)

    def subscribe(self, sub: Subscription) -> None:
        inner = sub.handler
        assert inner is not None

        async def doubled(event: Event) -> list[Any]:
            out = list(await inner(event) or ())
            if event.id in self.copies:
                return out
            extra = [
                Delayed(self.copy(i.event), i.delay) if isinstance(i, Delayed) else self.copy(i) for i in out
            ]
            return out + extra

        self.bus.subscribe(dataclasses.replace(sub, handler=doubled))


@dataclasses.dataclass
class Pipeline:
    runtime: Runtime
    sim: Any
    fleet: Any
    seen: dict[str, list[Event]]

    @property
    def store(self) -> Any:
        return self.runtime.store

    def request(self, name: str, stage: str | None = None) -> Event:
        kind, _id, from_v, to_v, _ = TARGETS[name]
        stage = stage or first_stage(kind)
        data = StageRequested(target=name, kind=kind, stage=stage, from_version=from_v, to_version=to_v)
        return Event(
            type=T.STAGE_REQUESTED, data=data, runid=run_id(name, to_v), target=name, kind=kind, stage=stage
        )

    async def start(self, name: str, *, twice: bool = False) -> str:
        event = self.request(name)
        await self.runtime.bus.publish(event)
        if twice:
            await self.runtime.bus.publish(event.model_copy(update={"id": new_id()}))
        return event.runid or ""

    async def outcome(self, name: str, limit: float = 60.0) -> Event:
        """The upgrade.succeeded / upgrade.failed of target ``name``."""
        await until(lambda: any(e.target == name for e in self.outcomes()), limit)
        return next(e for e in self.outcomes() if e.target == name)

    def outcomes(self) -> list[Event]:
        return self.seen.get(T.UPGRADE_SUCCEEDED, []) + self.seen.get(T.UPGRADE_FAILED, [])

    async def stats(self) -> dict[str, dict[str, int]]:
        async with aiohttp.ClientSession() as s, s.get(f"{self.sim.url}/_sim/stats") as r:
            return (await r.json())["calls"]

    async def faults(self, doc: dict[str, Any]) -> None:
        async with aiohttp.ClientSession() as s, s.post(f"{self.sim.url}/_sim/faults", json=doc) as r:
            assert r.status == 200, await r.text()


async def until(predicate: Callable[[], bool], limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {limit}s")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def pipeline(
    bus_url: str,
    *,
    doubling: bool = False,
    job_seconds: float = JOB_SECONDS,
    durations: str = DURATIONS,
    sim_faults: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    window: str | None = None,
    client: str = CLIENT,
    extra_fleet: str = "",
    also: tuple[str, ...] = (),
) -> AsyncIterator[Pipeline]:
    """The stage functions, track_job and advance on ``bus_url`` against a fresh simulator;
    ``also``: more functions of the manifest (``chat_command``), ``extra_fleet``: more fleet blocks."""
    async with run_simulator(targets=sim_targets(job_seconds), speed=SPEED, faults=sim_faults) as sim:
        text = fleet_text(sim.url, durations, window, client) + extra_fleet
        fleet = parse_fleet(text, "test-fleet.yaml")
        bus: Any = open_bus(bus_url)
        if doubling:
            bus = Doubling(bus)
        seen: dict[str, list[Event]] = {}

        async def collect(event: Event) -> None:
            seen.setdefault(event.type, []).append(event)

        for type_ in (
            T.UPGRADE_SUCCEEDED,
            T.UPGRADE_FAILED,
            T.STAGE_FAILED,
            T.STAGE_STARTED,
            T.UPGRADE_CANCELLED,
            T.STAGE_SUCCEEDED,
        ):
            bus.subscribe(
                Subscription(f"seen_{type_.split('.', 2)[2].replace('.', '_')}", type_, handler=collect)
            )
        clouds = CloudClients.from_fleet(fleet)
        runtime = Runtime(
            load_manifest(),
            bus,
            open_store(bus_url),
            clock=Clock(SPEED),
            fleet=fleet,
            clouds=clouds,
            settings=settings,
            only=FUNCTIONS + also,
        )
        await runtime.start()
        try:
            yield Pipeline(runtime, sim, fleet, seen)
        finally:
            await runtime.stop()
            await clouds.close()
