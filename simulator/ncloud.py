"""NAVER Cloud Data Streaming Service (Kafka), simulated from NAVER's documents.

Written apart from ``shared.clouds.ncloud.client`` on purpose (DESIGN §7a): the region prefixes, the
signature v2 check, the error codes, the version table and every shape below are this module's
own reading of the documents (../shared/seeds/004_*.txt, ../shared/seeds/vendor-facts.md §1, §6).

**Routes**, under each region prefix ``/api/v1`` (KR), ``/api/sgn-v1`` (SGN), ``/api/jpn-v1``
(JPN) (seed 004), each with its operation name (fault key, stats counter):

=============================================================  ===========================
``POST cluster/rollingUpgradePreCheck``                         ``ncloud.precheck``
``POST cluster/rollingUpgrade``                                 ``ncloud.upgrade``
``POST cluster/rollingUpgradeProgressCheck``                    ``ncloud.upgrade_progress``
``POST cluster/getClusterInfoList/{serviceGroupInstanceNo}``    ``ncloud.cluster_info``
``POST cluster/getClusterInfoList`` (paged list)                ``ncloud.cluster_list``
``GET  cluster/getClusterStatus/{serviceGroupInstanceNo}``      ``ncloud.cluster_status``
``GET  cluster/getCDSSVersionList``                             ``ncloud.versions``
``POST configGroup/getKafkaVersionConfigGroupList``             ``ncloud.config_groups``
=============================================================  ===========================

Any other path under a prefix (or a known path with another method) answers, once
authenticated, HTTP 404 with the DSS envelope (code 10004, the simulator's choice).

**Auth** (seed 004, vendor-facts §6): ``x-ncp-apigw-timestamp`` (epoch ms, within 5 minutes of
the real clock), ``x-ncp-iam-access-key``, ``x-ncp-apigw-signature-v2`` =
``base64(HMAC-SHA256(secretKey, METHOD + " " + pathWithQuery + "\\n" + timestamp + "\\n" +
accessKey))`` where ``pathWithQuery`` is the request target exactly as received (percent-encoded,
wire order — NAVER's Java SDK signs ``getRawPath() + "?" + getRawQuery()``). Failures answer
the API gateway's ``{"error": {"errorCode": "200", "message": "Authentication Failed",
"details"}}`` with 401 (API Gateway overview, "Response status codes"); so do injected 429/5xx
faults (400 "Quota Exceed", 500/503 "Endpoint Error", 504 "Endpoint Timeout").

**Answers** of the service itself, errors included, are the envelope ``{code, message, result,
requestId}``; success is code 0, "SUCCESS". Error codes: 10153 (target not later than current:
seed 004) and, the simulator's own choices where NAVER documents none (HTTP 400 unless said):
10001 bad parameter (a required field missing, or not an Integer), 10002 no such cluster,
10004 no such API (404), 10105 cluster busy, 10154 version not offered for the cluster, 10155 no
passing precheck for this version and group, 10156 the config group was not created for the
target version, 10157 no such config group.

**Rolling upgrade.** Brokers turn over one at a time across the job: the broker being restarted
is ``orange`` and not counted in ``brokerNumber``; ``brokerStatus`` is ``orange`` (changing)
and ``getClusterInfoList`` says ``status: "changing"``; at the end every broker is ``green``,
``status`` is ``"running"`` and ``kafkaVersionCode`` (a string) and ``configGroupNo`` are the
new ones. A failing job fails on the second broker: it turns ``red``, ``brokerStatus`` ``red``,
``status`` ``"error"``, the version unchanged. Per-node status values and ``cmakStatus`` are
UNCONFIRMED by NAVER: the simulator uses the colours. A stalled job stays at its broker.

**Catalog.** ``getCDSSVersionList`` serves :data:`VERSIONS`; config groups belong to one version
(:data:`CONFIG_GROUPS`). A kafka target's ``extra`` may add ``kafkaVersions`` (entries shaped
like :data:`VERSIONS`) and ``configGroups`` (``{configGroupNo, configGroupName,
kafkaVersionCode}``), and ``configGroupNo`` (the group it runs with now). The account state is
``app[DSS]``.

Lag: ``list_lag_s`` keeps ``getClusterStatus``, ``rollingUpgradeProgressCheck`` and
``getClusterInfoList`` showing the cluster as before an upgrade younger than it. No answer
carries a timestamp, so ``clock_skew_s`` shows only in the ``Date`` header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from simulator.core import SimJob, SimState, SimTarget, json_error, route

__all__ = [
    "CONFIG_GROUPS",
    "DSS",
    "PREFIXES",
    "SERVICE",
    "VERSIONS",
    "Dss",
    "error_body",
    "expected_signature",
    "register",
]

SERVICE = "ncloud"
KIND = "ncloud-kafka"
#: Region path prefixes (seed 004).
PREFIXES = ("/api/v1", "/api/sgn-v1", "/api/jpn-v1")
#: "If the time difference compared to the API Gateway server is more than 5 minutes, the
#: request is considered invalid" (seed 004).
MAX_SKEW_MS = 5 * 60 * 1000
NOT_LATER = 10153  # seed 004
BAD_PARAM, NO_CLUSTER, NO_API, BUSY = 10001, 10002, 10004, 10105
UNSUPPORTED, NO_PRECHECK, WRONG_GROUP, NO_GROUP = 10154, 10155, 10156, 10157
#: The gateway's (code, message) per status (api.ncloud-docs.com API Gateway overview).
_GATEWAY = {
    401: ("200", "Authentication Failed"),
    429: ("400", "Quota Exceed"),
    500: ("500", "Endpoint Error"),
    502: ("500", "Endpoint Error"),
    503: ("500", "Endpoint Error"),
    504: ("510", "Endpoint Timeout"),
}
#: ``getCDSSVersionList``. 3903006 with its names: the "Get version" response example
#: (api.ncloud-docs.com …-cluster-getkafkaversionlist); 2403005 "Kafka 2.4.0": TF-NC
#: ``docs/data-sources/cdss_kafka_version.md``. 2823006 and 3713006 appear in NAVER's examples
#: without names; they, 3503006 and 3703006 are the simulator's own entries, named by the
#: pattern of the documented pairs (the simulator is the vendor here: clients must look up).
VERSIONS: tuple[dict[str, str], ...] = tuple(
    {
        "kafkaVersionCode": code,
        "kafkaVersionName": f"Kafka {kafka}",
        "applicationVersionName": f"Kafka {kafka}, CMAK {cmak}",
        "cmakVersionName": f"CMAK {cmak}",
    }
    for code, kafka, cmak in (
        ("2403005", "2.4.0", "3.0.0.5"),
        ("2823006", "2.8.2", "3.0.0.6"),
        ("3503006", "3.5.0", "3.0.0.6"),
        ("3703006", "3.7.0", "3.0.0.6"),
        ("3713006", "3.7.1", "3.0.0.6"),
        ("3903006", "3.9.0", "3.0.0.6"),
    )
)
#: The account's config groups, one per version (numbers are the simulator's choice; 170 is
#: seed 004's example group).
CONFIG_GROUPS: tuple[dict[str, Any], ...] = tuple(
    {
        "configGroupNo": no,
        "configGroupName": f"kafka-{code}-default",
        "kafkaVersionCode": code,
        "description": "",
    }
    for no, code in (
        (140, "2403005"),
        (160, "2823006"),
        (170, "3503006"),
        (171, "3703006"),
        (175, "3713006"),
        (190, "3903006"),
    )
)


@dataclass
class Dss:
    """The account as DSS sees it: versions offered, config groups, the last passing prechecks."""

    versions: dict[str, dict[str, str]] = field(default_factory=dict)
    groups: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: cluster id -> (version code, config group) of its last passing precheck
    prechecked: dict[str, tuple[int, int]] = field(default_factory=dict)

    def add_version(self, entry: dict[str, Any]) -> None:
        code = str(entry["kafkaVersionCode"])
        if not code.isdigit():
            raise ValueError(f"kafkaVersions: kafkaVersionCode {code!r} is not digits")
        name = str(entry.get("kafkaVersionName") or "")
        self.versions[code] = {
            "kafkaVersionCode": code,
            "kafkaVersionName": name,
            "applicationVersionName": str(entry.get("applicationVersionName") or name),
            "cmakVersionName": str(entry.get("cmakVersionName") or ""),
        }

    def add_group(self, entry: dict[str, Any]) -> None:
        no, code = entry.get("configGroupNo"), str(entry.get("kafkaVersionCode", ""))
        if isinstance(no, bool) or not isinstance(no, int) or no <= 0 or not code.isdigit():
            raise ValueError(f"configGroups: {entry!r} needs an integer configGroupNo and a kafkaVersionCode")
        self.groups[no] = {
            "configGroupNo": no,
            "configGroupName": str(entry.get("configGroupName") or f"group-{no}"),
            "description": str(entry.get("description") or ""),
            "kafkaVersionCode": code,
        }


DSS = web.AppKey("upshift_sim_ncloud", Dss)


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    """The API gateway's error shape (auth failures and injected faults)."""
    gw_code, gw_message = _GATEWAY.get(status, (str(status), message))
    return {"error": {"errorCode": gw_code, "message": gw_message, "details": message}}


