"""Simulator core: default fleet, fleet files, the sped-up clock, faults, stats, control routes."""

from __future__ import annotations

import aiohttp
import pytest

from shared.errors import ConfigError
from simulator.core import KINDS, FaultSet, SimClock, SimCredentials, SimState, SimTarget
from simulator.fleet import default_fleet, load_fleet
from simulator.testing import run_simulator


def test_default_fleet_has_several_targets_of_each_kind() -> None:
    fleet = default_fleet()
    for kind in KINDS:
        assert len([t for t in fleet if t.kind == kind]) >= 3
    assert len({t.id for t in fleet}) == len(fleet)


def test_fleet_file_loads(tmp_path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(
        "targets:\n"
        "  - {name: k, kind: ncloud-kafka, id: 42, version: 2823006, versions: [3503006], job_seconds: 10}\n"
    )
    [target] = load_fleet(path)
    assert (target.id, target.version, target.versions, target.job_seconds) == (
        "42",
        "2823006",
        ["3503006"],
        10,
    )


@pytest.mark.parametrize(
    ("text", "where", "field"),
    [
        (
            "targets:\n  - {name: a, kind: cce, id: x, version: v1}\n  - {name: b, kind: nope, id: y, version: v1}\n",
            ":3",
            "targets[1].kind",
        ),
        (
            "targets:\n  - name: a\n    kind: cce\n    id: x\n    version: v1\n    job_seconds: -1\n",
            ":6",
            "targets[0].job_seconds",
        ),
        (
            "targets:\n  - {name: a, kind: cce, id: x, version: v1}\n  - {name: b, kind: cce, id: x, version: v1}\n",
            ":3",
            "targets[1].id",
        ),
        ("targets: [\n", ":2", "not valid YAML"),
    ],
)
def test_bad_fleet_file_names_file_line_and_field(tmp_path, text: str, where: str, field: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_fleet(path)
    assert info.value.where == f"{path}{where}"
    assert field in str(info.value)


def test_a_fleet_file_that_is_not_utf8_names_the_line(tmp_path) -> None:
    path = tmp_path / "sim.yaml"
    path.write_bytes(b"targets:\n  - {name: caf\xe9, kind: cce, id: x, version: v1}\n")
    with pytest.raises(ConfigError) as info:
        load_fleet(path)
    assert info.value.where == f"{path}:2" and "not UTF-8" in str(info.value)


def test_missing_fleet_file() -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_fleet("/nonexistent/fleet.yaml")


def test_clock_runs_speed_times_real_time_and_can_jump() -> None:
    clock = SimClock(speed=3600, start=1000.0)
    assert clock.now() >= 1000.0
    clock.advance(50)
    assert clock.now() >= 1050.0
    with pytest.raises(ValueError):
        SimClock(speed=0)


def test_jobs_progress_lazily_and_apply_the_version() -> None:
    target = SimTarget(name="t", kind="cce", id="c1", version="v1.28", versions=["v1.29"], job_seconds=100)
    state = SimState.create([target], speed=1.0)
    job = state.start_job(target, "v1.29", service="cce", job_id="j1")
    assert state.active_job(target) is job and job.outcome(state.clock.now()) == "running"
    state.clock.advance(101)
    assert state.by_id("cce", "c1").version == "v1.29"
    assert state.active_job(target) is None
    assert state.by_id("autopilot", "c1") is None  # kind must match


def test_fail_next_fails_one_job_with_a_reason() -> None:
    target = SimTarget(
        name="t", kind="cce", id="c1", version="v1", versions=["v2"], job_seconds=100, fail_next=True
    )
    state = SimState.create([target])
    job = state.start_job(target, "v2", service="cce", job_id="j1")
    assert target.fail_next is False
    state.clock.advance(100)
    assert job.outcome(state.clock.now()) == "failed" and job.fail_reason
    assert state.by_id("cce", "c1").version == "v1"


def test_credentials_from_env_and_flags_and_no_secret_in_repr() -> None:
    creds = SimCredentials.from_env(
        {"UPSHIFT_SIM_NCP_AK": "env-ak", "UPSHIFT_SIM_OCP_SK": "env-sk"}, ocp_user="flag"
    )
    assert (creds.ncp_ak, creds.ocp_sk, creds.ocp_user) == ("env-ak", "env-sk", "flag")
    assert "env-sk" not in repr(creds) and creds.hw_sk not in repr(creds)


def test_fault_rolls_are_seeded_and_specs_validated() -> None:
    spec = {"ocp": {"error_rates": {"503": 0.3}, "reset_rate": 0.2, "drop_after_commit_rate": 0.2}}
    a, b = FaultSet(seed=7), FaultSet(seed=7)
    a.update(spec)
    b.update(spec)
    assert [a.roll("ocp") for _ in range(50)] == [b.roll("ocp") for _ in range(50)]
    assert a.roll("ncloud").action is None
    for bad in (
        {"nope": {}},
        {"ocp": {"error_rates": {"200": 0.1}}},
        {"ocp": {"reset_rate": 0.8, "error_rates": {"500": 0.5}}},
    ):
        with pytest.raises(ValueError):
            FaultSet().update(bad)


async def test_control_routes_faults_fleet_targets_clock_stats() -> None:
    async with run_simulator() as sim, aiohttp.ClientSession() as http:
        r = await http.post(
            f"{sim.url}/_sim/faults", json={"ncloud": {"error_rates": {"429": 1.0}, "retry_after": 7}}
        )
        assert r.status == 200 and (await r.json())["ncloud"]["retry_after"] == 7
        r = await http.post(f"{sim.url}/_sim/faults", json={"ncloud": {"latency_ms": -1}})
        assert r.status == 400 and "latency_ms" in (await r.json())["error"]
        r = await http.post(f"{sim.url}/api/v1/cluster/getClusterInfoList/3432149")
        assert r.status == 429 and r.headers["Retry-After"] == "7"
        assert "errorCode" in (await r.json())["error"]
        r = await http.post(f"{sim.url}/_sim/faults", json={"clear": True})
        assert await r.json() == {}
        fleet = await (await http.get(f"{sim.url}/_sim/fleet")).json()
        assert fleet["speed"] == 60.0 and len(fleet["targets"]) == 15
        r = await http.post(f"{sim.url}/_sim/targets/22", json={"fail_next": True})
        assert (await r.json())["fail_next"] is True
        assert (await http.post(f"{sim.url}/_sim/targets/nope", json={})).status == 404
        before = sim.state.clock.now()
        await http.post(f"{sim.url}/_sim/clock", json={"advance": 3600})
        assert sim.state.clock.now() >= before + 3600
        stats = await (await http.get(f"{sim.url}/_sim/stats")).json()
        assert stats["faults"] == {"ncloud": {"429": 1}}
        assert (await (await http.post(f"{sim.url}/_sim/stats/reset")).json())["faults"] == {}
