"""OceanBase (OCP) and TaurusDB StarRocks stages against the stricter simulator, end to end through
the real bus: which upgrade body, which id, which flags reach the vendor; a reconcile that does
not depend on the task list's order or first page; the job statuses that wait for a person or
end without failing; and the per-target options checked when the fleet loads."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from events import T
from shared.domain.fleet import parse_fleet
from shared.domain.options.oceanbase import OceanBaseOptions
from shared.domain.options.starrocks import StarRocksOptions
from shared.domain.stages import run_id
from shared.errors import ConfigError
from shared.store import claim_key
from tests.functions import _stages_harness as harness
from tests.functions._stages_harness import KINDS, TARGETS, Pipeline, pipeline, until

OB, SR = KINDS["oceanbase"], KINDS["starrocks"]


@pytest.fixture(autouse=True)
def _creds(stage_creds) -> None:
    """Every test here talks to the simulator with its credentials."""


def with_options(monkeypatch: pytest.MonkeyPatch, name: str, fields: str) -> None:
    """The harness fleet's target ``name`` with ``fields`` (YAML flow items) instead of its own."""
    kind, id_, from_v, to_v, _ = TARGETS[name]
    escaped = fields.replace("{", "{{").replace("}", "}}").replace("{{id}}", "{id}")  # the harness formats it
    monkeypatch.setitem(harness.TARGETS, name, (kind, id_, from_v, to_v, escaped))


def sim_target(p: Pipeline, name: str) -> Any:
    kind, id_, *_ = TARGETS[name]
    return p.sim.target(kind, id_)


def stage_failure(p: Pipeline, name: str) -> Any:
    return next(e.data for e in p.seen.get(T.STAGE_FAILED, []) if e.target == name)


# -- OceanBase: the upgrade body -------------------------------------------------------------------

OB_FIELDS = "cluster_id: '{id}', operating_system: el7"


@pytest.mark.parametrize(
    ("body", "ocp", "succeeds", "calls"),
    [
        ("auto", "new", True, 1),
        ("auto", "legacy", True, 2),  # the new body refused for its missing rpmFileName, then the legacy one
        ("new", "new", True, 1),
        ("new", "legacy", False, 1),
        ("legacy", "legacy", True, 1),
        ("legacy", "new", False, 1),
    ],
)
async def test_the_oceanbase_body_follows_the_option_and_auto_falls_back(
    tmp_path, monkeypatch, body: str, ocp: str, succeeds: bool, calls: int
) -> None:
    options = f"{{body: {body}}}" if body == "legacy" else f"{{body: {body}, freeze_server: false}}"
    with_options(monkeypatch, OB, f"{OB_FIELDS}, oceanbase: {options}")
    async with pipeline(f"sqlite:///{tmp_path}/u.db") as p:
        sim_target(p, OB).extra["upgrade_body"] = ocp
        await p.start(OB)
        outcome = await p.outcome(OB, 60)
        assert (outcome.type == T.UPGRADE_SUCCEEDED) is succeeds, outcome
        assert (await p.stats())["ocp.upgrade"] == {"22": calls}
        _, _, _, to_v, _ = TARGETS[OB]
        if succeeds:
            [job] = p.sim.state.jobs_of("22")
            if ocp == "legacy":
                assert job.extra["body"] == {"rpmFileName": f"oceanbase-{to_v}.el7.x86_64.rpm"}
            else:
                assert job.extra["body"] == {
                    "upgradeMode": "ROLLING", "destVersion": to_v, "operatingSystem": "el7", "freezeServer": False,
                }  # fmt: skip
        else:
            failed = stage_failure(p, OB)
            assert failed.code == "http.400" and failed.message == "must not be blank"
            assert p.sim.state.jobs_of("22") == []


async def test_an_oceanbase_target_without_operating_system_is_refused_when_the_fleet_loads(
    tmp_path, monkeypatch
) -> None:
    with_options(monkeypatch, OB, "cluster_id: '{id}'")
    with pytest.raises(ConfigError) as err:
        async with pipeline(f"sqlite:///{tmp_path}/u.db"):
            pass
    assert "operating_system" in str(err.value) and "targets[" in str(err.value)


# -- OceanBase: reconcile from the task list, sorted, every page ---------------------------------