def expected_signature(
    method: str, path_with_query: str, timestamp: str, access_key: str, secret_key: str
) -> str:
    """Signature v2 of a request, as the gateway computes it (see the module docstring)."""
    mac = hmac.new(secret_key.encode("utf-8"), digestmod=hashlib.sha256)
    for part in (method, " ", path_with_query, "\n", timestamp, "\n", access_key):
        mac.update(part.encode("utf-8"))
    return base64.b64encode(mac.digest()).decode("ascii")


def _envelope(code: int, message: str, result: Any, status: int = 200) -> web.Response:
    body = {"code": code, "message": message, "result": result, "requestId": str(uuid.uuid4())}
    return web.json_response(body, status=status)


def _ok(result: Any) -> web.Response:
    return _envelope(0, "SUCCESS", result)


def _refuse(code: int, message: str, status: int = 400) -> web.Response:
    return _envelope(code, message, None, status=status)


class _Bad(Exception):
    """A request the service refuses; carries its envelope answer."""

    def __init__(self, response: web.Response) -> None:
        super().__init__("refused")
        self.response = response


def _auth_problem(state: SimState, request: web.Request) -> str | None:
    ts = request.headers.get("x-ncp-apigw-timestamp")
    ak = request.headers.get("x-ncp-iam-access-key")
    sig = request.headers.get("x-ncp-apigw-signature-v2")
    if not (ts and ak and sig):
        return (
            "required header missing (x-ncp-apigw-timestamp, x-ncp-iam-access-key, x-ncp-apigw-signature-v2)"
        )
    if not ts.isdigit():
        return "x-ncp-apigw-timestamp must be epoch milliseconds"
    if abs(time.time() * 1000 - int(ts)) > MAX_SKEW_MS:
        return "timestamp is more than 5 minutes from the gateway's clock"
    if ak != state.creds.ncp_ak:
        return "unknown access key"
    wanted = expected_signature(request.method, request.raw_path, ts, ak, state.creds.ncp_sk)
    return None if hmac.compare_digest(sig.encode(), wanted.encode()) else "signature does not match"


