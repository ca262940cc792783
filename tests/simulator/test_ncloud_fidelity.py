"""The simulated NAVER DSS is NAVER's documents, not our client: independent signing (golden
vectors), the envelope on every answer, strict bodies, the rolling upgrade's colours and states,
config groups per version and the version list — over real loopback HTTP, with raw requests."""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from yarl import URL

import simulator.ncloud as dss
from simulator.core import SimTarget
from simulator.ncloud import DSS, expected_signature
from simulator.testing import run_simulator
from tests.clouds.ncloud.vectors import ACCESS_KEY, QUERY, SECRET_KEY, TIMESTAMP, VECTORS

NO, OLD, NEW = 3432149, "2823006", "3503006"
BODY = {"serviceGroupInstanceNo": NO, "upgradeKafkaVersionCode": int(NEW), "upgradeConfigGroupNo": 170}
ENVELOPE = {"code", "message", "result", "requestId"}


def sign(method: str, target: str, ts: str, ak: str, sk: str) -> str:
    """Signature v2 written out once more, in the test (seed 004)."""
    message = method + " " + target + "\n" + ts + "\n" + ak
    return base64.b64encode(hmac.new(sk.encode(), message.encode(), hashlib.sha256).digest()).decode()


class Raw:
    """Signed raw requests; ``target`` is the path with its query exactly as it goes on the wire."""

    def __init__(self, sim: Any, http: aiohttp.ClientSession) -> None:
        self.sim, self.http = sim, http

    async def call(
        self,
        method: str,
        target: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        signed_as: str | None = None,
        ts: str | None = None,
    ) -> tuple[int, Any]:
        creds = self.sim.state.creds
        ts = ts or str(int(time.time() * 1000))
        headers = {
            "x-ncp-apigw-timestamp": ts,
            "x-ncp-iam-access-key": creds.ncp_ak,
            "x-ncp-apigw-signature-v2": sign(method, signed_as or target, ts, creds.ncp_ak, creds.ncp_sk),
        }
        url = URL(self.sim.url + target, encoded=True)
        async with self.http.request(method, url, json=json, data=data, headers=headers) as r:
            return r.status, await r.json()

    async def ok(self, method: str, target: str, **kw: Any) -> Any:
        status, body = await self.call(method, target, **kw)
        assert (status, body["code"], body["message"]) == (200, 0, "SUCCESS"), body
        return body["result"]


@pytest.fixture
async def raw():
    async with run_simulator(speed=1.0) as sim, aiohttp.ClientSession() as http:
        yield Raw(sim, http)


# -- independence and signing -----------------------------------------------------------------


def test_the_simulator_imports_nothing_of_the_clients() -> None:
    tree = ast.parse(Path(dss.__file__).read_text(encoding="utf-8"))
    imported = {
        n.module if isinstance(n, ast.ImportFrom) else a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in (n.names if isinstance(n, ast.Import) else [n])
    }
    assert not {m for m in imported if m and m.startswith("shared")}, imported
    probe = "import sys, simulator.ncloud; print(sorted(m for m in sys.modules if m.startswith('shared')))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(("method", "uri", "expected"), VECTORS)
def test_golden_vectors(method: str, uri: str, expected: str) -> None:
    assert expected_signature(method, uri, TIMESTAMP, ACCESS_KEY, SECRET_KEY) == expected


async def test_a_query_is_verified_exactly_as_sent(raw: Raw) -> None:
    query = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in QUERY)
    target = f"/api/v1/cluster/getCDSSVersionList?{query}"
    assert (await raw.ok("GET", target))["kafkaVersionList"]
    unencoded = "/api/v1/cluster/getCDSSVersionList?" + "&".join(f"{k}={v}" for k, v in QUERY)
    status, body = await raw.call("GET", target, signed_as=unencoded)
    assert status == 401 and body == {
        "error": {
            "errorCode": "200",
            "message": "Authentication Failed",
            "details": "signature does not match",
        }
    }


@pytest.mark.parametrize(
    "ts",
    [str(int((time.time() - 301) * 1000)), str(int(time.time())), "soon"],
    ids=["over-5-minutes-old", "seconds-not-ms", "not-a-number"],
)
async def test_timestamps_are_epoch_milliseconds_within_five_minutes(raw: Raw, ts: str) -> None:
    status, body = await raw.call("GET", "/api/v1/cluster/getCDSSVersionList", ts=ts)
    assert status == 401 and body["error"]["errorCode"] == "200"


