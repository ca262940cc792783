"""The NAVER Kafka stages against the strict simulator, through a Runtime on a real SQLite bus:
the rolling upgrade followed with the documented progress check and cluster info, config groups
chosen per target version, versions announced by name, reconcile from getClusterInfoList — and
the inferred done/failed rules on hand-made answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from events import Event, T
from events.catalog import JobPoll, StageRequested
from functions.stages.kafka_upgrade import CALL as UPGRADE
from functions.stages.kafka_verify import CALL as VERIFY
from shared.bus import Subscription, open_bus
from shared.clock import Clock
from shared.clouds.errors import TransientCloudError, ValidationFailed
from shared.clouds.ncloud.models import ClusterInfo, ClusterStatus, KafkaVersion
from shared.clouds.registry import CloudClients
from shared.domain.fleet import parse_fleet
from shared.domain.stages import run_id
from shared.errors import RetryLater
from shared.runtime.host import Runtime
from shared.runtime.manifest import load_manifest
from shared.store import claim_key, open_store
from simulator.core import SimTarget
from simulator.testing import run_simulator
from tests.functions._stages_harness import CLIENT, FUNCTIONS, SPEED, until


@pytest.fixture(autouse=True)
def _creds(stage_creds) -> None:
    """The simulator's credentials in the env vars the fleet names."""


@dataclass
class Kafka:
    """One kafka target: fleet fields, simulator extra, the version it is asked to reach."""

    name: str
    to: str
    versions: tuple[str, ...]
    fleet: str = "config_group: 160"
    extra: dict[str, Any] | None = None
    outcome: str = "succeed"


#: Account catalog beside the simulator's defaults (one group per version: 160 2823006,
#: 170 3503006, 171 3703006, 175 3713006, 190 3903006): a second group for 3.5.0 and 3.7.1,
#: and a version without any group.
CATALOG = {
    "configGroups": [
        {"configGroupNo": 301, "configGroupName": "prod-3.5.0", "kafkaVersionCode": "3503006"},
        {"configGroupNo": 302, "configGroupName": "prod-3.7.1", "kafkaVersionCode": "3713006"},
    ],
    "kafkaVersions": [{"kafkaVersionCode": "4103007", "kafkaVersionName": "Kafka 4.1.0"}],
}
DURATIONS = "  ncloud-kafka: {precheck: 5s, upgrade: 600s, verify: 5s}"


@dataclass
class Run:
    runtime: Runtime
    sim: Any
    seen: dict[str, list[Event]]
    ids: dict[str, str]

    def request(self, k: Kafka) -> Event:
        data = StageRequested(
            target=k.name, kind="ncloud-kafka", stage="precheck", from_version="2823006", to_version=k.to
        )
        return Event(
            type=T.STAGE_REQUESTED,
            data=data,
            runid=run_id(k.name, k.to),
            target=k.name,
            kind="ncloud-kafka",
            stage="precheck",
        )

    async def outcome(self, name: str, limit: float = 60.0) -> Event:
        def found() -> list[Event]:
            return [
                e
                for t in (T.UPGRADE_SUCCEEDED, T.UPGRADE_FAILED)
                for e in self.seen.get(t, [])
                if e.target == name
            ]

        await until(lambda: bool(found()), limit)
        return found()[0]

    def failed(self, name: str) -> Any:
        return next(e.data for e in self.seen.get(T.STAGE_FAILED, []) if e.target == name)

    def cluster(self, name: str) -> SimTarget:
        target = self.sim.state.targets[self.ids[name]]
        self.sim.state.refresh(target)
        return target

    def calls(self, op: str, name: str) -> int:
        return self.sim.state.stats.snapshot()["calls"].get(op, {}).get(self.ids[name], 0)

    def group(self, name: str) -> int:
        [job] = [j for j in self.sim.state.jobs_of(self.ids[name]) if j.service == "ncloud"]
        return job.extra["configGroupNo"]


