"""OceanBase OCP, simulated: Basic and HMAC-SHA1 auth, cluster upgrade as a task DAG.

The upgrade DAG: prepare -> check -> upgrade each zone in turn -> (post script | health check)
-> update cluster status. Subtasks move PENDING -> READY -> RUNNING -> SUCCESSFUL on the
simulated clock along their upstreams; a failing job fails the second zone's subtask. Retry
re-runs from the failed subtask; rollback marks it rolled back and leaves the task FAILED.
A second upgrade while a task runs is refused with 409. A stalled job freezes halfway, one
subtask RUNNING for ever.

Operations (fault keys, stats counters): ``ocp.upgrade``, ``ocp.get_cluster``, ``ocp.list_tasks``,
``ocp.get_task``, ``ocp.retry``, ``ocp.rollback``.

``list_lag_s``: a task younger than it is left out of ``GET /api/v2/tasks/instances`` and the
cluster query still shows ``RUNNING`` (not ``UPGRADING``) for it; ``GET /api/v2/tasks/instances/{id}``
finds it. ``clock_skew_s`` shifts ``startTime``, ``finishTime`` and the envelope's ``timestamp``
(the OCP's clock: simulated time, skewed).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import time
import uuid
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any

from aiohttp import web

from shared.clouds.oceanbase import AUTH_SCHEME, canonical_resource, hmac_authorization, string_to_sign
from simulator.core import (
    SimJob,
    SimState,
    SimTarget,
    json_error,
    lagging,
    route,
    vendor_now,
    vendor_time,
)

__all__ = ["SERVICE", "envelope", "error_body", "register"]

SERVICE = "ocp"
KIND = "oceanbase"
MAX_SKEW = 15 * 60
_DISPATCH = 0.1  # a subtask sits READY for this share of a weight unit before it runs


def _fmt(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def _iso(epoch: float) -> str:
    """A simulated time on the OCP's clock (the request's ``clock_skew_s`` added)."""
    return _fmt(vendor_time(epoch))


def envelope(data: Any, status: int = 200, *, error: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "data": data,
        "successful": error is None,
        "timestamp": _fmt(vendor_now()),
        "duration": 3,
        "status": status,
        "traceId": uuid.uuid4().hex[:16],
        "server": "upshift-sim",
    }
    if error is not None:
        body["error"] = error
    return body


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    """OCP's failure envelope: ``successful: false`` and an ``error`` object with a message."""
    name = HTTPStatus(status).name if status in HTTPStatus._value2member_map_ else str(status)
    return envelope(None, status, error={"code": code, "message": message, "status": name})


def _fail(status: int, message: str, code: str = "") -> web.Response:
    return json_error(status, error_body(status, code or str(status), message))


def _ok(data: Any) -> web.Response:
    return web.json_response(envelope(data))


# -- auth ----------------------------------------------------------------------------------------


def _auth_problem(state: SimState, request: web.Request, body: bytes) -> str | None:
    """Why the request is not authenticated, or None. Dates are checked against the real clock."""
    creds = state.creds
    header = request.headers.get("Authorization", "")
    if not header:
        return "Authorization header is missing"
    if header.startswith("Basic "):
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "malformed Basic credentials"
        ok = hmac.compare_digest(user, creds.ocp_user) & hmac.compare_digest(password, creds.ocp_password)
        return None if ok else "bad username or password"
    if header.startswith(AUTH_SCHEME + " "):
        date = request.headers.get("Date")
        if not date:
            return "Date header is missing"
        try:
            signed_at = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            return "Date header is not an RFC 1123 date"
        if abs(time.time() - signed_at) > MAX_SKEW:
            return "request Date is more than 15 minutes from server time"
        ak = header[len(AUTH_SCHEME) + 1 :].partition(":")[0]
        if ak != creds.ocp_ak:
            return "unknown access key"
        to_sign = string_to_sign(
            request.method,
            body,
            request.headers.get("Content-Type", ""),
            date,
            request.host,
            request.headers,
            canonical_resource(request.rel_url.raw_path, request.rel_url.raw_query_string),
        )
        expected = hmac_authorization(creds.ocp_ak, creds.ocp_sk, to_sign)
        return None if hmac.compare_digest(header, expected) else "signature does not match"
    return "unsupported Authorization scheme"


