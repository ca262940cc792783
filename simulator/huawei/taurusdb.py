"""Simulated TaurusDB StarRocks: kernel upgrade (seed 000), the job query, the job list, the instance.

The upgrade goes to the target's newest version (StarRocks' API takes no version). A target's
``id`` is its StarRocks instance id (suffix ``in17``); it may carry ``extra["instance_id"]``, the
TaurusDB instance id (suffix ``in07``). The upgrade path accepts either id, because which one the
real API takes is unconfirmed (vendor-facts §4.1). The instance query
``GET .../instances/{instance_id}/starrocks/{starrocks_instance_id}`` wants the StarRocks id second;
the first must be the TaurusDB id when the target knows one (any id otherwise).

Routes and their operations (fault keys, stats counters):

- ``POST /v3/{p}/instances/{id}/starrocks/db-upgrade``  ``taurusdb.upgrade``  -> ``{job_id}``
- ``GET  /v3/{p}/jobs?id=``                             ``taurusdb.jobs``     -> ``{job}``
- ``GET  /v3/{p}/immediate-jobs``                       ``taurusdb.jobs_list`` -> ``{jobs, total_count,
  action_names}`` (vendor-facts §4.5: no instance filter, the caller filters)
- ``GET  /v3/{p}/instances/{in07}/starrocks/{in17}``    ``taurusdb.instance`` -> ``{instances: [...]}``
  with ``actions[]`` naming the running upgrade job (§4.3)

``list_lag_s`` (a new job is not visible everywhere at once) affects, for a job younger than it:
``GET /jobs?id=`` answers 404 DBS.200404 (the docs: "a new job id becomes queryable only after a
few seconds"; ``HuaweiSim.fresh_job_404_s`` does the same, whichever is longer wins);
``immediate-jobs`` leaves it out; the instance view shows the pre-upgrade state (``status``
``normal``, no ``actions``). ``clock_skew_s`` shifts every timestamp in these answers.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from simulator.core import SimJob, SimState, SimTarget, lagging, route, vendor_time
from simulator.huawei._common import authed, dbs_error, fault_body, huawei_sim, iso, read_json

__all__ = ["ACTION_NAMES", "JOB_NAME", "register"]

KIND = "starrocks"
SERVICE = "taurusdb"
_FLAGS = {True: True, False: False, "true": True, "false": False}
#: The job name of a StarRocks kernel upgrade. The real name is UNCONFIRMED (vendor-facts §4.5):
#: this follows the style of the documented names (e.g. "UpgradeGaussDBforMySQLDatabase").
#: Clients should take it from ``action_names`` rather than hard-code it.
JOB_NAME = "UpgradeStarRocksKernelVersion"
#: ``action_names`` of the job list: only the jobs this simulator produces.
ACTION_NAMES = [JOB_NAME]
#: Job statuses the docs list (the simulator produces the first four).
JOB_STATUSES = ("Pending", "Running", "Completed", "Failed", "Unauthorized", "Canceled")
LIMITS = (10, 20, 50)
#: "Only jobs from the last month can be queried" (vendor-facts §4.4): simulated seconds.
JOB_LIST_MAX_AGE = 30 * 86400.0


def _find(state: SimState, any_id: str) -> SimTarget | None:
    target = state.by_id(KIND, any_id)
    if target is not None:
        return target
    for t in state.targets.values():
        if t.kind == KIND and t.extra.get("instance_id") == any_id:
            state.refresh(t)
            return t
    return None


def _offset_time(epoch: float) -> str:
    """The job list's format, ``yyyy-mm-ddThh:mm:ss+0000`` (offset, not ``Z``), skewed."""
    return datetime.fromtimestamp(vendor_time(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _parse_time(value: str) -> float | None:
    """``yyyy-mm-ddThh:mm:ssZ`` where Z is an offset such as +0100 (``Z`` itself accepted too)."""
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return None


def _status(state: SimState, job: SimJob) -> tuple[str, float]:
    now = state.clock.now()
    outcome = job.outcome(now)
    frac = job.fraction(now)
    if outcome == "running":
        status = "Pending" if job.extra.get("delay") and frac < 0.1 else "Running"
    else:
        status = "Completed" if outcome == "succeeded" else "Failed"
    return status, frac


def _process(status: str, frac: float) -> str | None:
    if status == "Running":
        return f"{int(frac * 100)}%"
    return "100%" if status == "Completed" else None


def _job_view(state: SimState, job: SimJob, target: SimTarget) -> dict[str, Any]:
    status, frac = _status(state, job)
    return {
        "id": job.id,
        "name": JOB_NAME,
        "status": status,
        "created": iso(job.extra.get("created", job.started)),
        "ended": iso(job.ends) if status in ("Completed", "Failed") else None,
        "process": _process(status, frac),
        "instance": {"id": target.id, "name": target.name},
        "fail_reason": job.fail_reason if status == "Failed" else None,
    }


def _list_entry(state: SimState, job: SimJob, target: SimTarget) -> dict[str, Any]:
    status, frac = _status(state, job)
    return {
        # Which id a StarRocks job is listed under (in07 or in17) is unconfirmed: the StarRocks
        # one, as in the job query's ``instance.id``.
        "instance_id": target.id,
        "instance_name": target.name,
        "job_id": job.id,
        "job_name": JOB_NAME,
        "status": status,
        "process": _process(status, frac),
        "created_time": _offset_time(job.extra.get("created", job.started)),
        "ended_time": _offset_time(job.ends) if status in ("Completed", "Failed") else None,
        "fail_reason": job.fail_reason if status == "Failed" else None,
        "show_detail": False,
    }


def register(app: web.Application, state: SimState) -> None:
    sim = huawei_sim(state)
    state.error_bodies[SERVICE] = fault_body(
        lambda status, code, msg: {"error_code": "DBS.200001" if status >= 500 else code, "error_msg": msg}
    )

    def add(method: str, path: str, handler: Any, op: str) -> None:
        route(app, state, SERVICE, method, path, authed(state, SERVICE, handler), op=op)

    def invalid(message: str) -> web.Response:
        return dbs_error(400, "DBS.200001", f"Invalid parameter: {message}")

    async def upgrade(request: web.Request) -> web.Response:
        target = _find(state, request.match_info["instance_id"])
        if target is None:
            return dbs_error(400, "DBS.200022", "Instance not found.")
        state.count("taurusdb.upgrade", target.id)
        doc = await read_json(request)
        if doc is None:
            doc = {}
        if not isinstance(doc, dict) or set(doc) - {"delay", "is_skip_validate"}:
            return invalid("unknown field in the request body.")
        flags = {}
        for key in ("delay", "is_skip_validate"):
            value = doc.get(key, "false")
            if not isinstance(value, bool | str) or value not in _FLAGS:
                return invalid(f"{key} must be true or false.")
            flags[key] = _FLAGS[value]
        if state.active_job(target) is not None:
            return dbs_error(409, "DBS.200019", "Another operation is being performed on the instance.")
        if not target.versions or target.version == target.versions[-1]:
            return dbs_error(400, "DBS.200001", "The instance is already running the latest kernel version.")
        job_id = sim.uid(state)
        state.start_job(
            target,
            target.versions[-1],
            service=SERVICE,
            job_id=job_id,
            extra={
                "delay": flags["delay"],
                "created": state.clock.now(),
                "action_id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"upshift-sim/action/{job_id}")),
            },
        )
        return web.json_response({"job_id": job_id})

    def too_fresh(job: SimJob) -> bool:
        return lagging(job.created_real) or time.monotonic() - job.created_real < sim.fresh_job_404_s

    async def job(request: web.Request) -> web.Response:
        job_id = request.query.get("id")
        if not job_id:
            return invalid("id is required.")
        found = state.jobs.get(job_id)
        if not isinstance(found, SimJob) or found.service != SERVICE or too_fresh(found):
            return dbs_error(404, "DBS.200404", "The job does not exist.")
        target = state.targets[found.target_id]
        state.refresh(target)
        state.count("taurusdb.jobs", target.id)
        return web.json_response({"job": _job_view(state, found, target)})

    async def jobs_list(request: web.Request) -> web.Response:
        state.count("taurusdb.jobs_list", "*")
        query = request.query
        limit, offset = query.get("limit", "10"), query.get("offset", "1")
        if not limit.isdigit() or int(limit) not in LIMITS:
            return invalid("limit must be 10, 20 or 50.")
        if not offset.isdigit():
            return invalid("offset must be a number and not negative.")
        status = query.get("status")
        if status is not None and status not in JOB_STATUSES:
            return invalid(f"status must be one of {', '.join(JOB_STATUSES)}.")
        bounds: list[float | None] = []
        for key in ("start_time", "end_time"):
            value = query.get(key)
            parsed = None if value is None else _parse_time(value)
            if value is not None and parsed is None:
                return invalid(f"{key} must be formatted yyyy-mm-ddThh:mm:ssZ, e.g. 2024-03-01T10:41:14+0000.")
            bounds.append(parsed)
        start, end = bounds
        now = state.clock.now()
        rows = []
        jobs = [j for j in state.jobs.values() if isinstance(j, SimJob) and j.service == SERVICE]
        for j in sorted(jobs, key=lambda j: j.created_real, reverse=True):
            created = j.extra.get("created", j.started)
            if lagging(j.created_real) or now - created > JOB_LIST_MAX_AGE:
                continue
            target = state.targets[j.target_id]
            state.refresh(target)
            row = _list_entry(state, j, target)
            stamp = vendor_time(created)  # the vendor compares times on its own clock
            if (
                (status is not None and row["status"] != status)
                or (query.get("job_name") is not None and row["job_name"] != query["job_name"])
                or (query.get("job_id") is not None and row["job_id"] != query["job_id"])
                or (start is not None and stamp < start)
                or (end is not None and stamp > end)
            ):
                continue
            rows.append(row)
        # offset is read as a 1-based page number (its default is 1); whether the vendor means a
        # page or a number of rows to skip is unconfirmed.
        page = max(int(offset), 1)
        size = int(limit)
        return web.json_response(
            {
                "jobs": rows[(page - 1) * size : page * size],
                "total_count": len(rows),
                "action_names": list(ACTION_NAMES),
            }
        )

    async def instance(request: web.Request) -> web.Response:
        target = state.by_id(KIND, request.match_info["starrocks_instance_id"])
        taurus_id = target.extra.get("instance_id") if target is not None else None
        if target is None or (taurus_id is not None and request.match_info["instance_id"] != taurus_id):
            return dbs_error(404, "DBS.200022", "Instance not found.")
        state.count("taurusdb.instance", target.id)
        running = state.active_job(target, visible=True)
        now = state.clock.now()
        actions = []
        if running is not None:
            # Field names from ListStarrocksInstanceInfo; the values of action and type are guesses.
            actions.append(
                {
                    "id": running.extra.get("action_id", running.id),
                    "action": JOB_NAME,
                    "object_id": target.id,
                    "type": "instance",
                    "job_id": running.id,
                    "status": "OK_TO_RUN",
                    "created_at": iso(running.extra.get("created", running.started)),
                    "updated_at": iso(now),
                }
            )
        body = {
            "id": target.id,
            "name": target.name,
            "status": "upgrading" if running is not None else "normal",
            "data_store_type": "starrocks",
            "data_store_version": target.version,
            "new_version_available": bool(target.versions) and target.version != target.versions[-1],
            "actions": actions,
        }
        return web.json_response({"instances": [body]})

    base = "/v3/{project_id}"
    add("POST", base + "/instances/{instance_id}/starrocks/db-upgrade", upgrade, "taurusdb.upgrade")
    add("GET", base + "/jobs", job, "taurusdb.jobs")
    add("GET", base + "/immediate-jobs", jobs_list, "taurusdb.jobs_list")
    add(
        "GET",
        base + "/instances/{instance_id}/starrocks/{starrocks_instance_id}",
        instance,
        "taurusdb.instance",
    )