@asynccontextmanager
async def kafka_run(
    tmp: Path, targets: list[Kafka], faults: dict[str, Any] | None = None
) -> AsyncIterator[Run]:
    ids = {k.name: str(3_460_000 + i) for i, k in enumerate(targets)}
    sims = [
        SimTarget(
            k.name,
            "ncloud-kafka",
            ids[k.name],
            "2823006",
            list(k.versions),
            job_seconds=600,
            extra={"brokers": 3, "configGroupNo": 160, **(CATALOG if i == 0 else {}), **(k.extra or {})},
            outcome=k.outcome,
        )
        for i, k in enumerate(targets)
    ]
    async with run_simulator(targets=sims, speed=SPEED, faults=faults) as sim:
        lines = "\n".join(
            f"  - {{name: {k.name}, kind: ncloud-kafka, cluster: {ids[k.name]}, version: '2823006', {k.fleet}}}"
            for k in targets
        )
        text = f'clouds:\n  ncloud: {{endpoint: "{sim.url}", {CLIENT}}}\ndurations:\n{DURATIONS}\ntargets:\n{lines}\n'
        fleet = parse_fleet(text, "kafka-fleet.yaml")
        url = f"sqlite:///{tmp}/k.db"
        bus = open_bus(url)
        seen: dict[str, list[Event]] = {}

        async def collect(event: Event) -> None:
            seen.setdefault(event.type, []).append(event)

        for type_ in (T.UPGRADE_SUCCEEDED, T.UPGRADE_FAILED, T.STAGE_FAILED):
            bus.subscribe(
                Subscription(f"seen_{type_.split('.', 2)[2].replace('.', '_')}", type_, handler=collect)
            )
        clouds = CloudClients.from_fleet(fleet)
        runtime = Runtime(
            load_manifest(),
            bus,
            open_store(url),
            clock=Clock(SPEED),
            fleet=fleet,
            clouds=clouds,
            only=FUNCTIONS,
        )
        await runtime.start()
        try:
            run = Run(runtime, sim, seen, ids)
            for k in targets:
                await runtime.bus.publish(run.request(k))
            yield run
        finally:
            await runtime.stop()
            await clouds.close()


# -- item 1: tracking; items 2 and 3 through the whole stage chain ----------------------------

OK = [
    Kafka("by-code", "3703006", ("3703006",)),  # its one group, 171, found by lookup
    Kafka("by-name", "3.9.0", ("3903006",)),  # a name: getCDSSVersionList -> 3903006, group 190
    Kafka(
        "kafka-name",
        "Kafka 3.5.0",
        ("3503006",),
        'config_group: 160, kafka: {config_groups: {"Kafka 3.5.0": 301}}',
    ),
    Kafka(
        "old-field", "3503006", ("3503006",), "config_group: 170"
    ),  # two groups; the old field is one of them
    Kafka("pattern", "3713006", ("3713006",), 'config_group: 160, kafka: {config_group_pattern: "^prod-"}'),
]
GROUP = {"by-code": 171, "by-name": 190, "kafka-name": 301, "old-field": 170, "pattern": 302}
CODE = {
    "by-code": "3703006",
    "by-name": "3903006",
    "kafka-name": "3503006",
    "old-field": "3503006",
    "pattern": "3713006",
}


async def test_upgrades_reach_the_version_with_the_group_of_that_version(tmp_path: Path) -> None:
    async with kafka_run(tmp_path, OK) as run:
        for k in OK:
            outcome = await run.outcome(k.name)
            assert outcome.type == T.UPGRADE_SUCCEEDED, (k.name, run.seen.get(T.STAGE_FAILED))
            cluster = run.cluster(k.name)
            assert cluster.version == CODE[k.name]  # the vendor says so
            assert run.group(k.name) == GROUP[k.name]
            assert run.calls("ncloud.upgrade", k.name) == 1 and run.calls("ncloud.precheck", k.name) == 1
            # followed with the progress check: one per look the ledger counted; the cluster info
            # (getClusterInfoList) read at the end, and by verify
            stages = (await run.runtime.store.ledger.run(run_id(k.name, k.to)))["stages"]
            assert run.calls("ncloud.upgrade_progress", k.name) == stages["upgrade"]["status_calls"] >= 1
            assert (
                run.calls("ncloud.cluster_info", k.name) >= 2
                and run.calls("ncloud.cluster_status", k.name) == 1
            )


REFUSED = [
    Kafka("ambiguous", "3713006", ("3713006",)),  # 175 and 302, no pattern, old field of 2.8.2
    Kafka("no-group", "4103007", ("4103007",)),  # a version without any config group
    Kafka(
        "no-match", "3713006", ("3713006",), 'config_group: 160, kafka: {config_group_pattern: "^staging-"}'
    ),
    Kafka("unknown", "Kafka 9.9.9", ("3903006",)),
    Kafka("wrong-map", "3703006", ("3703006",), "config_group: 160, kafka: {config_groups: {3703006: 170}}"),
]


