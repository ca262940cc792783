"""``upshift inventory``: what each vendor says its targets run, and drift from the fleet and ledger.

One read-only look per target (two where the vendor lists the versions a target may move to
apart from the target itself):

* CCE / Autopilot: ``GET .../clusters/{c}`` (``spec.version``, ``status.phase``) and
  ``.../upgradeinfo`` (``targetVersions``);
* NAVER Kafka: ``getClusterInfoList/{no}`` (``kafkaVersionCode``, ``status``) and
  ``getCDSSVersionList`` (the codes newer than the running one);
* OceanBase: ``GET /api/v2/ob/clusters/{id}`` (``obVersion``, ``status``) — OCP lists no
  upgrade targets per cluster, so "may move to" is unknown;
* StarRocks: ``ListStarrocksInstanceInfo`` (``data_store_version``, ``status``,
  ``new_version_available`` — the API names no version: the upgrade goes to the newest kernel).

A look that fails is reported with the vendor's code, never as a crash; the others go on.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import click

from shared.clouds.errors import CloudError
from shared.domain.versions import BadVersion, compare
from shared.errors import ConfigError

if TYPE_CHECKING:
    from shared.clouds.registry import CloudClients
    from shared.domain.fleet import Fleet, Target
    from shared.store.ledger import Ledger

__all__ = ["Live", "inventory", "live_looks", "look_all"]


@dataclass(frozen=True, slots=True)
class Live:
    """One target as its vendor reports it, beside what the fleet file and the ledger say."""

    target: str
    kind: str
    version: str | None = None
    state: str | None = None
    #: Versions the vendor says the target may move to; None when the vendor does not say.
    may_move_to: list[str] | None = None
    fleet_version: str | None = None
    ledger_version: str | None = None
    error: str | None = None

    @property
    def expected(self) -> str | None:
        """What we believe runs: the ledger's version (our last upgrade), else the fleet file's."""
        return self.ledger_version or self.fleet_version

    @property
    def drift(self) -> bool:
        """The vendor runs something other than what we believe."""
        if self.version is None or self.expected is None:
            return False
        try:
            return compare(self.kind, self.version, self.expected) != 0
        except BadVersion:
            return self.version != self.expected


#: What one look finds: the version running, the vendor's state, what it may move to.
_Look = tuple[str | None, str | None, list[str] | None]


def _required(value: str | None, target: Target, field: str) -> str:
    # the fleet refuses a target of this kind without it; this keeps a look from sending None
    if value is None:
        raise ConfigError(f"targets.{target.name}.{field}", f"needed to read a {target.kind} target")
    return value


async def _look(target: Target, clouds: CloudClients) -> _Look:
    kind = target.kind
    if kind in ("cce", "autopilot"):
        client = clouds.cce if kind == "cce" else clouds.autopilot
        cluster_id = _required(target.cluster_id, target, "cluster_id")
        cluster, info = await asyncio.gather(client.get_cluster(cluster_id), client.upgrade_info(cluster_id))
        return cluster.version or info.current_version, cluster.phase, info.target_versions
    if kind == "ncloud-kafka":
        return await _look_kafka(target, clouds)
    if kind == "oceanbase":
        ob = await clouds.oceanbase.get_cluster(_required(target.cluster_id, target, "cluster_id"))
        return ob.obVersion or None, ob.status, None
    if kind == "starrocks":
        if not target.starrocks_instance_id:
            raise ConfigError(f"targets.{target.name}.starrocks_instance_id", "needed to read the instance")
        inst = await clouds.taurusdb.get_starrocks_instance(
            _required(target.instance_id, target, "instance_id"), target.starrocks_instance_id
        )
        may = (
            None
            if inst.new_version_available is None
            else (["newer kernel"] if inst.new_version_available else [])
        )
        return inst.version or None, inst.status, may
    raise ConfigError(f"targets.{target.name}.kind", f"no inventory for {kind}")


async def _look_kafka(target: Target, clouds: CloudClients) -> _Look:
    if target.cluster is None:  # as _required: the fleet refuses a Kafka target without it
        raise ConfigError(f"targets.{target.name}.cluster", "needed to read a ncloud-kafka target")
    client = clouds.ncloud
    info, versions = await asyncio.gather(client.get_cluster_info(target.cluster), client.kafka_versions())
    running = str(info.kafkaVersionCode)
    newer = [
        str(v.kafkaVersionCode) for v in versions if _newer(target.kind, str(v.kafkaVersionCode), running)
    ]
    return running, info.status, newer


def _newer(kind: str, a: str, b: str) -> bool:
    try:
        return compare(kind, a, b) > 0
    except BadVersion:
        return False


async def look_all(fleet: Fleet, clouds: CloudClients, ledger: Ledger | None = None) -> list[Live]:
    """Every fleet target as its vendor reports it (concurrently; each client keeps its limits)."""

    async def one(target: Target) -> Live:
        known = Live(
            target=target.name,
            kind=target.kind,
            fleet_version=target.version,
            ledger_version=await ledger.version(target.name) if ledger is not None else None,
        )
        try:
            version, state, may = await _look(target, clouds)
        except (CloudError, ConfigError) as exc:
            return replace(known, error=str(exc))
        return replace(known, version=version, state=state, may_move_to=may)

    return list(await asyncio.gather(*(one(t) for t in fleet.targets)))


def _rows(lives: list[Live]) -> list[dict[str, Any]]:
    return [{**asdict(live), "drift": live.drift} for live in lives]


async def _run(fleet_path: str, bus_url: str | None) -> list[Live]:
    from shared.clouds.registry import CloudClients
    from shared.domain.fleet import load_fleet

    fleet = load_fleet(fleet_path)
    clouds = CloudClients.from_fleet(fleet)
    store = None
    if bus_url:
        from shared.store import open_store

        store = open_store(bus_url)
        await store.start()
    try:
        return await look_all(fleet, clouds, store.ledger if store is not None else None)
    finally:
        if store is not None:
            await store.close()
        await clouds.close()


def live_looks(fleet_path: str, bus_url: str | None = None) -> dict[str, Live]:
    """target → what its vendor reports (``plan --live``: versions, and what each may move to)."""
    return {live.target: live for live in asyncio.run(_run(fleet_path, bus_url))}


@click.command()
@click.option(
    "--fleet", "fleet_path", required=True, type=click.Path(exists=True, dir_okay=False), help="Fleet YAML."
)
@click.option(
    "--bus",
    "bus_url",
    envvar="UPSHIFT_BUS",
    default=None,
    help="The ledger to compare with (same URL as the bus).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def inventory(fleet_path: str, bus_url: str | None, as_json: bool) -> None:
    """Ask each vendor what each target runs and may move to; show drift from the fleet and ledger.

    Exit 0 when every target was read and none drifted, 1 otherwise."""
    from rich.console import Console
    from rich.table import Table

    try:
        lives = asyncio.run(_run(fleet_path, bus_url))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    rows = _rows(lives)
    if as_json:
        click.echo(json.dumps({"targets": rows}, indent=2))
    else:
        table = Table(title=f"{len(rows)} target(s), {sum(r['drift'] for r in rows)} drifted")
        for col in ("target", "kind", "vendor says", "state", "fleet / ledger", "may move to", "drift"):
            table.add_column(col)
        for r in rows:
            may = "?" if r["may_move_to"] is None else (", ".join(r["may_move_to"]) or "-")
            says = r["version"] or f"[red]{r['error']}[/]"
            table.add_row(
                r["target"],
                r["kind"],
                says,
                r["state"] or "",
                f"{r['fleet_version'] or '?'} / {r['ledger_version'] or '-'}",
                may,
                "[red]yes[/]" if r["drift"] else "",
            )
        Console().print(table)
    if any(r["drift"] or r["error"] for r in rows):
        raise SystemExit(1)