async def test_a_lost_failed_task_behind_a_page_of_older_ones_is_adopted(tmp_path) -> None:
    # Eleven older failed upgrades of the cluster (more than the list's default page of 10, and
    # first in its unsorted order); then an attempt claims, calls, and dies; its task fails too.
    async with pipeline(f"sqlite:///{tmp_path}/u.db", settings={"claim_lease_s": 0.5}) as p:
        client = p.runtime.clouds.oceanbase
        target, node = p.fleet.target(OB), sim_target(p, OB)
        _, _, _, to_v, _ = TARGETS[OB]
        body = target.oceanbase.new_body(target, to_v)
        for _ in range(11):
            node.fail_next = True
            await client.upgrade(target.cluster_id, body)
            p.sim.state.clock.advance(2000)
        p.sim.state.clock.advance(86400)  # a day later:
        await client.get_cluster(target.cluster_id)  # (the client learns the vendor's clock)
        clock = p.runtime.clock
        dead = await p.store.claims.claim(
            claim_key(OB, "upgrade", to_v),
            "oceanbase_upgrade/dead",
            domain_at=clock.timestamp(),
            vendor_at=client.vendor_epoch(clock.speed),
        )
        assert dead.won
        node.fail_next = True
        ours = (await client.upgrade(target.cluster_id, body)).id  # its call; then it died
        job = p.sim.state.jobs[f"ocp-{ours}"]
        await until(lambda: job.outcome(p.sim.state.clock.now()) == "failed", 30)
        await p.runtime.bus.publish(p.request(OB, "upgrade"))
        outcome = await p.outcome(OB, 60)
        assert outcome.type == T.UPGRADE_FAILED, outcome
        assert (await p.stats())["ocp.upgrade"] == {"22": 12}  # 11 + ours: none by the stage
        claim = await p.store.claims.get(claim_key(OB, "upgrade", to_v))
        assert claim is not None and claim.state == "recorded" and claim.job_id == str(ours)
        failed = stage_failure(p, OB)
        assert failed.code == "task.failed" and "Wait dag success" in failed.message
        assert "simulated failure" in failed.message  # from the failed subtask's log


# -- StarRocks: ids and flags ---------------------------------------------------------------------

SR_FIELDS = "instance_id: 1f2e3d4c5b6a47389a0b1c2d3e4f5a6bin07, starrocks_instance_id: {id}"


@pytest.mark.parametrize(
    ("path_id", "accepts", "succeeds"),
    [
        ("starrocks", "in17", True),
        ("taurusdb", "in07", True),
        ("taurusdb", "in17", False),
        ("starrocks", "in07", False),
    ],
)
async def test_the_starrocks_upgrade_path_takes_the_configured_id(
    tmp_path, monkeypatch, path_id: str, accepts: str, succeeds: bool
) -> None:
    with_options(monkeypatch, SR, SR_FIELDS + f", starrocks: {{upgrade_path_id: {path_id}}}")
    async with pipeline(f"sqlite:///{tmp_path}/u.db") as p:
        sim_target(p, SR).extra["upgrade_path_id"] = accepts
        await p.start(SR)
        outcome = await p.outcome(SR, 60)
        assert (outcome.type == T.UPGRADE_SUCCEEDED) is succeeds, outcome
        stats = await p.stats()
        if succeeds:
            assert stats["taurusdb.upgrade"] == {TARGETS[SR][1]: 1}
        else:
            failed = stage_failure(p, SR)
            assert (failed.code, failed.message) == ("DBS.200022", "Instance not found.")
            assert "taurusdb.upgrade" not in stats and p.sim.state.jobs_of(TARGETS[SR][1]) == []


async def test_starrocks_flags_from_the_fleet_reach_the_vendor_as_strings(tmp_path, monkeypatch) -> None:
    with_options(monkeypatch, SR, SR_FIELDS + ", starrocks: {is_skip_validate: true}")
    async with pipeline(f"sqlite:///{tmp_path}/u.db") as p:
        await p.start(SR)
        assert (await p.outcome(SR, 60)).type == T.UPGRADE_SUCCEEDED
        [job] = p.sim.state.jobs_of(TARGETS[SR][1])
        assert job.extra["body"] == {"delay": "false", "is_skip_validate": "true"}