async def test_a_version_without_a_usable_group_or_code_fails_naming_it(tmp_path: Path) -> None:
    async with kafka_run(tmp_path, REFUSED) as run:
        failures = {}
        for k in REFUSED:
            outcome = await run.outcome(k.name)
            assert outcome.type == T.UPGRADE_FAILED and outcome.data.stage == "precheck"
            failures[k.name] = run.failed(k.name)
        assert failures["ambiguous"].code == "config"
        assert "3713006" in failures["ambiguous"].message and "(175)" in failures["ambiguous"].message
        assert (
            "(302)" in failures["ambiguous"].message
            and "config_group_pattern" in failures["ambiguous"].message
        )
        assert failures["no-group"].code == "config" and "code 4103007" in failures["no-group"].message
        assert "has none" in failures["no-group"].message
        assert failures["no-match"].code == "config" and "'^staging-'" in failures["no-match"].message
        assert (
            failures["unknown"].code == "client.validation"
            and "to_version 'Kafka 9.9.9'" in failures["unknown"].message
        )
        # a mapped group is used as given: the vendor refuses a group of another version
        assert failures["wrong-map"].code == "10156" and failures["wrong-map"].request_id
        for name in ("ambiguous", "no-group", "no-match", "unknown"):
            assert run.calls("ncloud.precheck", name) == 0  # refused before anything was called
        for k in REFUSED:
            assert run.calls("ncloud.upgrade", k.name) == 0


async def test_a_failing_rolling_upgrade_fails_the_stage(tmp_path: Path) -> None:
    async with kafka_run(tmp_path, [Kafka("bad", "3703006", ("3703006",), outcome="fail")]) as run:
        outcome = await run.outcome("bad")
        assert (outcome.type, outcome.data.stage, outcome.data.code) == (
            T.UPGRADE_FAILED,
            "upgrade",
            "upgrade.failed",
        )
        assert (
            "is in error" in run.failed("bad").message
            and "red brokers: bad-broker-2" in run.failed("bad").message
        )
        assert run.cluster("bad").version == "2823006" and run.calls("ncloud.upgrade", "bad") == 1


async def test_a_lost_upgrade_answer_is_reconciled_from_get_cluster_info_list(tmp_path: Path) -> None:
    faults = {"ncloud.upgrade": {"drop_after_commit_rate": 1.0}}
    async with kafka_run(tmp_path, [Kafka("lost", "3.7.0", ("3703006",))], faults=faults) as run:
        outcome = await run.outcome("lost")
        assert outcome.type == T.UPGRADE_SUCCEEDED, run.seen.get(T.STAGE_FAILED)
        assert run.calls("ncloud.upgrade", "lost") == 1  # adopted ("changing"), never called twice
        assert run.cluster("lost").version == "3703006"
        claim = await run.runtime.store.claims.get(claim_key("lost", "upgrade", "3.7.0"))
        assert claim is not None and claim.state == "recorded" and (claim.result or {}).get("adopted")


# -- the inferred done/failed rules (vendor-facts §1.2), on hand-made documented answers ------


class Stub:
    """A client answering with fixed documented shapes."""

    def __init__(self, progress: dict[str, Any], info: dict[str, Any]) -> None:
        self.progress = ClusterStatus.model_validate(progress)
        self.info = ClusterInfo.model_validate(info)
        self.looks: list[str] = []

    async def kafka_versions(self) -> list[KafkaVersion]:
        return [KafkaVersion(kafkaVersionCode=3903006, kafkaVersionName="Kafka 3.9.0")]

    async def upgrade_progress(self, no: int) -> ClusterStatus:
        self.looks.append("progress")
        return self.progress

    async def get_cluster_info(self, no: int) -> ClusterInfo:
        self.looks.append("info")
        return self.info

    async def get_cluster_status(self, no: int) -> ClusterStatus:
        self.looks.append("status")
        return self.progress


TARGET = parse_fleet(
    "clouds: {ncloud: {region: KR}}\ntargets:\n  - {name: k, kind: ncloud-kafka, cluster: 7, config_group: 1}\n"
    "  - {name: k3, kind: ncloud-kafka, cluster: 8, config_group: 1, kafka: {abnormal_looks: 3}}\n",
    "f.yaml",
)


def progress(colour: str, up: int, total: int = 3) -> dict[str, Any]:
    return {
        "brokerNodeTotalNumber": total,
        "brokerNumber": up,
        "brokerStatus": colour,
        "brokerStatusPerNode": [],
    }


def poll(last: str | None = None, to: str = "Kafka 3.9.0") -> JobPoll:
    now = datetime.now(UTC)
    return JobPoll(
        target="k",
        kind="ncloud-kafka",
        stage="upgrade",
        to_version=to,
        job_id="rolling-upgrade-3903006",
        started_at=now,
        last_progress=last,
        last_progress_at=now,
    )