# -- the task DAG --------------------------------------------------------------------------------


def _steps(zones: list[str]) -> list[tuple[str, float, list[int]]]:
    """(name, weight, upstream indexes) of the upgrade DAG for ``zones`` in order."""
    steps: list[tuple[str, float, list[int]]] = [
        ("Prepare upgrade cluster", 1, []),
        ("Check cluster status", 1, [0]),
    ]
    for zone in zones:
        steps.append((f"Upgrade zone {zone}", 3, [len(steps) - 1]))
    last_zone = len(steps) - 1
    steps.append(("Run upgrade post script", 1, [last_zone]))
    steps.append(("Check cluster health", 1, [last_zone]))
    steps.append(("Update OB cluster status", 1, [len(steps) - 2, len(steps) - 1]))
    return steps


def _offsets(steps: list[tuple[str, float, list[int]]]) -> list[tuple[float, float]]:
    """(ready, end) of each step in weight units from the task start (steps are topological)."""
    out: list[tuple[float, float]] = []
    for _, weight, ups in steps:
        ready = max((out[u][1] for u in ups), default=0.0)
        out.append((ready, ready + weight))
    return out


def _fail_step(steps: list[tuple[str, float, list[int]]]) -> int:
    zones = [i for i, s in enumerate(steps) if s[0].startswith("Upgrade zone ")]
    return zones[1] if len(zones) > 1 else zones[0]


def _task_view(state: SimState, job: SimJob, *, key: str = "subtasks") -> dict[str, Any]:
    now = state.clock.now()
    x = job.extra
    steps, offsets = x["steps"], _offsets(x["steps"])
    unit = job.duration / offsets[-1][1]
    fail_step = _fail_step(steps)
    outcome = job.outcome(now)
    t = job.progress_time(now)  # after a failure (or in a stall) nothing moves any more
    downstreams: dict[int, list[int]] = {i: [] for i in range(len(steps))}
    for i, (_, _, ups) in enumerate(steps):
        for u in ups:
            downstreams[u].append(i)
    subtasks = []
    for i, (name, _, ups) in enumerate(steps):
        ready, end = (job.started + o * unit for o in offsets[i])
        start = ready + _DISPATCH * unit
        if job.fail and i == fail_step and outcome == "failed":
            status = "FAILED"
        elif end <= t:
            status = "SUCCESSFUL"
        elif start <= t:
            status = "RUNNING"
        elif ready <= t:
            status = "READY"
        else:
            status = "PENDING"
        if any(subtasks[u]["status"] != "SUCCESSFUL" for u in ups):
            status = "PENDING"  # downstream of a failed (or unfinished) subtask never starts
        sub_id = job_id_int(job) * 100 + i
        subtasks.append(
            {
                "id": sub_id,
                "name": name,
                "description": name,
                "status": status,
                "operation": x["operations"].get(str(i), "EXECUTE"),
                "upstreams": [job_id_int(job) * 100 + u for u in ups],
                "downstreams": [job_id_int(job) * 100 + d for d in downstreams[i]],
            }
        )
    task = {
        "id": job_id_int(job),
        "name": "Upgrade OB cluster",
        "status": {"running": "RUNNING", "failed": "FAILED", "succeeded": "SUCCESSFUL"}[outcome],
        "cluster": x["cluster"],
        "creator": {"id": 100, "name": x["creator"]},
        "startTime": _iso(x["created"]),
        "context": f"Context(stringMap={{cluster_version={job.from_version}, target_version={job.to_version}}})",
        key: subtasks,
    }
    if outcome != "running":
        task["finishTime"] = _iso(job.ends)
    if outcome == "failed":
        task["errorMessage"] = job.fail_reason
    return task


def job_id_int(job: SimJob) -> int:
    return int(job.id.removeprefix("ocp-"))


# -- request handling ----------------------------------------------------------------------------


def _allowed_versions(target: SimTarget) -> list[str]:
    """Versions newer than the current one (``versions`` is ordered old -> new)."""
    if target.version in target.versions:
        return target.versions[target.versions.index(target.version) + 1 :]
    return list(target.versions)