# -- the envelope, strict bodies --------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/api/v1", "/api/sgn-v1", "/api/jpn-v1"])
@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/cluster/getCDSSVersionList", None, 200, 0),
        ("POST", f"/cluster/getClusterInfoList/{NO}", None, 200, 0),
        ("POST", "/cluster/getClusterInfoList", {}, 200, 0),
        ("GET", f"/cluster/getClusterStatus/{NO}", None, 200, 0),
        ("POST", "/cluster/rollingUpgradeProgressCheck", {"serviceGroupInstanceNo": NO}, 200, 0),
        ("POST", "/configGroup/getKafkaVersionConfigGroupList", {"kafkaVersionCode": 3903006}, 200, 0),
        ("POST", "/cluster/rollingUpgradePreCheck", BODY, 200, 0),
        (
            "POST",
            "/cluster/rollingUpgradePreCheck",
            {**BODY, "upgradeKafkaVersionCode": int(OLD)},
            400,
            10153,
        ),
        ("POST", "/cluster/getClusterInfoList/999", None, 400, 10002),
        ("GET", "/cluster/getClusterStatus/abc", None, 400, 10001),
        ("POST", "/cluster/noSuchApi", {}, 404, 10004),
        ("GET", "/nothing/here?x=1", None, 404, 10004),
        ("GET", "/cluster/rollingUpgrade", None, 404, 10004),  # a known path, another method
        ("DELETE", f"/cluster/getClusterStatus/{NO}", None, 404, 10004),
    ],
)
async def test_every_answer_is_the_dss_envelope(raw: Raw, prefix, method, path, body, status, code) -> None:
    got, answer = await raw.call(method, prefix + path, json=body)
    assert (got, set(answer), answer["code"]) == (status, ENVELOPE, code), answer
    assert uuid.UUID(answer["requestId"])
    assert (answer["message"] == "SUCCESS") == (code == 0)
    if code:
        assert answer["result"] is None and answer["message"]


@pytest.mark.parametrize(
    "body",
    [
        {k: v for k, v in BODY.items() if k != "upgradeConfigGroupNo"},
        {**BODY, "serviceGroupInstanceNo": str(NO)},
        {**BODY, "upgradeKafkaVersionCode": NEW},
        {**BODY, "upgradeConfigGroupNo": "170"},
        {**BODY, "upgradeConfigGroupNo": True},
        {**BODY, "upgradeKafkaVersionCode": 3503006.0},
        {**BODY, "serviceGroupInstanceNo": 0},
        [BODY],
    ],
    ids=["missing", "str-cluster", "str-version", "str-group", "bool", "float", "zero", "array"],
)
@pytest.mark.parametrize("api", ["rollingUpgradePreCheck", "rollingUpgrade"])
async def test_upgrade_bodies_take_integers_only(raw: Raw, api: str, body: Any) -> None:
    status, answer = await raw.call("POST", f"/api/v1/cluster/{api}", json=body)
    assert (status, answer["code"], answer["result"]) == (400, 10001, None)
    assert raw.sim.state.active_job(raw.sim.target("ncloud-kafka", str(NO))) is None


async def test_other_bodies_are_strict_too(raw: Raw) -> None:
    for target, body in (
        ("/api/v1/cluster/rollingUpgradeProgressCheck", {}),
        ("/api/v1/cluster/rollingUpgradeProgressCheck", {"serviceGroupInstanceNo": str(NO)}),
        ("/api/v1/configGroup/getKafkaVersionConfigGroupList", {}),
        ("/api/v1/configGroup/getKafkaVersionConfigGroupList", {"kafkaVersionCode": "3.9.0"}),
        ("/api/v1/configGroup/getKafkaVersionConfigGroupList", {"kafkaVersionCode": 3903006, "pageNo": 0}),
        ("/api/v1/cluster/getClusterInfoList", {"inputText": 5}),
    ):
        status, answer = await raw.call("POST", target, json=body)
        assert (status, answer["code"]) == (400, 10001), (target, body, answer)
    status, answer = await raw.call("POST", "/api/v1/cluster/rollingUpgrade", data=b"{not json")
    assert (status, answer["code"]) == (400, 10001)