@pytest.mark.parametrize(
    ("colour", "up", "state", "code", "expect", "looks"),
    [
        ("orange", 2, "changing", "2823006", "running", ["progress"]),  # one call while brokers turn over
        ("yellow", 3, "changing", "2823006", "running", ["progress"]),
        ("green", 3, "running", "3903006", "succeeded", ["progress", "info"]),
        ("green", 3, "running", "2823006", "running", ["progress", "info"]),  # not there yet
        ("green", 3, "changing", "3903006", "running", ["progress", "info"]),
        ("green", 2, "running", "3903006", "running", ["progress"]),  # a broker still down
        ("red", 2, "error", "2823006", "failed", ["progress", "info"]),
        ("red", 2, "changing", "2823006", "running", ["progress", "info"]),  # may clear: look again
        ("green", 3, "deleting", "3903006", "failed", ["progress", "info"]),
        ("GREEN", 3, "running", "3903006", "succeeded", ["progress", "info"]),
        ("purple", 3, "changing", "2823006", "running", ["progress", "info"]),  # unknown colour = gray
    ],
)
async def test_done_and_failed_rules(colour, up, state, code, expect, looks) -> None:
    stub = Stub(progress(colour, up), {"kafkaVersionCode": code, "status": state})
    status = await UPGRADE.status(stub, TARGET.target("k"), poll())
    assert status.state == expect and stub.looks == looks


async def test_red_that_does_not_clear_fails_after_abnormal_looks() -> None:
    stub = Stub(progress("red", 2), {"kafkaVersionCode": "2823006", "status": "changing"})
    first = await UPGRADE.status(stub, TARGET.target("k"), poll())
    assert first.state == "running" and "[red look 1]" in first.progress
    second = await UPGRADE.status(stub, TARGET.target("k"), poll(first.progress))
    assert second.state == "failed" and second.code == "upgrade.failed" and "2 looks" in second.reason
    # a target that tolerates three
    again = await UPGRADE.status(stub, TARGET.target("k3"), poll(first.progress))
    assert again.state == "running" and "[red look 2]" in again.progress
    # a look that is not red in between starts the count again
    stub.progress = ClusterStatus.model_validate(progress("orange", 2))
    calm = await UPGRADE.status(stub, TARGET.target("k"), poll(first.progress))
    stub.progress = ClusterStatus.model_validate(progress("gray", 2))
    assert (await UPGRADE.status(stub, TARGET.target("k"), poll(calm.progress))).state == "running"


async def test_a_version_name_no_longer_listed_fails_the_job_look() -> None:
    stub = Stub(progress("orange", 2), {"kafkaVersionCode": "2823006", "status": "changing"})
    with pytest.raises(ValidationFailed) as gone:  # track_job fails the stage with it
        await UPGRADE.status(stub, TARGET.target("k"), poll(to="Kafka 8.0.0"))
    assert gone.value.field == "to_version" and stub.looks == []


async def test_verify_waits_for_a_changing_cluster_and_settling_brokers() -> None:
    req = StageRequested(
        target="k", kind="ncloud-kafka", stage="verify", from_version="2823006", to_version="3903006"
    )
    stub = Stub(progress("green", 3), {"kafkaVersionCode": "3903006", "status": "changing"})
    with pytest.raises(RetryLater):
        await VERIFY.start(stub, TARGET.target("k"), req)
    stub.info = ClusterInfo.model_validate({"kafkaVersionCode": "3903006", "status": "running"})
    stub.progress = ClusterStatus.model_validate(progress("orange", 2))
    with pytest.raises(RetryLater):
        await VERIFY.start(stub, TARGET.target("k"), req)
    stub.progress = ClusterStatus.model_validate(progress("green", 3))
    assert (await VERIFY.start(stub, TARGET.target("k"), req)).job_id is None


async def test_the_upgrade_takes_the_group_of_a_passing_precheck_without_looking_it_up() -> None:
    """NAVER wants the upgrade to use the very version and group of a passing precheck: a client
    that made one knows the group, and asks nothing more (here the group list would fail)."""
    target = SimTarget("k", "ncloud-kafka", "7", "2823006", ["3503006"], extra=CATALOG)
    faults = {"ncloud.config_groups": {"error_rates": {"500": 1.0}}}
    async with run_simulator(targets=[target], speed=1.0, faults=faults) as sim:
        fleet = parse_fleet(
            f'clouds:\n  ncloud: {{endpoint: "{sim.url}", {CLIENT}}}\n'
            "targets:\n  - {name: k, kind: ncloud-kafka, cluster: 7, config_group: 160}\n",
            "f.yaml",
        )
        clouds = CloudClients.from_fleet(fleet)
        try:
            client = clouds.ncloud
            assert await client.precheck(7, 3503006, 301)
            version, group = await UPGRADE.plan(client, fleet.target("k"), "3503006", after_precheck=True)
            assert (version.code, group) == (3503006, 301)
            assert "ncloud.config_groups" not in sim.state.stats.snapshot()["calls"]
            with pytest.raises(TransientCloudError) as failed:  # without it, the lookup is needed
                await UPGRADE.plan(client, fleet.target("k"), "3503006")
            assert not failed.value.maybe_applied  # a read: never "maybe applied"
        finally:
            await clouds.close()