def _dest_version(target: SimTarget, body: dict[str, Any]) -> tuple[str | None, str]:
    """The version asked for, or (None, why not)."""
    if "rpmFileName" in body:
        rpm = body["rpmFileName"]
        if not isinstance(rpm, str) or not rpm.endswith(".rpm"):
            return None, "rpmFileName must be an .rpm package name"
        known = sorted((v for v in target.versions + [target.version] if v in rpm), key=len, reverse=True)
        if not known:
            return None, f"software package {rpm} does not exist"
        version = known[0]
    else:
        version = body.get("destVersion")
        if not isinstance(version, str) or not version:
            return None, "destVersion is required (or rpmFileName on older OCP)"
        if body.get("upgradeMode", "ROLLING") not in ("ROLLING", "STOP_SERVICE"):
            return None, "upgradeMode must be ROLLING or STOP_SERVICE"
        if not body.get("operatingSystem"):
            return None, "operatingSystem is required with destVersion"
        if version not in target.versions and version != target.version:
            return None, f"no software package for version {version}"
    if version not in _allowed_versions(target):
        return None, f"target version {version} must be later than the cluster version {target.version}"
    return version, ""


def register(app: web.Application, state: SimState) -> None:
    """Add the OCP routes to ``app``."""
    state.error_bodies[SERVICE] = error_body

    def cluster_view(target: SimTarget) -> dict[str, Any]:
        busy = state.active_job(target, visible=True) is not None
        return {
            "id": int(target.id),
            "name": target.name,
            "obClusterId": target.extra.get("obClusterId", 1),
            "obVersion": target.version,
            "status": "UPGRADING" if busy else "RUNNING",
            "type": "PRIMARY",
            "zones": [{"name": z} for z in target.extra.get("zones", ["zone1", "zone2", "zone3"])],
        }

    async def authed(request: web.Request) -> tuple[bytes, web.Response | None]:
        body = await request.read()
        problem = _auth_problem(state, request, body)
        if problem is not None:
            state.stats.auth_failures[SERVICE] += 1
            return body, _fail(401, f"Unauthorized: {problem}", "401")
        return body, None

    def target_or_404(cluster_id: str) -> SimTarget | web.Response:
        target = state.by_id(KIND, cluster_id)
        return target if target is not None else _fail(404, f"OB cluster not found: id={cluster_id}", "404")

    def task_or_404(task_id: str) -> SimJob | web.Response:
        job = state.jobs.get(f"ocp-{task_id}")
        if not isinstance(job, SimJob):
            return _fail(404, f"task instance not found: id={task_id}", "404")
        state.refresh(state.targets[job.target_id])
        return job

    async def upgrade(request: web.Request) -> web.Response:
        raw, denied = await authed(request)
        if denied:
            return denied
        cluster_id = request.match_info["id"]
        state.count("ocp.upgrade", cluster_id)
        target = target_or_404(cluster_id)
        if isinstance(target, web.Response):
            return target
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return _fail(400, "request body is not JSON")
        if not isinstance(body, dict):
            return _fail(400, "request body must be a JSON object")
        if state.active_job(target) is not None:
            return _fail(
                409, f"OB cluster {target.name} is in UPGRADING status, operation is not allowed", "409"
            )
        version, why = _dest_version(target, body)
        if version is None:
            return _fail(400, f"Invalid argument: {why}")
        zones = body.get("zoneOrder") or target.extra.get("zones", ["zone1", "zone2", "zone3"])
        steps = _steps([str(z) for z in zones])
        offsets = _offsets(steps)
        job = state.start_job(
            target,
            version,
            service=SERVICE,
            job_id=f"ocp-{100000 + int(state.new_id())}",
            fail_reason=f"Upgrade zone failed: observer on {steps[_fail_step(steps)][0][13:]} did not start",
            fail_at=offsets[_fail_step(steps)][1] / offsets[-1][1],
            extra={
                "steps": steps,
                "operations": {},
                "cluster": {
                    "id": int(target.id),
                    "name": target.name,
                    "obClusterId": target.extra.get("obClusterId", 1),
                },
                "creator": state.creds.ocp_user,
                "created": state.clock.now(),
                "rolled_back": False,
            },
        )
        return _ok(_task_view(state, job, key="tasks"))

    async def get_task(request: web.Request) -> web.Response:
        _, denied = await authed(request)
        if denied:
            return denied
        job = task_or_404(request.match_info["id"])
        if isinstance(job, web.Response):
            return job
        state.count("ocp.get_task", job.target_id)
        return _ok(_task_view(state, job))

    async def list_tasks(request: web.Request) -> web.Response:
        _, denied = await authed(request)
        if denied:
            return denied
        cluster_id = request.query.get("clusterId", "")
        status = request.query.get("status")
        state.count("ocp.list_tasks", cluster_id or "*")
        try:
            page, size = int(request.query.get("page", "1")), int(request.query.get("size", "10"))
        except ValueError:
            return _fail(400, "page and size must be integers")
        jobs = [
            j
            for j in state.jobs.values()
            if isinstance(j, SimJob) and j.service == SERVICE and not lagging(j.created_real)
        ]
        if cluster_id:
            jobs = [j for j in jobs if j.target_id == cluster_id]
        views = [_task_view(state, j) for j in sorted(jobs, key=lambda j: j.created_real, reverse=True)]
        if status:
            views = [v for v in views if v["status"] == status]
        chunk = views[(page - 1) * size : page * size]
        total_pages = (len(views) + size - 1) // size if size > 0 else 0
        return _ok(
            {
                "contents": chunk,
                "page": {
                    "number": page,
                    "size": size,
                    "totalElements": len(views),
                    "totalPages": total_pages,
                },
            }
        )

    async def retry(request: web.Request) -> web.Response:
        _, denied = await authed(request)
        if denied:
            return denied
        job = task_or_404(request.match_info["id"])
        if isinstance(job, web.Response):
            return job
        state.count("ocp.retry", job.target_id)
        now = state.clock.now()
        if job.outcome(now) != "failed" or job.extra["rolled_back"]:
            return _fail(400, f"task {request.match_info['id']} is not in FAILED status, cannot retry")
        steps = job.extra["steps"]
        step = _fail_step(steps)
        offsets = _offsets(steps)
        unit = job.duration / offsets[-1][1]
        target = state.targets[job.target_id]
        # Re-run from the failed subtask: shift the timeline so that subtask becomes READY now.
        job.started = now - offsets[step][0] * unit
        job.fail, job.stall = state.job_fate(target)
        job.extra["operations"][str(step)] = "RETRY"
        return _ok(_task_view(state, job))

    async def rollback(request: web.Request) -> web.Response:
        _, denied = await authed(request)
        if denied:
            return denied
        job = task_or_404(request.match_info["id"])
        if isinstance(job, web.Response):
            return job
        state.count("ocp.rollback", job.target_id)
        if job.outcome(state.clock.now()) != "failed":
            return _fail(400, f"task {request.match_info['id']} is not in FAILED status, cannot rollback")
        job.extra["rolled_back"] = True
        job.extra["operations"][str(_fail_step(job.extra["steps"]))] = "ROLLBACK"
        return _ok(_task_view(state, job))

    async def get_cluster(request: web.Request) -> web.Response:
        _, denied = await authed(request)
        if denied:
            return denied
        cluster_id = request.match_info["id"]
        state.count("ocp.get_cluster", cluster_id)
        target = target_or_404(cluster_id)
        if isinstance(target, web.Response):
            return target
        return _ok(cluster_view(target))

    def add(method: str, path: str, handler: Any, op: str) -> None:
        route(app, state, SERVICE, method, path, handler, op=op)

    add("POST", "/api/v2/ob/clusters/{id}/upgrade", upgrade, "ocp.upgrade")
    add("GET", "/api/v2/ob/clusters/{id}", get_cluster, "ocp.get_cluster")
    add("GET", "/api/v2/tasks/instances", list_tasks, "ocp.list_tasks")
    add("GET", "/api/v2/tasks/instances/{id}", get_task, "ocp.get_task")
    add("POST", "/api/v2/tasks/instances/{id}/retry", retry, "ocp.retry")
    add("POST", "/api/v2/tasks/instances/{id}/rollback", rollback, "ocp.rollback")