# -- versions and config groups ---------------------------------------------------------------


async def test_version_list_is_the_documented_shape(raw: Raw) -> None:
    listed = (await raw.ok("GET", "/api/v1/cluster/getCDSSVersionList"))["kafkaVersionList"]
    assert {  # the "Get version" response example, verbatim
        "kafkaVersionCode": "3903006",
        "applicationVersionName": "Kafka 3.9.0, CMAK 3.0.0.6",
        "kafkaVersionName": "Kafka 3.9.0",
        "cmakVersionName": "CMAK 3.0.0.6",
    } in listed
    assert all(isinstance(v["kafkaVersionCode"], str) and v["kafkaVersionCode"].isdigit() for v in listed)
    assert {"kafkaVersionCode": "2403005"}.items() <= next(
        v for v in listed if v["kafkaVersionCode"] == "2403005"
    ).items()


async def test_config_groups_belong_to_a_version(raw: Raw) -> None:
    raw.sim.runner.app[DSS].add_group(
        {"configGroupNo": 301, "configGroupName": "prod-3.5", "kafkaVersionCode": NEW}
    )
    path = "/api/v1/configGroup/getKafkaVersionConfigGroupList"
    page = await raw.ok("POST", path, json={"kafkaVersionCode": NEW})  # a string, as the doc's example sends
    assert [
        (g["configGroupNo"], g["kafkaVersionCode"], g["kafkaVersion"]) for g in page["kafkaConfigGroupList"]
    ] == [
        (170, NEW, "Kafka 3.5.0"),
        (301, NEW, "Kafka 3.5.0"),
    ]
    assert (page["totalCount"], page["isFirst"], page["isLast"], page["currentPage"]) == (2, True, True, 1)
    second = await raw.ok("POST", path, json={"kafkaVersionCode": int(NEW), "pageNo": 2, "pageSize": 1})
    assert [g["configGroupNo"] for g in second["kafkaConfigGroupList"]] == [301] and second["isLast"]
    # a group of another version is refused for the upgrade, by the precheck and the upgrade alike
    for api in ("rollingUpgradePreCheck", "rollingUpgrade"):
        status, answer = await raw.call(
            "POST", f"/api/v1/cluster/{api}", json={**BODY, "upgradeConfigGroupNo": 171}
        )
        assert (status, answer["code"]) == (400, 10156) and "3703006" in answer["message"]
    assert (
        await raw.ok(
            "POST", "/api/v1/cluster/rollingUpgradePreCheck", json={**BODY, "upgradeConfigGroupNo": 301}
        )
    ) is True


async def test_targets_may_bring_their_own_versions_and_groups() -> None:
    extra = {
        "brokers": 1,
        "kafkaVersions": [{"kafkaVersionCode": "4103007", "kafkaVersionName": "Kafka 4.1.0"}],
        "configGroups": [{"configGroupNo": 41, "configGroupName": "k41", "kafkaVersionCode": "4103007"}],
    }
    target = SimTarget("k", "ncloud-kafka", "77", "3903006", ["4103007"], job_seconds=10, extra=extra)
    async with run_simulator(targets=[target], speed=1.0) as sim, aiohttp.ClientSession() as http:
        r = Raw(sim, http)
        names = {
            v["kafkaVersionCode"]: v["kafkaVersionName"]
            for v in (await r.ok("GET", "/api/v1/cluster/getCDSSVersionList"))["kafkaVersionList"]
        }
        assert names["4103007"] == "Kafka 4.1.0"
        body = {"serviceGroupInstanceNo": 77, "upgradeKafkaVersionCode": 4103007, "upgradeConfigGroupNo": 41}
        assert await r.ok("POST", "/api/v1/cluster/rollingUpgradePreCheck", json=body) is True


# -- the rolling upgrade ----------------------------------------------------------------------


