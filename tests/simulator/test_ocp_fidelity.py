"""The simulated OCP as OCP's documents describe it, seen through raw HTTP (no Upshift client):
its own signature check (held to the golden vectors the client tests check too), the envelope on
every answer, both upgrade bodies, the documented task and subtask statuses and DAG names, the
task list's parameters, and no UPGRADING cluster status."""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import json
import time
from email.utils import formatdate
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

import simulator.ocp as ocp
from simulator.core import SimCredentials, SimTarget
from simulator.testing import run_simulator
from tests.clouds.oceanbase import golden

CREDS = SimCredentials()
V0, V1 = "4.2.1.0-100000102023092807", "4.2.1.8-108000022024072217"
NEW = {"upgradeMode": "ROLLING", "destVersion": V1, "operatingSystem": "el7"}
LEGACY = {"rpmFileName": f"oceanbase-{V1}.el7.x86_64.rpm"}
BASIC = {
    "Authorization": "Basic " + base64.b64encode(f"{CREDS.ocp_user}:{CREDS.ocp_password}".encode()).decode()
}
ENVELOPE = {"successful", "timestamp", "duration", "status", "traceId", "server"}


def targets() -> list[SimTarget]:
    return [
        SimTarget("ob-new", "oceanbase", "22", V0, [V1], job_seconds=1000, extra={"zones": ["z1", "z2"]}),
        SimTarget("ob-old", "oceanbase", "23", V0, [V1], job_seconds=1000, extra={"upgrade_body": "legacy"}),
    ]


class Ocp:
    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url, self.http = url, http

    async def call(self, method: str, path: str, *, headers: dict[str, str] | None = None, **kw: Any):
        async with self.http.request(
            method, self.url + path, headers=BASIC if headers is None else headers, **kw
        ) as r:
            return r.status, await r.json()


@pytest.fixture
async def sim():
    async with run_simulator(targets=targets(), speed=1.0) as handle:
        yield handle


@pytest.fixture
async def api(sim):
    async with aiohttp.ClientSession() as http:
        yield Ocp(sim.url, http)


def aksk_headers(
    method: str, path: str, query: list[tuple[str, str]], body: bytes, host: str, **extra: str
) -> dict:
    """Signed per the documented layout, by hand: an implementation of neither side."""
    date = formatdate(time.time(), usegmt=True)
    md5 = hashlib.md5(body).hexdigest().upper() if body else ""
    ctype = "application/json" if body else ""
    ocp_headers = "\n".join(f"{k.lower()}:{v}" for k, v in sorted(extra.items()))
    pq = path + (
        "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(query)) if query else ""
    )
    text = "\n".join([method, md5, ctype, date, host, ocp_headers, pq])
    sig = base64.b64encode(hmac.new(CREDS.ocp_sk.encode(), text.encode(), hashlib.sha1).digest()).decode()
    headers = {"Authorization": f"OCP-ACCESS-KEY-HMACSHA1 {CREDS.ocp_ak}:{sig}", "Date": date, **extra}
    if ctype:
        headers["Content-Type"] = ctype
    return headers


# -- auth ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", [golden.POST, golden.GET], ids=["post", "get"])
def test_the_simulators_own_signature_matches_the_golden_vectors(vector: dict) -> None:
    text = ocp.to_sign(
        vector["method"],
        vector["body"],
        vector["content_type"],
        vector["date"],
        vector["host"],
        vector["headers"],
        vector["path"],
        vector["query"],
    )
    assert text == vector["to_sign"]
    assert ocp.sign(golden.SK, text) == vector["signature"]


def test_the_simulator_imports_nothing_from_the_clients() -> None:
    tree = ast.parse(open(ocp.__file__, encoding="utf-8").read())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in modules if m and m.startswith("shared")}, modules


