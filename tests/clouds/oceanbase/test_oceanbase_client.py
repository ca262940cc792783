"""OceanBaseClient against the simulator over loopback HTTP: auth (and the golden vectors), both upgrade
bodies, the documented DAG, the task search, errors, faults."""

from __future__ import annotations

import base64
import functools
import time

import aiohttp
import pytest

import shared.clouds.client as base_client
from shared.clouds import close_sessions
from shared.clouds.errors import (
    AuthError,
    PermanentCloudError,
    ThrottledError,
    TransientCloudError,
    ValidationFailed,
)
from shared.clouds.oceanbase.client import (
    AUTH_SCHEME,
    OceanBaseClient,
    OceanBaseConfig,
    OceanBaseRefused,
    canonical_query,
    canonical_resource,
    hmac_authorization,
    string_to_sign,
)
from shared.clouds.oceanbase.models import (
    CLUSTER_STATUSES,
    SUBTASK_STATUSES,
    UPGRADE_TASK_NAME,
    RollingUpgrade,
    RpmUpgrade,
    TaskInstance,
)
from shared.clouds.retry import RetryPolicy, with_retry
from shared.domain.options.oceanbase import LegacyFallback
from simulator.core import SimCredentials
from simulator.testing import run_simulator
from tests.clouds.oceanbase import golden

CREDS = SimCredentials()
V1, V2 = "4.2.1.8-108000022024072217", "4.2.5.0-100000052024102022"
NEW = {"upgradeMode": "ROLLING", "destVersion": V1, "operatingSystem": "el7"}
LEGACY = {"rpmFileName": f"oceanbase-{V1}.el7.x86_64.rpm"}
#: Seed 001's sample DAG, in order.
DAG = [
    "Start node",
    "Prepare upgrade cluster",
    "Submit cluster upgrade task",
    "Wait dag success",
    "Update OB cluster status",
]
BASIC = {
    "Authorization": "Basic " + base64.b64encode(f"{CREDS.ocp_user}:{CREDS.ocp_password}".encode()).decode()
}
FAST = RetryPolicy(attempts=3, base=0.01, cap=0.02, deadline=5)