async def views(raw: Raw) -> dict[str, Any]:
    progress = await raw.ok(
        "POST", "/api/sgn-v1/cluster/rollingUpgradeProgressCheck", json={"serviceGroupInstanceNo": NO}
    )
    status = await raw.ok("GET", f"/api/sgn-v1/cluster/getClusterStatus/{NO}")
    info = await raw.ok("POST", f"/api/sgn-v1/cluster/getClusterInfoList/{NO}")
    listing = await raw.ok(
        "POST", "/api/sgn-v1/cluster/getClusterInfoList", json={"inputText": "kafka-dev-a"}
    )
    assert progress == status  # the progress check mirrors getClusterStatus
    [item] = listing["allowedClusters"]
    assert item["serviceGroupInstanceNo"] == str(NO) and item["serverStatus"] == info["status"]
    return {"progress": progress, "info": info, "item": item}


async def test_brokers_turn_over_one_by_one_orange_then_green(raw: Raw) -> None:
    before = await views(raw)
    assert (before["progress"]["brokerStatus"], before["progress"]["brokerNumber"]) == ("green", 3)
    assert (before["info"]["status"], before["info"]["kafkaVersionCode"], before["item"]["kafkaVersion"]) == (
        "running",
        OLD,
        "Kafka 2.8.2",
    )
    assert await raw.ok("POST", "/api/v1/cluster/rollingUpgradePreCheck", json=BODY) is True
    assert await raw.ok("POST", "/api/v1/cluster/rollingUpgrade", json=BODY) is True
    job_seconds = raw.sim.target("ncloud-kafka", str(NO)).job_seconds
    seen = []
    for third in range(3):  # the middle of each broker's turn
        raw.sim.state.clock.advance(job_seconds / 3 * (0.5 if third == 0 else 1.0))
        v = await views(raw)
        p = v["progress"]
        assert (p["brokerStatus"], p["brokerNodeTotalNumber"], p["brokerNumber"]) == ("orange", 3, 2)
        assert (v["info"]["status"], v["info"]["kafkaVersionCode"]) == ("changing", OLD)
        seen.append([n["status"] for n in p["brokerStatusPerNode"]])
        assert set(p) >= {"clusterName", "zookeeperTotalNumber", "zookeeperStatus", "cmakStatus"}
    assert seen == [["orange", "green", "green"], ["green", "orange", "green"], ["green", "green", "orange"]]
    raw.sim.state.clock.advance(job_seconds)
    after = await views(raw)
    p = after["progress"]
    assert (p["brokerStatus"], p["brokerNumber"], {n["status"] for n in p["brokerStatusPerNode"]}) == (
        "green",
        3,
        {"green"},
    )
    assert (after["info"]["status"], after["info"]["kafkaVersionCode"], after["info"]["configGroupNo"]) == (
        "running",
        NEW,
        170,
    )
    assert after["item"]["kafkaVersion"] == "Kafka 3.5.0"


async def test_a_failing_upgrade_turns_red_and_the_cluster_error(raw: Raw) -> None:
    raw.sim.target("ncloud-kafka", str(NO)).fail_next = True
    await raw.ok("POST", "/api/v1/cluster/rollingUpgradePreCheck", json=BODY)
    await raw.ok("POST", "/api/v1/cluster/rollingUpgrade", json=BODY)
    raw.sim.state.clock.advance(10_000)
    v = await views(raw)
    assert (v["progress"]["brokerStatus"], v["progress"]["brokerNumber"]) == ("red", 2)
    assert [n["status"] for n in v["progress"]["brokerStatusPerNode"]] == ["green", "red", "green"]
    assert (v["info"]["status"], v["info"]["kafkaVersionCode"]) == ("error", OLD)


async def test_list_lag_shows_the_cluster_as_before_the_upgrade(raw: Raw) -> None:
    raw.sim.state.faults.update({"ncloud": {"list_lag_s": 600}})
    await raw.ok("POST", "/api/v1/cluster/rollingUpgradePreCheck", json=BODY)
    await raw.ok("POST", "/api/v1/cluster/rollingUpgrade", json=BODY)
    raw.sim.state.clock.advance(100)
    assert (await views(raw))["info"]["status"] == "running"
    [job] = raw.sim.state.jobs_of(str(NO))
    job.created_real -= 600
    v = await views(raw)
    assert (v["info"]["status"], v["progress"]["brokerStatus"]) == ("changing", "orange")
    status, answer = await raw.call("POST", "/api/v1/cluster/rollingUpgradePreCheck", json=BODY)
    assert (status, answer["code"]) == (400, 10105)  # conflicts see the truth