async def test_a_request_signed_by_hand_is_accepted_and_a_tampered_one_refused(sim, api) -> None:
    host = f"127.0.0.1:{sim.port}"
    query = [("clusterId", "22"), ("sort", "id,desc"), ("name", "Submit upgrade OB cluster dag")]
    qs = "&".join(f"{k}={quote(v, safe='')}" for k, v in query)  # sent unsorted: the server sorts
    headers = aksk_headers("GET", "/api/v2/tasks/instances", query, b"", host, **{"x-ocp-origin": "test"})
    status, body = await api.call("GET", f"/api/v2/tasks/instances?{qs}", headers={**headers, "Host": host})
    assert status == 200 and body["successful"] is True
    raw = json.dumps(NEW).encode()
    headers = aksk_headers("POST", "/api/v2/ob/clusters/22/upgrade", [], raw, host)
    status, body = await api.call(
        "POST", "/api/v2/ob/clusters/22/upgrade", headers={**headers, "Host": host}, data=raw
    )
    assert status == 200 and body["data"]["status"] == "RUNNING"
    tampered = json.dumps({**NEW, "freezeServer": True}).encode()
    status, body = await api.call(
        "POST", "/api/v2/ob/clusters/23/upgrade", headers={**headers, "Host": host}, data=tampered
    )
    assert status == 401 and body["error"]["debugMessage"] == "signature does not match"
    lower = {
        **headers,
        "Host": host,
        "Authorization": headers["Authorization"].replace(
            "OCP-ACCESS-KEY-HMACSHA1", "ocp-access-key-hmacsha1"
        ),
    }
    status, body = await api.call("POST", "/api/v2/ob/clusters/22/upgrade", headers=lower, data=raw)
    assert status == 401 and "upper case" in body["error"]["debugMessage"]
    assert sim.state.stats.auth_failures["ocp"] == 2


# -- envelopes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v2/ob/clusters/22", 200),
        ("GET", "/api/v2/ob/clusters/999", 404),
        ("GET", "/api/v2/tasks/instances/42", 404),
        ("GET", "/api/v2/ob/tenants", 400),  # not simulated: OCP's "Could not find" answer
        ("DELETE", "/api/v2/ob/clusters/22/upgrade", 400),  # a method no route serves
        ("POST", "/api/v2/ob/clusters/22/upgrade", 400),  # no body
    ],
)
async def test_every_answer_is_the_ocp_envelope(api, method, path, status) -> None:
    got, body = await api.call(method, path)
    assert got == status == body["status"] and ENVELOPE <= body.keys()
    if status == 200:
        assert body["successful"] is True and "data" in body
    else:
        assert body["successful"] is False and "data" not in body
        assert isinstance(body["error"]["code"], int) and body["error"]["message"]
    got, body = await api.call(method, path, headers={})
    assert got == 401 and body["successful"] is False and ENVELOPE <= body.keys()


# -- the upgrade bodies --------------------------------------------------------------------------


async def test_the_new_ocp_takes_the_new_body_and_refuses_the_legacy_one(api) -> None:
    status, body = await api.call("POST", "/api/v2/ob/clusters/22/upgrade", json=LEGACY)
    assert status == 400 and {e["field"] for e in body["error"]["subErrors"]} == {
        "destVersion",
        "operatingSystem",
    }
    for bad, field in (
        ({**NEW, "upgradeMode": "FAST"}, "upgradeMode"),
        ({**NEW, "operatingSystem": ""}, "operatingSystem"),
    ):
        status, body = await api.call("POST", "/api/v2/ob/clusters/22/upgrade", json=bad)
        assert status == 400 and [e["field"] for e in body["error"]["subErrors"]] == [field]
    status, body = await api.call(
        "POST", "/api/v2/ob/clusters/22/upgrade", json={**NEW, "freezeServer": "yes"}
    )
    assert status == 400 and body["error"]["message"] == "Malformed JSON request"
    status, body = await api.call(
        "POST", "/api/v2/ob/clusters/22/upgrade", json={**NEW, "zoneOrder": ["z1", "z9"]}
    )
    assert status == 400 and body["error"]["code"] == 10001 and "zoneOrder" in body["error"]["message"]
    status, body = await api.call(
        "POST", "/api/v2/ob/clusters/22/upgrade", json={**NEW, "zoneOrder": ["z2", "z1"]}
    )
    assert status == 200 and body["data"]["status"] == "RUNNING"


async def test_the_legacy_ocp_takes_rpm_file_name_and_ignores_the_new_fields(api) -> None:
    status, body = await api.call("POST", "/api/v2/ob/clusters/23/upgrade", json=NEW)
    assert status == 400 and body["error"]["subErrors"] == [
        {
            "object": "upgradeObClusterParam",
            "field": "rpmFileName",
            "rejectedValue": None,
            "message": "must not be blank",
        }
    ]
    status, body = await api.call(
        "POST", "/api/v2/ob/clusters/23/upgrade", json={"rpmFileName": "oceanbase-9.9.9.el7.x86_64.rpm"}
    )
    assert status == 400 and body["error"]["code"] == 10002
    status, body = await api.call(
        "POST", "/api/v2/ob/clusters/23/upgrade", json={**LEGACY, "destVersion": "junk"}
    )
    assert status == 200 and body["data"]["name"] == ocp.TASK_NAME


# -- tasks ---------------------------------------------------------------------------------------


