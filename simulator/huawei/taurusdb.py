"""Simulated TaurusDB StarRocks: kernel upgrade (seed 000), the job query, the instance query.

The upgrade goes to the target's newest version (StarRocks' API takes no version). A target may
carry ``extra["instance_id"]`` (the TaurusDB instance id): the upgrade path accepts either id,
because which one the real API takes is unconfirmed.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from simulator.core import SimJob, SimState, SimTarget, route
from simulator.huawei._common import authed, dbs_error, fault_body, huawei_sim, iso, read_json

__all__ = ["register"]

KIND = "starrocks"
SERVICE = "taurusdb"
_FLAGS = {True: True, False: False, "true": True, "false": False}


def _find(state: SimState, any_id: str) -> SimTarget | None:
    target = state.by_id(KIND, any_id)
    if target is not None:
        return target
    for t in state.targets.values():
        if t.kind == KIND and t.extra.get("instance_id") == any_id:
            state.refresh(t)
            return t
    return None


def _job_view(state: SimState, job: SimJob, target: SimTarget) -> dict[str, Any]:
    now = state.clock.now()
    outcome = job.outcome(now)
    frac = job.fraction(now)
    if outcome == "running":
        status = "Pending" if job.extra.get("delay") and frac < 0.1 else "Running"
    else:
        status = "Completed" if outcome == "succeeded" else "Failed"
    return {
        "id": job.id,
        "name": "UpgradeStarRocksKernelVersion",
        "status": status,
        "created": iso(job.started),
        "ended": iso(job.ends) if outcome != "running" else None,
        "process": f"{int(frac * 100)}%"
        if status == "Running"
        else ("100%" if status == "Completed" else None),
        "instance": {"id": target.id, "name": target.name},
        "fail_reason": job.fail_reason if status == "Failed" else None,
    }


def register(app: web.Application, state: SimState) -> None:
    sim = huawei_sim(state)
    state.error_bodies[SERVICE] = fault_body(
        lambda status, code, msg: {"error_code": "DBS.200001" if status >= 500 else code, "error_msg": msg}
    )

    async def upgrade(request: web.Request) -> web.Response:
        target = _find(state, request.match_info["instance_id"])
        if target is None:
            return dbs_error(400, "DBS.200022", "Instance not found.")
        state.count("taurusdb.upgrade", target.id)
        doc = await read_json(request)
        if doc is None:
            doc = {}
        if not isinstance(doc, dict) or set(doc) - {"delay", "is_skip_validate"}:
            return dbs_error(400, "DBS.200001", "Invalid parameter: unknown field in the request body.")
        flags = {}
        for key in ("delay", "is_skip_validate"):
            value = doc.get(key, "false")
            if not isinstance(value, bool | str) or value not in _FLAGS:
                return dbs_error(400, "DBS.200001", f"Invalid parameter: {key} must be true or false.")
            flags[key] = _FLAGS[value]
        if state.active_job(target) is not None:
            return dbs_error(409, "DBS.200019", "Another operation is being performed on the instance.")
        if not target.versions or target.version == target.versions[-1]:
            return dbs_error(400, "DBS.200001", "The instance is already running the latest kernel version.")
        job_id = sim.uid(state)
        state.start_job(
            target, target.versions[-1], service=SERVICE, job_id=job_id, extra={"delay": flags["delay"]}
        )
        sim.job_born[job_id] = time.time()
        return web.json_response({"job_id": job_id})

    async def job(request: web.Request) -> web.Response:
        job_id = request.query.get("id")
        if not job_id:
            return dbs_error(400, "DBS.200001", "Invalid parameter: id is required.")
        found = state.jobs.get(job_id)
        born = sim.job_born.get(job_id)
        if (
            not isinstance(found, SimJob)
            or found.service != SERVICE
            or (born is not None and time.time() - born < sim.fresh_job_404_s)
        ):
            return dbs_error(404, "DBS.200404", "The job does not exist.")
        target = state.targets[found.target_id]
        state.refresh(target)
        state.count("taurusdb.jobs", target.id)
        return web.json_response({"job": _job_view(state, found, target)})

    async def instance(request: web.Request) -> web.Response:
        target = _find(state, request.match_info["starrocks_instance_id"])
        if target is None:
            return dbs_error(404, "DBS.200022", "Instance not found.")
        state.count("taurusdb.instance", target.id)
        busy = state.active_job(target) is not None
        body = {
            "id": target.id,
            "name": target.name,
            "status": "upgrading" if busy else "normal",
            "data_store_type": "starrocks",
            "data_store_version": target.version,
            "new_version_available": bool(target.versions) and target.version != target.versions[-1],
        }
        return web.json_response({"instances": [body]})

    base = "/v3/{project_id}"
    route(
        app,
        state,
        SERVICE,
        "POST",
        base + "/instances/{instance_id}/starrocks/db-upgrade",
        authed(state, SERVICE, upgrade),
    )
    route(app, state, SERVICE, "GET", base + "/jobs", authed(state, SERVICE, job))
    route(
        app,
        state,
        SERVICE,
        "GET",
        base + "/instances/{instance_id}/starrocks/{starrocks_instance_id}",
        authed(state, SERVICE, instance),
    )
