"""NAVER Cloud Data Streaming Service (Kafka), simulated: signature v2 and the rolling upgrade.

Served under every region prefix (``/api/v1``, ``/api/sgn-v1``, ``/api/jpn-v1``). Brokers are
upgraded one at a time across the job; the cluster's ``kafkaVersionCode`` changes only when the
last broker is done. A failing job fails on the second broker and leaves the version as it was.

Business errors answer HTTP 400 with ``{code, message, result: null, requestId}``: 10153 (target
not later than current, from the vendor's page) and, the simulator's own choices where the docs
are silent, 10001 bad parameter, 10002 unknown cluster, 10105 cluster busy, 10154 unsupported
version, 10155 no passing precheck.

Operations (fault keys, stats counters): ``ncloud.precheck``, ``ncloud.upgrade``,
``ncloud.cluster_info``, ``ncloud.cluster_status``. There is no job list: ``list_lag_s`` makes
``getClusterStatus`` and ``getClusterInfoList`` keep showing the state before an upgrade younger
than it (status ``running``, brokers at the old version). No answer carries a timestamp, so
``clock_skew_s`` shows only in the ``Date`` header.
"""

from __future__ import annotations

import hmac
import json
import time
import uuid
from typing import Any

from aiohttp import web

from shared.clouds.ncloud import PREFIXES, VERSION_NOT_LATER, signature_v2
from simulator.core import SimJob, SimState, SimTarget, json_error, route

__all__ = ["SERVICE", "error_body", "register"]

SERVICE = "ncloud"
KIND = "ncloud-kafka"
MAX_SKEW_MS = 5 * 60 * 1000
BAD_PARAM, NO_CLUSTER, BUSY, UNSUPPORTED, NO_PRECHECK = 10001, 10002, 10105, 10154, 10155
_GATEWAY = {
    401: ("200", "Authentication Failed"),
    429: ("400", "Quota Exceed"),
    500: ("500", "Internal Server Error"),
    503: ("503", "Endpoint Error"),
    504: ("504", "Endpoint Timeout"),
}


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    """The API gateway's error shape (used for auth failures and injected faults)."""
    gw_code, gw_message = _GATEWAY.get(status, (str(status), message))
    return {"error": {"errorCode": gw_code, "message": gw_message, "details": message}}


def _answer(code: int, message: str, result: Any, status: int = 200) -> web.Response:
    body = {"code": code, "message": message, "result": result, "requestId": str(uuid.uuid4())}
    return web.json_response(body, status=status)


def _refuse(code: int, message: str) -> web.Response:
    return _answer(code, message, None, status=400)


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
    expected = signature_v2(request.method, request.raw_path, ts, ak, state.creds.ncp_sk)
    return None if hmac.compare_digest(sig, expected) else "signature does not match"


def _version_name(code: int | str) -> str:
    digits = str(code)
    return ".".join(digits[:3]) if len(digits) >= 3 else digits