async def test_the_task_is_seed_001s_dag_with_documented_statuses(sim, api) -> None:
    status, body = await api.call("POST", "/api/v2/ob/clusters/22/upgrade", json=NEW)
    task = body["data"]
    assert status == 200 and "tasks" in task and "subtasks" not in task  # the upgrade answer's key
    assert task["name"] == ocp.TASK_NAME == "Submit upgrade OB cluster dag"
    assert [s["name"] for s in task["tasks"]] == [name for name, _ in ocp.DAG] == [
        "Start node", "Prepare upgrade cluster", "Submit cluster upgrade task", "Wait dag success",
        "Update OB cluster status",
    ]  # fmt: skip
    seen_task, seen_sub, cluster_seen = set(), set(), set()
    for _ in range(25):
        _, detail = await api.call("GET", f"/api/v2/tasks/instances/{task['id']}")
        data = detail["data"]
        seen_task.add(data["status"])
        seen_sub |= {s["status"] for s in data["subtasks"]}
        cluster_seen.add((await api.call("GET", "/api/v2/ob/clusters/22"))[1]["data"]["status"])
        sim.state.clock.advance(50)
    assert seen_task == {"RUNNING", "SUCCESSFUL"} and seen_task <= set(ocp.TASK_STATUSES)
    assert {"PENDING", "READY", "RUNNING", "SUCCESSFUL"} <= seen_sub <= set(ocp.SUBTASK_STATUSES)
    assert cluster_seen == {"OPERATING", "RUNNING"} and cluster_seen <= set(ocp.CLUSTER_STATUSES)
    assert "UPGRADING" not in ocp.CLUSTER_STATUSES


async def test_a_failed_task_fails_wait_dag_success_and_its_log_says_why(sim, api) -> None:
    sim.state.targets["22"].fail_next = True
    _, body = await api.call("POST", "/api/v2/ob/clusters/22/upgrade", json=NEW)
    sim.state.clock.advance(2000)
    _, detail = await api.call("GET", f"/api/v2/tasks/instances/{body['data']['id']}")
    data = detail["data"]
    assert data["status"] == "FAILED" and "errorMessage" not in data
    [failed] = [s for s in data["subtasks"] if s["status"] == "FAILED"]
    assert failed["name"] == "Wait dag success"
    status, log = await api.call("GET", f"/api/v2/tasks/instances/{data['id']}/subtasks/{failed['id']}/log")
    assert status == 200 and "simulated failure" in log["data"]["log"]
    status, again = await api.call("POST", f"/api/v2/tasks/instances/{data['id']}/rollback")
    assert status == 200 and again["data"]["operation"] == "ROLLBACK"
    status, refused = await api.call("POST", f"/api/v2/tasks/instances/{data['id']}/retry")
    assert status == 400 and refused["error"]["code"] == 20003


async def test_the_task_list_takes_the_documented_parameters(sim, api) -> None:
    ids = []
    for _ in range(3):
        sim.state.targets["22"].fail_next = True
        ids.append((await api.call("POST", "/api/v2/ob/clusters/22/upgrade", json=NEW))[1]["data"]["id"])
        sim.state.clock.advance(2000)
    ids.append((await api.call("POST", "/api/v2/ob/clusters/23/upgrade", json=LEGACY))[1]["data"]["id"])

    async def listing(query: str) -> dict:
        status, body = await api.call("GET", f"/api/v2/tasks/instances{query}")
        assert status == 200, body
        return body["data"]

    assert [t["id"] for t in (await listing(""))["contents"]] == ids  # no sort asked: oldest first
    assert [t["id"] for t in (await listing("?sort=id,desc"))["contents"]] == ids[::-1]
    page = await listing("?clusterId=22&sort=id,desc&size=2&page=2")
    assert [t["id"] for t in page["contents"]] == [ids[0]]
    assert page["page"] == {"totalElements": 3, "totalPages": 2, "number": 2, "size": 2}
    assert len((await listing("?status=RUNNING,FAILED"))["contents"]) == 4
    assert (await listing("?status=SUCCESSFUL"))["contents"] == []
    assert len((await listing("?name=upgrade%20ob%20cluster"))["contents"]) == 4  # fuzzy
    assert (await listing("?name=backup"))["contents"] == []
    assert [t["id"] for t in (await listing("?cluterName=ob-old"))["contents"]] == [
        ids[3]
    ]  # the doc's spelling
    for bad in (
        "?page=0",
        "?size=2001",
        "?size=x",
        "?clusterId=abc",
        "?status=DONE",
        "?sort=color,asc",
        "?sort=id,up",
        "?type=NIGHTLY",
    ):
        status, body = await api.call("GET", f"/api/v2/tasks/instances{bad}")
        assert status == 400 and body["successful"] is False, bad