async def _body(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        if optional:
            return {}
        raise _Bad(_refuse(BAD_PARAM, "request body is required"))
    try:
        body = json.loads(raw)
    except ValueError:
        raise _Bad(_refuse(BAD_PARAM, "request body is not JSON")) from None
    if not isinstance(body, dict):
        raise _Bad(_refuse(BAD_PARAM, "request body must be a JSON object"))
    return body


def _integer(body: dict[str, Any], name: str, *, required: bool = True, default: int | None = None) -> int:
    """A documented Integer field: a JSON integer > 0 (a string, bool or float is refused)."""
    value = body.get(name)
    if value is None:
        if required:
            raise _Bad(_refuse(BAD_PARAM, f"{name} is required"))
        assert default is not None
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _Bad(_refuse(BAD_PARAM, f"{name} must be a positive Integer, not {value!r}"))
    return value


def _code(body: dict[str, Any], name: str) -> int:
    """``kafkaVersionCode`` of the config group list: an Integer in the doc's table, a string in
    its own curl example and in GoNC — both are accepted, nothing else."""
    value = body.get(name)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return _integer(body, name)


def register(app: web.Application, state: SimState) -> None:
    """Add the DSS routes under each region prefix, and the account's catalog (``app[DSS]``)."""
    state.error_bodies[SERVICE] = error_body
    dss = Dss()
    for entry in VERSIONS:
        dss.add_version(entry)
    for entry in CONFIG_GROUPS:
        dss.add_group(entry)
    for target in state.targets.values():
        if target.kind == KIND:
            for entry in target.extra.get("kafkaVersions", ()):
                dss.add_version(entry)
            for entry in target.extra.get("configGroups", ()):
                dss.add_group(entry)
    app[DSS] = dss

    def brokers(target: SimTarget) -> int:
        return max(1, int(target.extra.get("brokers", 3)))

    def last_job(target: SimTarget) -> SimJob | None:
        jobs = [j for j in state.jobs_of(target.id, visible=True) if j.service == SERVICE]
        return jobs[-1] if jobs else None

    def shown(target: SimTarget) -> tuple[str, SimJob | None]:
        """(the outcome the views show, its job): "running", "failed" or "succeeded"/no job."""
        job = last_job(target)
        if job is None:
            return "succeeded", None
        return job.outcome(state.clock.now()), job

    def group_of(target: SimTarget) -> int | None:
        done = [j for j in state.jobs_of(target.id, visible=True) if j.service == SERVICE and j.applied]
        if done:
            return int(done[-1].extra["configGroupNo"])
        if "configGroupNo" in target.extra:
            return int(target.extra["configGroupNo"])
        ours = [g["configGroupNo"] for g in dss.groups.values() if g["kafkaVersionCode"] == target.version]
        return min(ours) if ours else None

    def cluster_state(target: SimTarget) -> str:
        return {"running": "changing", "failed": "error", "succeeded": "running"}[shown(target)[0]]

    def broker_view(target: SimTarget) -> dict[str, Any]:
        n = brokers(target)
        outcome, job = shown(target)
        colours = ["green"] * n
        if job is not None and outcome != "succeeded":
            at = min(n - 1, math.floor(job.fraction(state.clock.now()) * n))  # the broker being restarted
            colours[at] = "red" if outcome == "failed" else "orange"
        down = sum(1 for c in colours if c != "green")
        overall = "red" if "red" in colours else "orange" if "orange" in colours else "green"
        zookeepers = [{"hostname": f"{target.name}-zookeeper-{i + 1}", "status": "green"} for i in range(3)]
        return {
            "clusterName": target.name,
            "brokerNodeTotalNumber": n,
            "brokerNumber": n - down,
            "brokerStatus": overall,
            "brokerStatusPerNode": [
                {"hostname": f"{target.name}-broker-{i + 1}", "status": colour}
                for i, colour in enumerate(colours)
            ],
            "zookeeperTotalNumber": 3,
            "zookeeperNumber": 3,
            "zookeeperStatus": "green",
            "zookeeperStatusPerNode": zookeepers,
            "cmakStatus": "green",
        }

    def info_view(target: SimTarget) -> dict[str, Any]:
        return {
            "clusterName": target.name,
            "kafkaVersionCode": target.version,
            "configGroupNo": group_of(target),
            "status": cluster_state(target),
            "brokerNodeCount": brokers(target),
            "brokerNodeProductCode": "SVR.VCDSS.STAND.C002.M008.NET.HDD.B050.G002",
            "brokerNodeStorageSize": 100,
            "brokerNodeSubnetNo": 12001,
            "managerNodeProductCode": "SVR.VCDSS.STAND.C002.M008.NET.HDD.B050.G002",
            "managerNodeSubnetNo": 12001,
            "softwareProductCode": "SW.VCDSS.OS.LNX64.CNTOS.0708.B050",
            "kafkaManagerUserName": "admin",
            "vpcNo": 1001,
        }

    def cluster(no: Any) -> SimTarget:
        target = state.by_id(KIND, str(no))
        if target is None:
            raise _Bad(_refuse(NO_CLUSTER, f"cluster {no} does not exist"))
        return target

    def path_cluster(request: web.Request) -> SimTarget:
        no = request.match_info["no"]
        if not no.isdigit():
            raise _Bad(_refuse(BAD_PARAM, f"serviceGroupInstanceNo must be an Integer, not {no!r}"))
        return cluster(int(no))

    def check_upgrade(target: SimTarget, code: int, group_no: int) -> None:
        if state.active_job(target) is not None:
            raise _Bad(
                _refuse(BUSY, "the cluster is being changed; try again when the current operation ends.")
            )
        if code <= int(target.version):  # the simulator's codes order as its versions do
            raise _Bad(
                _refuse(
                    NOT_LATER, "the updated Kafka version must be later than the current cluster version."
                )
            )
        if str(code) not in target.versions or str(code) not in dss.versions:
            raise _Bad(_refuse(UNSUPPORTED, f"Kafka version code {code} is not supported for this cluster."))
        group = dss.groups.get(group_no)
        if group is None:
            raise _Bad(_refuse(NO_GROUP, f"config group {group_no} does not exist."))
        if group["kafkaVersionCode"] != str(code):
            raise _Bad(
                _refuse(
                    WRONG_GROUP,
                    f"config group {group_no} was created for Kafka version code {group['kafkaVersionCode']},"
                    f" not {code}: select the config group according to the version.",
                )
            )

    def upgrade_request(body: dict[str, Any]) -> tuple[SimTarget, int, int]:
        no = _integer(body, "serviceGroupInstanceNo")
        code = _integer(body, "upgradeKafkaVersionCode")
        group_no = _integer(body, "upgradeConfigGroupNo")
        return cluster(no), code, group_no

    # -- handlers: (request, endpoint) -> response; a _Bad is the service's refusal --------------

    async def precheck(request: web.Request, endpoint: str) -> web.Response:
        target, code, group_no = upgrade_request(await _body(request))
        state.count(endpoint, target.id)
        check_upgrade(target, code, group_no)
        dss.prechecked[target.id] = (code, group_no)
        return _ok(True)

    async def upgrade(request: web.Request, endpoint: str) -> web.Response:
        target, code, group_no = upgrade_request(await _body(request))
        state.count(endpoint, target.id)
        check_upgrade(target, code, group_no)
        if dss.prechecked.get(target.id) != (code, group_no):
            raise _Bad(
                _refuse(NO_PRECHECK, "run rollingUpgradePreCheck for this version and config group first.")
            )
        del dss.prechecked[target.id]
        n = brokers(target)
        failing = min(1, n - 1)  # the second broker, or the only one
        state.start_job(
            target,
            str(code),
            service=SERVICE,
            job_id=f"ncloud-{target.id}-{state.new_id()}",
            fail_reason=f"broker {failing + 1} did not rejoin the cluster after restart",
            fail_at=(failing + 0.5) / n,
            extra={"configGroupNo": group_no},
        )
        return _ok(True)

    async def progress(request: web.Request, endpoint: str) -> web.Response:
        target = cluster(_integer(await _body(request), "serviceGroupInstanceNo"))
        state.count(endpoint, target.id)
        return _ok(broker_view(target))

    async def status(request: web.Request, endpoint: str) -> web.Response:
        target = path_cluster(request)
        state.count(endpoint, target.id)
        return _ok(broker_view(target))

    async def info(request: web.Request, endpoint: str) -> web.Response:
        target = path_cluster(request)
        state.count(endpoint, target.id)
        return _ok(info_view(target))

    async def info_list(request: web.Request, endpoint: str) -> web.Response:
        body = await _body(request, optional=True)
        page_no = _integer(body, "pageNo", required=False, default=1)
        size = _integer(body, "pageSize", required=False, default=10)
        text, vpc = body.get("inputText"), body.get("vpcName")
        for name, value in (("inputText", text), ("vpcName", vpc)):
            if value is not None and not isinstance(value, str):
                raise _Bad(_refuse(BAD_PARAM, f"{name} must be a String"))
        state.count(endpoint, "-")
        matched = [
            t
            for t in state.targets.values()
            if t.kind == KIND and (not text or text in t.name) and (vpc is None or vpc == "upshift-vpc")
        ]
        for t in matched:
            state.refresh(t)
        items = [
            {
                "serviceGroupInstanceNo": t.id,
                "clusterName": t.name,
                "kafkaVersion": dss.versions.get(t.version, {}).get("kafkaVersionName", ""),
                "serverStatus": cluster_state(t),
                "brokerNodeCount": brokers(t),
                "vpcName": "upshift-vpc",
            }
            for t in matched
        ]
        total_pages = max(1, math.ceil(len(items) / size))
        return _ok(
            {
                "currentPage": page_no,
                "isFirst": page_no == 1,
                "isLast": page_no >= total_pages,
                "pageSize": size,
                "totalCount": len(items),
                "totalPage": total_pages,
                "allowedClusters": items[(page_no - 1) * size : page_no * size],
                "disallowedClusters": [],
            }
        )

    async def versions(request: web.Request, endpoint: str) -> web.Response:
        state.count(endpoint, "-")
        return _ok({"kafkaVersionList": [dict(v) for v in dss.versions.values()]})

    async def config_groups(request: web.Request, endpoint: str) -> web.Response:
        body = await _body(request)
        code = _code(body, "kafkaVersionCode")
        page_no = _integer(body, "pageNo", required=False, default=1)
        size = _integer(body, "pageSize", required=False, default=10)
        state.count(endpoint, "-")
        name = dss.versions.get(str(code), {}).get("kafkaVersionName", "")
        groups = [
            {**g, "kafkaVersion": name}
            for no, g in sorted(dss.groups.items())
            if g["kafkaVersionCode"] == str(code)
        ]
        total_pages = max(1, math.ceil(len(groups) / size))
        return _ok(
            {
                "currentPage": page_no,
                "isFirst": page_no == 1,
                "isLast": page_no >= total_pages,
                "pageSize": size,
                "totalCount": len(groups),
                "totalPage": total_pages,
                "kafkaConfigGroupList": groups[(page_no - 1) * size : page_no * size],
            }
        )

    async def unknown(request: web.Request, endpoint: str) -> web.Response:
        return _refuse(NO_API, f"no such API: {request.method} {request.path}", status=404)

    def guarded(endpoint: str, handler: Any) -> Any:
        async def run(request: web.Request) -> web.Response:
            problem = _auth_problem(state, request)
            if problem is not None:
                state.stats.auth_failures[SERVICE] += 1
                return json_error(401, error_body(401, "200", problem))
            try:
                return await handler(request, endpoint)
            except _Bad as bad:
                return bad.response

        return run

    routes = (
        ("POST", "cluster/rollingUpgradePreCheck", "precheck", precheck),
        ("POST", "cluster/rollingUpgrade", "upgrade", upgrade),
        ("POST", "cluster/rollingUpgradeProgressCheck", "upgrade_progress", progress),
        ("POST", "cluster/getClusterInfoList/{no}", "cluster_info", info),
        ("POST", "cluster/getClusterInfoList", "cluster_list", info_list),
        ("GET", "cluster/getClusterStatus/{no}", "cluster_status", status),
        ("GET", "cluster/getCDSSVersionList", "versions", versions),
        ("POST", "configGroup/getKafkaVersionConfigGroupList", "config_groups", config_groups),
    )
    for prefix in PREFIXES:
        for method, path, name, handler in routes:
            op = f"{SERVICE}.{name}"
            route(app, state, SERVICE, method, f"{prefix}/{path}", guarded(op, handler), op=op)
    for prefix in PREFIXES:  # after the routes above: aiohttp tries resources in order
        app.router.add_route("*", f"{prefix}/{{tail:.*}}", guarded(f"{SERVICE}.unknown", unknown))