def register(app: web.Application, state: SimState) -> None:
    """Add the Kafka (DSS) routes under each region prefix."""
    state.error_bodies[SERVICE] = error_body
    prechecked: dict[str, tuple[int, int]] = {}

    def brokers(target: SimTarget) -> int:
        return max(1, int(target.extra.get("brokers", 3)))

    def last_job(target: SimTarget) -> SimJob | None:
        jobs = [j for j in state.jobs_of(target.id, visible=True) if j.service == SERVICE]
        return jobs[-1] if jobs else None

    def cluster_status(target: SimTarget) -> dict[str, Any]:
        now = state.clock.now()
        n = brokers(target)
        job = last_job(target)
        outcome = job.outcome(now) if job else "succeeded"
        nodes = []
        for i in range(n):
            status, code = "running", target.version
            if job is not None and outcome != "succeeded":
                done = job.fraction(now) * n  # brokers finished so far (fractional)
                if i < int(done):
                    code = job.to_version
                elif i == int(done):
                    status = "error" if outcome == "failed" else "upgrading"
            nodes.append(
                {
                    "nodeNo": 1000 + i,
                    "hostName": f"{target.name}-broker-{i + 1}",
                    "status": status,
                    "kafkaVersionCode": int(code),
                }
            )
        result: dict[str, Any] = {
            "serviceGroupInstanceNo": int(target.id),
            "status": {"running": "upgrading", "failed": "error", "succeeded": "running"}[outcome],
            "brokerNodeList": nodes,
        }
        if job is not None and outcome == "failed":
            result["failReason"] = job.fail_reason
        return result

    async def parse(request: web.Request) -> tuple[dict[str, Any] | None, SimTarget | web.Response]:
        """(body, target) of an upgrade-style request, or (None, the refusal)."""
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return None, _refuse(BAD_PARAM, "request body is not JSON")
        if not isinstance(body, dict):
            return None, _refuse(BAD_PARAM, "request body must be a JSON object")
        for name in ("serviceGroupInstanceNo", "upgradeKafkaVersionCode", "upgradeConfigGroupNo"):
            value = body.get(name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                return None, _refuse(BAD_PARAM, f"{name} is required and must be a positive integer")
        target = state.by_id(KIND, str(body["serviceGroupInstanceNo"]))
        if target is None:
            return None, _refuse(NO_CLUSTER, f"cluster {body['serviceGroupInstanceNo']} does not exist")
        return body, target

    def check(target: SimTarget, code: int) -> web.Response | None:
        if state.active_job(target) is not None:
            return _refuse(BUSY, "the cluster is being changed; try again when the current operation ends.")
        if code <= int(target.version):
            return _refuse(
                VERSION_NOT_LATER, "the updated Kafka version must be later than the current cluster version."
            )
        if str(code) not in target.versions:
            return _refuse(UNSUPPORTED, f"Kafka version code {code} is not supported for this cluster.")
        return None

    def guarded(endpoint: str, handler: Any) -> Any:
        async def run(request: web.Request) -> web.Response:
            problem = _auth_problem(state, request)
            if problem is not None:
                state.stats.auth_failures[SERVICE] += 1
                return json_error(401, error_body(401, "200", problem))
            return await handler(request, endpoint)

        return run

    async def precheck(request: web.Request, endpoint: str) -> web.Response:
        body, target = await parse(request)
        if body is None:
            state.count(endpoint, "?")
            return target  # type: ignore[return-value]
        assert isinstance(target, SimTarget)
        state.count(endpoint, target.id)
        refusal = check(target, body["upgradeKafkaVersionCode"])
        if refusal is not None:
            return refusal
        prechecked[target.id] = (body["upgradeKafkaVersionCode"], body["upgradeConfigGroupNo"])
        return _answer(0, "SUCCESS", True)

    async def upgrade(request: web.Request, endpoint: str) -> web.Response:
        body, target = await parse(request)
        if body is None:
            state.count(endpoint, "?")
            return target  # type: ignore[return-value]
        assert isinstance(target, SimTarget)
        state.count(endpoint, target.id)
        code = body["upgradeKafkaVersionCode"]
        refusal = check(target, code)
        if refusal is not None:
            return refusal
        if prechecked.get(target.id) != (code, body["upgradeConfigGroupNo"]):
            return _refuse(NO_PRECHECK, "run rollingUpgradePreCheck for this version and config group first.")
        del prechecked[target.id]
        n = brokers(target)
        failing = min(1, n - 1)  # the second broker, or the only one
        state.start_job(
            target,
            str(code),
            service=SERVICE,
            job_id=f"ncloud-{target.id}-{state.new_id()}",
            fail_reason=f"broker {failing + 1} did not rejoin the cluster after restart",
            fail_at=(failing + 0.5) / n,
            extra={"configGroupNo": body["upgradeConfigGroupNo"]},
        )
        target.extra["configGroupNo"] = body["upgradeConfigGroupNo"]
        return _answer(0, "SUCCESS", True)

    def by_path(request: web.Request, endpoint: str) -> SimTarget | web.Response:
        no = request.match_info["no"]
        state.count(endpoint, no)
        target = state.by_id(KIND, no)
        return target if target is not None else _refuse(NO_CLUSTER, f"cluster {no} does not exist")

    async def info(request: web.Request, endpoint: str) -> web.Response:
        target = by_path(request, endpoint)
        if isinstance(target, web.Response):
            return target
        status = cluster_status(target)["status"]
        return _answer(
            0,
            "SUCCESS",
            {
                "serviceGroupInstanceNo": int(target.id),
                "clusterName": target.name,
                "kafkaVersionCode": int(target.version),
                "kafkaVersionName": _version_name(target.version),
                "configGroupNo": target.extra.get("configGroupNo"),
                "brokerNodeCount": brokers(target),
                "status": status,
            },
        )

    async def status(request: web.Request, endpoint: str) -> web.Response:
        target = by_path(request, endpoint)
        if isinstance(target, web.Response):
            return target
        return _answer(0, "SUCCESS", cluster_status(target))

    for prefix in PREFIXES.values():
        route(
            app,
            state,
            SERVICE,
            "POST",
            f"{prefix}/cluster/rollingUpgradePreCheck",
            guarded("ncloud.precheck", precheck),
            op="ncloud.precheck",
        )
        route(
            app,
            state,
            SERVICE,
            "POST",
            f"{prefix}/cluster/rollingUpgrade",
            guarded("ncloud.upgrade", upgrade),
            op="ncloud.upgrade",
        )
        route(
            app,
            state,
            SERVICE,
            "POST",
            f"{prefix}/cluster/getClusterInfoList/{{no}}",
            guarded("ncloud.cluster_info", info),
            op="ncloud.cluster_info",
        )
        route(
            app,
            state,
            SERVICE,
            "GET",
            f"{prefix}/cluster/getClusterStatus/{{no}}",
            guarded("ncloud.cluster_status", status),
            op="ncloud.cluster_status",
        )