async def test_a_lost_delayed_starrocks_upgrade_is_found_in_scheduled_jobs(tmp_path, monkeypatch) -> None:
    """A delayed upgrade waits in ``scheduled-jobs``: immediate-jobs and the instance's actions do
    not show it yet. An attempt that claimed, called and died is adopted from there, not repeated."""
    with_options(monkeypatch, SR, SR_FIELDS + ", starrocks: {delay: true}")
    # a long job (the first tenth of a delayed job is Pending): still scheduled when reconciled
    async with pipeline(
        f"sqlite:///{tmp_path}/u.db", settings={"claim_lease_s": 0.5}, job_seconds=60000
    ) as p:
        target = p.fleet.target(SR)
        _, sim_id, _, to_v, _ = TARGETS[SR]
        await p.store.claims.claim(claim_key(SR, "upgrade", to_v), "starrocks_upgrade/dead")
        client = p.runtime.clouds.taurusdb
        job = await client.upgrade_starrocks(target.starrocks.upgrade_id(target), delay=True)  # then it died
        assert [j.job_id for j in await client.list_scheduled_jobs(target.starrocks.upgrade_id(target))] == [
            job
        ]
        assert job not in {j.job_id for j in await client.list_immediate_jobs()}
        await p.runtime.bus.publish(p.request(SR, "upgrade"))
        await until(lambda: any(e.target == SR for e in p.seen.get(T.STAGE_STARTED, [])), 60)
        started = next(e for e in p.seen[T.STAGE_STARTED] if e.target == SR)
        assert started.data.job_id == job
        assert (await p.stats())["taurusdb.upgrade"] == {sim_id: 1}


# -- StarRocks: jobs that wait for a person, and cancelled ones --------------------------------------


async def test_an_unauthorized_job_is_reported_then_declared_stuck(tmp_path) -> None:
    async with pipeline(f"sqlite:///{tmp_path}/u.db") as p:
        sim_target(p, SR).extra["job_status"] = "Unauthorized"
        await p.start(SR)
        outcome = await p.outcome(SR, 60)
        assert outcome.type == T.UPGRADE_FAILED and outcome.data.code == "stuck"
        assert "Unauthorized: waiting for authorisation" in outcome.data.message
        assert (await p.stats())["taurusdb.upgrade"] == {TARGETS[SR][1]: 1}


async def test_an_unauthorized_job_authorised_meanwhile_completes(tmp_path) -> None:
    async with pipeline(f"sqlite:///{tmp_path}/u.db") as p:
        sim_target(p, SR).extra["job_status"] = "Unauthorized"
        rid = await p.start(SR)

        async def progress() -> str:
            run = await p.store.ledger.run(rid) or {}
            return str(run.get("stages", {}).get("upgrade", {}).get("progress", ""))

        for _ in range(1500):  # the first status look reports who must act
            if (await progress()).startswith("Unauthorized"):
                break
            await asyncio.sleep(0.02)
        assert (await progress()).startswith("Unauthorized: waiting for authorisation")
        [job] = p.sim.state.jobs_of(TARGETS[SR][1])
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{p.sim.url}/_sim/taurusdb/jobs/{job.id}", json={"status": "Running"}) as r,
        ):
            assert r.status == 200
        outcome = await p.outcome(SR, 60)
        assert outcome.type == T.UPGRADE_SUCCEEDED, outcome


async def test_a_canceled_job_fails_the_stage_as_canceled(tmp_path) -> None:
    async with pipeline(f"sqlite:///{tmp_path}/u.db") as p:
        sim_target(p, SR).extra["job_status"] = "Canceled"
        await p.start(SR)
        outcome = await p.outcome(SR, 60)
        assert outcome.type == T.UPGRADE_FAILED
        failed = stage_failure(p, SR)
        assert failed.code == "job.canceled" and failed.job_id
        run = await p.store.ledger.run(run_id(SR, TARGETS[SR][3]))
        assert run["stages"]["upgrade"]["state"] == "failed"


# -- options checked when the fleet loads ---------------------------------------------------------

FLEET = """
clouds:
  huawei: {{region: ap-southeast-1, project_id: 0483b6b16e954cb88930a360d2c4e663}}
  ocp: {{url: "https://ocp.example.internal"}}
targets:
  - {{name: t, {target}}}
"""