@pytest.fixture(autouse=True)
def ocp_env(monkeypatch):
    for name, value in {
        "OCP_USER": CREDS.ocp_user,
        "OCP_PASSWORD": CREDS.ocp_password,
        "OCP_AK": CREDS.ocp_ak,
        "OCP_SK": CREDS.ocp_sk,
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
async def sim():
    async with run_simulator(speed=1.0) as handle:
        yield handle
    await close_sessions()


def client(sim, auth: str = "aksk", retry=FAST, **kw) -> OceanBaseClient:
    return OceanBaseClient(OceanBaseConfig(url=sim.url, auth=auth, retry=retry), **kw)


def assert_dag_consistent(task: TaskInstance) -> None:
    """A subtask runs or finishes only after all its upstreams succeeded; edges are symmetric."""
    by_id = {s.id: s for s in task.subtasks}
    for sub in task.subtasks:
        for up in sub.upstreams:
            assert sub.id in by_id[up].downstreams
            if sub.status in ("READY", "RUNNING", "SUCCESSFUL", "FAILED"):
                assert by_id[up].status == "SUCCESSFUL"


@pytest.mark.parametrize("auth", ["basic", "aksk"])
async def test_cluster_query_with_each_auth(sim, auth: str) -> None:
    cluster = await client(sim, auth).get_cluster(22)
    assert (cluster.id, cluster.obVersion, cluster.status) == (22, "4.2.1.0-100000102023092807", "RUNNING")
    assert cluster.status in CLUSTER_STATUSES


@pytest.mark.parametrize(
    ("auth", "env", "skew"),
    [("basic", {"OCP_PASSWORD": "wrong"}, 0), ("aksk", {"OCP_SK": "wrong-secret"}, 0), ("aksk", {}, -3600)],
)
async def test_auth_failures_are_auth_errors(sim, monkeypatch, auth, env, skew) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    c = client(sim, auth, clock=lambda: time.time() + skew)
    with pytest.raises(AuthError) as info:
        await c.get_cluster(22)
    assert info.value.status == 401
    assert sim.state.stats.snapshot()["calls"] == {}


@pytest.mark.parametrize("vector", [golden.POST, golden.GET], ids=["post", "get"])
def test_golden_vectors(vector: dict) -> None:
    """The documented toSignString layout, and a signature computed outside Python."""
    query = canonical_query(vector["query"])
    text = string_to_sign(
        vector["method"],
        vector["body"],
        vector["content_type"],
        vector["date"],
        vector["host"],
        vector["headers"],
        vector["path"] + (f"?{query}" if query else ""),
    )
    assert text == vector["to_sign"]
    assert (
        hmac_authorization(golden.AK, golden.SK, text) == f"{AUTH_SCHEME} {golden.AK}:{vector['signature']}"
    )


def test_canonical_resource_sorts_and_encodes_once() -> None:
    assert canonical_resource("/api/v2/x", "b=2&a=%201&a=c%2Cd") == "/api/v2/x?a=%201%2Cc%2Cd&b=2"


async def test_every_answer_is_the_ocp_envelope(sim) -> None:
    async with aiohttp.ClientSession() as http:
        r = await http.get(f"{sim.url}/api/v2/ob/clusters/22")
        body = await r.json()
        assert r.status == 401 and body["successful"] is False and body["error"]["message"]
        assert {"successful", "timestamp", "duration", "status", "traceId", "server", "error"} <= body.keys()
        assert body["status"] == 401 and body["error"]["debugMessage"]
        r = await http.get(f"{sim.url}/api/v2/ob/nothing-here", headers=BASIC)
        body = await r.json()
        assert r.status == 400 and body["successful"] is False
        assert body["error"]["message"] == "Could not find the GET method for URL /api/v2/ob/nothing-here"
    with pytest.raises(OceanBaseRefused) as info:
        await client(sim)._data("GET", "/api/v2/ob/nothing-here", key="x")
    assert info.value.status == 400 and "Could not find" in info.value.message


def test_string_to_sign_layout() -> None:
    text = string_to_sign(
        "post", b"{}", "application/json", "Tue, 02 Mar 2021 04:04:48 GMT", "ocp:8080",
        {"X-OCP-B": " 2 ", "x-ocp-a": "1", "Other": "x"}, canonical_resource("/api/v2/x", "b=2&a=%201"),
    )  # fmt: skip
    assert text.split("\n") == [
        "POST", "99914B932BD37A50B983C5E7C90AE93B", "application/json", "Tue, 02 Mar 2021 04:04:48 GMT",
        "ocp:8080", "x-ocp-a:1", "x-ocp-b:2", "/api/v2/x?a=%201&b=2",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("ocp", "request_body"),
    [
        ("new", RollingUpgrade(destVersion=V1, operatingSystem="el7")),
        (
            "new",
            RollingUpgrade(
                destVersion=V1, operatingSystem="el7", freezeServer=True, zoneOrder=["zone2", "zone1"]
            ),
        ),
        ("legacy", RpmUpgrade(rpmFileName=f"oceanbase-{V1}.el7.x86_64.rpm")),
    ],
)
async def test_upgrade_follows_the_documented_dag_and_version_changes(sim, ocp, request_body) -> None:
    sim.state.targets["22"].extra["upgrade_body"] = ocp
    c = client(sim)
    task = await c.upgrade(22, request_body)
    assert task.status == "RUNNING" and task.name == UPGRADE_TASK_NAME
    assert [s.name for s in task.subtasks] == DAG
    cluster = await c.get_cluster(22)
    assert cluster.status == "OPERATING" and cluster.status in CLUSTER_STATUSES  # no UPGRADING in OCP
    seen = set()
    for _ in range(30):
        sim.state.clock.advance(50)
        task = await c.get_task(task.id)
        assert_dag_consistent(task)
        seen |= {s.status for s in task.subtasks}
        if task.terminal:
            break
    assert task.status == "SUCCESSFUL" and {"PENDING", "READY", "RUNNING", "SUCCESSFUL"} <= seen <= set(
        SUBTASK_STATUSES
    )
    assert task.finishTime and all(s.startTime and s.finishTime for s in task.subtasks)
    cluster = await c.get_cluster(22)
    assert (cluster.obVersion, cluster.status) == (V1, "RUNNING")
    assert sim.state.stats.snapshot()["calls"]["ocp.upgrade"] == {"22": 1}


async def test_each_ocp_refuses_the_other_body_naming_the_fields(sim) -> None:
    c = client(sim)
    # the current OCP: destVersion and operatingSystem required
    with pytest.raises(OceanBaseRefused) as new_ocp:
        await c.upgrade(22, LEGACY)
    fields = {e["field"] for e in new_ocp.value.error.subErrors or []}
    assert new_ocp.value.status == 400 and fields == {"destVersion", "operatingSystem"}
    sim.state.targets["22"].extra["upgrade_body"] = "legacy"
    # an older OCP ignores the new fields, misses rpmFileName
    with pytest.raises(OceanBaseRefused) as old_ocp:
        await c.upgrade(22, NEW)
    assert old_ocp.value.status == 400 and [e["field"] for e in old_ocp.value.error.subErrors or []] == [
        "rpmFileName"
    ]
    trigger = LegacyFallback()
    assert trigger.matches(old_ocp.value.status, old_ocp.value.error_text)
    assert not trigger.matches(new_ocp.value.status, new_ocp.value.error_text)
    assert sim.state.jobs == {}


async def test_failed_task_carries_reason_then_retry_succeeds(sim) -> None:
    c = client(sim)
    sim.state.targets["22"].fail_next = True
    task = await c.upgrade(22, {"destVersion": V1, "operatingSystem": "el7"})
    sim.state.clock.advance(2000)
    task = await c.get_task(task.id)
    assert task.status == "FAILED" and [s.name for s in task.failed_subtasks] == ["Wait dag success"]
    assert_dag_consistent(task)
    assert "simulated failure" in await c.subtask_log(task.id, task.failed_subtasks[0].id)
    assert (await c.list_tasks(22, status="FAILED"))[0].id == task.id
    retried = await c.retry_task(task.id)
    assert retried.status == "RUNNING"
    assert any(s.operation == "RETRY" for s in retried.subtasks)
    sim.state.clock.advance(2000)
    assert (await c.get_task(task.id)).status == "SUCCESSFUL"
    assert (await c.get_cluster(22)).obVersion == V1


async def test_rollback_leaves_version(sim) -> None:
    c = client(sim)
    sim.state.targets["22"].fail_next = True
    task = await c.upgrade(22, {"destVersion": V1, "operatingSystem": "el7"})
    sim.state.clock.advance(2000)
    rolled = await c.rollback_task(task.id)
    assert rolled.status == "FAILED" and any(s.operation == "ROLLBACK" for s in rolled.subtasks)
    with pytest.raises(PermanentCloudError):
        await c.retry_task(task.id)
    assert (await c.get_cluster(22)).obVersion == "4.2.1.0-100000102023092807"


async def test_second_upgrade_while_running_is_a_conflict(sim) -> None:
    c = client(sim, retry=RetryPolicy(attempts=1))
    await c.upgrade(22, {"destVersion": V1, "operatingSystem": "el7"})
    with pytest.raises(TransientCloudError) as info:
        await c.upgrade(22, {"destVersion": V2, "operatingSystem": "el7"})
    assert info.value.status == 409 and info.value.conflict and not info.value.maybe_applied
    assert info.value.code == "50002" and "Operation not allowed" in info.value.message


async def test_the_task_search_asks_for_its_order_and_reads_every_page(sim) -> None:
    c = client(sim)
    target = sim.state.targets["22"]
    failed = []
    for _ in range(5):  # five failed upgrades, then one running
        target.fail_next = True
        failed.append((await c.upgrade(22, NEW)).id)
        sim.state.clock.advance(2000)
    running = (await c.upgrade(22, NEW)).id
    async with aiohttp.ClientSession() as http:  # unsorted, the list is oldest first here
        r = await http.get(f"{sim.url}/api/v2/tasks/instances?clusterId=22", headers=BASIC)
        assert [t["id"] for t in (await r.json())["data"]["contents"]] == [*failed, running]
    tasks = await c.list_tasks(22, page_size=2)
    assert [t.id for t in tasks] == [running, *failed[::-1]]
    assert sim.state.stats.snapshot()["calls"]["ocp.list_tasks"] == {"22": 1 + 3}
    assert [t.id for t in await c.list_tasks(22, status="FAILED", page_size=4)] == failed[::-1]


async def test_validation_before_sending_and_vendor_refusals(sim) -> None:
    c = client(sim)
    with pytest.raises(ValidationFailed) as info:
        await c.upgrade(22, {"destVersion": "latest", "operatingSystem": "el7"})
    assert info.value.field == "destVersion"
    with pytest.raises(ValidationFailed):
        await c.get_task(-1)
    assert sim.state.stats.snapshot()["calls"] == {}
    with pytest.raises(PermanentCloudError, match="later than"):
        await c.upgrade(23, {"destVersion": V1, "operatingSystem": "el7"})  # 23 already runs V1
    with pytest.raises(OceanBaseRefused, match="software package") as info:
        await c.upgrade(22, {"destVersion": V1, "operatingSystem": "el8"})  # no el8 package for 22
    assert info.value.code == "10002"
    with pytest.raises(PermanentCloudError, match="No records of the cluster") as info:
        await c.get_cluster(999)
    assert info.value.status == 404


async def test_throttling_carries_retry_after(sim) -> None:
    sim.state.faults.update({"ocp": {"error_rates": {"429": 1.0}, "retry_after": 3}})
    with pytest.raises(ThrottledError) as info:
        await client(sim, retry=RetryPolicy(attempts=1)).get_cluster(22)
    assert info.value.retry_after == 3


async def test_retries_stop_at_the_deadline(sim, monkeypatch) -> None:
    now = [0.0]
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    # BaseClient._call looks with_retry up in shared.clouds.client: patch it there.
    patched = functools.partial(with_retry, sleep=fake_sleep, clock=lambda: now[0])
    monkeypatch.setattr(base_client, "with_retry", patched)
    sim.state.faults.update({"ocp": {"error_rates": {"503": 1.0}, "retry_after": 4}})
    c = client(sim, retry=RetryPolicy(attempts=10, base=0.01, cap=0.01, deadline=10))
    with pytest.raises(TransientCloudError) as info:
        await c.get_cluster(22)
    assert info.value.status == 503
    assert sleeps == [4, 4]  # a third sleep would end past the 10 s deadline
    assert sim.state.stats.snapshot()["faults"]["ocp"]["503"] == 3


async def test_commit_then_drop_is_maybe_applied_and_reconcilable(sim) -> None:
    c = client(sim)
    sim.state.faults.update({"ocp": {"drop_after_commit_rate": 1.0}})
    with pytest.raises(TransientCloudError) as info:
        await c.upgrade(22, {"destVersion": V1, "operatingSystem": "el7"})
    assert info.value.maybe_applied
    sim.state.faults.clear()
    [task] = await c.list_tasks(22)
    assert task.status == "RUNNING"
    assert sim.state.stats.snapshot()["calls"]["ocp.upgrade"] == {"22": 1}


async def test_secrets_never_in_repr_str_or_logs(sim, monkeypatch, log_buf) -> None:
    monkeypatch.setenv("OCP_SK", "a-very-secret-ocp-key")
    c = client(sim, "aksk")
    sim.state.faults.update({"ocp": {"error_rates": {"500": 1.0}}})
    with pytest.raises(TransientCloudError) as info:
        await c.get_cluster(22)
    sim.state.faults.clear()
    with pytest.raises(AuthError) as auth:
        await c.get_cluster(22)
    basic = client(sim, "basic")
    await basic.get_cluster(22)
    for text in (
        repr(c),
        str(c),
        repr(basic),
        str(info.value),
        repr(auth.value),
        str(auth.value),
        log_buf.getvalue(),
    ):
        assert "a-very-secret-ocp-key" not in text and CREDS.ocp_password not in text
    assert "cloud.retry" in log_buf.getvalue()