@pytest.mark.parametrize(
    ("target", "field"),
    [
        (
            "kind: oceanbase, cluster_id: '22', oceanbase: {operating_system: CentOS 7}",
            "oceanbase.operating_system",
        ),
        ("kind: oceanbase, cluster_id: '22', oceanbase: {body: v3}", "oceanbase.body"),
        ("kind: oceanbase, cluster_id: '22', oceanbase: {body: legacy, zone_order: [z1]}", "oceanbase"),
        ("kind: oceanbase, cluster_id: '22', oceanbase: {zone_order: [z1, z1]}", "oceanbase.zone_order"),
        (
            "kind: oceanbase, cluster_id: '22', oceanbase: {rpm_file_name: 'ob-{build}.rpm'}",
            "oceanbase.rpm_file_name",
        ),
        (
            "kind: oceanbase, cluster_id: '22', oceanbase: {rpm_file_name: ob.tar.gz}",
            "oceanbase.rpm_file_name",
        ),
        ("kind: oceanbase, cluster_id: '22', oceanbase: {upgrade_mode: rolling}", "oceanbase.upgrade_mode"),
        (
            "kind: oceanbase, cluster_id: '22', oceanbase: {fallback: {statuses: [500]}}",
            "oceanbase.fallback.statuses",
        ),
        ("kind: starrocks, instance_id: i1, starrocks: {upgrade_path_id: in17}", "starrocks.upgrade_path_id"),
        ("kind: starrocks, instance_id: i1, starrocks: {delay: soon}", "starrocks.delay"),
    ],
)
def test_bad_options_are_a_config_error_naming_the_field(target: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_fleet(FLEET.format(target=target), "fleet.yaml")
    assert f"targets[0].{field}:" in str(info.value), info.value


def test_the_options_check_a_target_against_its_own_fields() -> None:
    """What ``check_target`` refuses is refused when the fleet loads, naming the field."""
    bad = {
        "kind: oceanbase, cluster_id: '22'": "operating_system",
        "kind: oceanbase, cluster_id: '23', operating_system: el7.x86_64": "operating_system",
        "kind: starrocks, instance_id: i1": "instance_id",
        "kind: starrocks, instance_id: 1f2e3d4c5b6a47389a0b1c2d3e4f5a6bin07": "starrocks_instance_id",
        "kind: starrocks, instance_id: 1f2e3d4c5b6a47389a0b1c2d3e4f5a6bin07,"
        " starrocks_instance_id: 1f2e3d4c5b6a47389a0b1c2d3e4f5a6bin07": "starrocks_instance_id",
    }
    for target, field in bad.items():
        with pytest.raises(ConfigError, match=f"{field}: "):
            parse_fleet(FLEET.format(target=target), "fleet.yaml")
    legacy = "kind: oceanbase, cluster_id: '24', oceanbase: {body: legacy, rpm_file_name: 'ob-{version}.rpm'}"
    v = parse_fleet(FLEET.format(target=legacy), "fleet.yaml").targets[0]  # legacy without {os}: no OS needed
    assert v.oceanbase.legacy_body(v, "4.2.1.8-1") == {"rpmFileName": "ob-4.2.1.8-1.rpm"}


def test_option_bodies_and_ids() -> None:
    class T_:
        operating_system = "el8"
        instance_id = "1f2e3d4c5b6a47389a0b1c2d3e4f5a6bin07"
        starrocks_instance_id = "5c2f9e0d8b7a4c1e9f3d2a1b0c9e8d7fin17"

    ob = OceanBaseOptions(zone_order=["z2", "z1"], arch="aarch64", rpm_files={"4.2.5.0-1": "special.rpm"})
    assert ob.new_body(T_, "4.2.1.8-1") == {
        "upgradeMode": "ROLLING", "destVersion": "4.2.1.8-1", "operatingSystem": "el8", "zoneOrder": ["z2", "z1"],
    }  # fmt: skip
    assert ob.legacy_body(T_, "4.2.1.8-1") == {"rpmFileName": "oceanbase-4.2.1.8-1.el8.aarch64.rpm"}
    assert ob.legacy_body(T_, "4.2.5.0-1") == {"rpmFileName": "special.rpm"}
    assert OceanBaseOptions(operating_system="el7").new_body(T_, "1.2")["operatingSystem"] == "el7"
    assert StarRocksOptions().upgrade_id(T_) == T_.starrocks_instance_id
    assert StarRocksOptions(upgrade_path_id="taurusdb").upgrade_id(T_) == T_.instance_id
