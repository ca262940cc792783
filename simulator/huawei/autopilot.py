"""Simulated CCE Autopilot upgrade workflow (seed 002; vendor-facts §3.1).

A workflow is bookkeeping: its ``pointStatuses`` are read off the stage tasks started on the
cluster after it was created (the latest of each kind: pre-check, snapshot, upgrade, post-check,
all served by ``simulator.huawei.cce``), so clients drive the stages with their own calls exactly
as against the real service.

The documented state machine: ``status.phase`` Init (nothing started) -> Running (a task runs)
-> Pending (a task failed) | Success (the post-check passed); Cancel after a PATCH, which is
refused while the workflow is Running, Success or already Cancel, and while any of its tasks is
Init, Queuing or Running. ``pointStatuses[].status`` is Init | Queuing | Running | Success |
Failed; ``lineStatuses`` are the example's PreCheck -> Cluster -> PostCheck.

Creation is strict on seed 002's mandatory fields (``kind`` WorkFlowTask, ``apiVersion`` v3,
``spec.clusterID``, ``spec.targetVersion``); a second workflow while one is open is a 409.

Operations (fault keys, stats counters): ``autopilot.workflow`` (create and GET by id),
``autopilot.workflows`` (list), ``autopilot.workflow_cancel`` (PATCH); the cluster, check,
upgrade and snapshot operations are in ``simulator.huawei.cce``.

``list_lag_s``: a workflow younger than it is left out of the workflow list; a stage task or
snapshot younger than it is not (yet) in a workflow's ``pointStatuses``. The GET of a workflow by
id finds it. Conflict checks (a second workflow, cancel while a task runs) use the truth.
``clock_skew_s`` shifts every timestamp.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from simulator.core import SimState, SimTarget, lagging, route
from simulator.huawei._common import authed, cce_error, huawei_sim, iso, no_such_api, read_json
from simulator.huawei.cce import BadRequest, check_workflow, resolve_version, task_phase, timed_phase

__all__ = ["register"]

SERVICE = "autopilot"
KIND = "autopilot"
_POINTS = ("PreCheck", "Snapshot", "Cluster", "PostCheck")
_LINES = [("PreCheck", "Cluster"), ("Cluster", "PostCheck")]
_TASK_STATUS = {
    "Init": "Init",
    "Queuing": "Queuing",
    "Running": "Running",
    "Pause": "Running",
    "Success": "Success",
    "Failed": "Failed",
    "Error": "Failed",
}
#: Workflow phases that refuse a cancel (vendor-facts §3.1, "更新指定集群升级引导任务状态").
_NO_CANCEL = ("Running", "Success", "Cancel")


def register(app: web.Application, state: SimState) -> None:
    sim = huawei_sim(state)
    base = "/autopilot/v3/projects/{project_id}/clusters/{cluster_id}/operation/upgradeworkflows"

    def add(method: str, path: str, handler: Any, op: str) -> None:
        async def checked(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except BadRequest as exc:
                return cce_error(400, "CCE.01400001", f"Invalid request: {exc}")

        route(
            app,
            state,
            SERVICE,
            method,
            path,
            authed(state, SERVICE, checked, request_ids=True),
            op=f"{SERVICE}.{op}",
        )

    def target_of(request: web.Request) -> SimTarget | None:
        return state.by_id(KIND, request.match_info["cluster_id"])

    def missing(request: web.Request) -> web.Response:
        return cce_error(404, "CCE.01404001", f"Cluster {request.match_info['cluster_id']} not found")

    def shown(rec: dict[str, Any], visible: bool) -> bool:
        return not (visible and lagging(rec.get("created_real", 0.0)))

    def points(wf: dict[str, Any], visible: bool) -> list[dict[str, Any]]:
        since, cluster = wf["created"], wf["cluster"]
        found: dict[str, dict[str, Any]] = {}
        for uid, rec in sim.checks.items():
            if rec["cluster"] == cluster and rec["started"] >= since and shown(rec, visible):
                phase = timed_phase(state, rec)
                done = phase in ("Success", "Failed", "Error")
                point = {
                    "taskID": uid,
                    "status": _TASK_STATUS[phase],
                    "startTimeStamp": iso(rec["started"]),
                    "endTimeStamp": iso(rec["started"] + rec["duration"]) if done else None,
                }
                if rec["type"] == "PreCheck" and phase == "Success":
                    point["expireTimeStamp"] = iso(rec["started"] + rec["duration"] + 24 * 3600.0)
                found[rec["type"]] = point
        for uid, rec in sim.snapshots.items():
            if rec["cluster"] == cluster and rec["started"] >= since and shown(rec, visible):
                phase = timed_phase(state, rec)
                found["Snapshot"] = {
                    "taskID": uid,
                    "status": _TASK_STATUS[phase],
                    "startTimeStamp": iso(rec["started"]),
                    "endTimeStamp": iso(rec["started"] + rec["duration"])
                    if phase in ("Success", "Failed")
                    else None,
                }
        for job in state.jobs_of(cluster, visible=visible):
            if job.service == SERVICE and job.extra.get("created", job.started) >= since:
                phase, _ = task_phase(state, job)
                found["Cluster"] = {
                    "taskID": job.id,
                    "status": _TASK_STATUS[phase],
                    "startTimeStamp": iso(job.extra.get("created", job.started)),
                    "endTimeStamp": iso(job.ends) if phase in ("Success", "Failed") else None,
                }
        return [
            {"taskType": t, **{k: v for k, v in found.get(t, {}).items() if v is not None}} for t in _POINTS
        ]

    def view(uid: str, *, visible: bool = True) -> dict[str, Any]:
        """The workflow as answered (``visible``: as ``list_lag_s`` lets it be seen) or, for
        conflict checks, as it truly is."""
        wf = sim.workflows[uid]
        pts = points(wf, visible)
        statuses = {p["taskType"]: p.get("status") for p in pts}
        if wf["cancelled"]:
            phase = "Cancel"
        elif statuses["PostCheck"] == "Success":
            phase = "Success"
        elif "Failed" in statuses.values():
            phase = "Pending"
        elif any(s in ("Init", "Queuing", "Running") for s in statuses.values()):
            phase = "Running"
        else:
            phase = "Init"
        spec = {"clusterID": wf["cluster"], "targetVersion": wf["target"]}
        if wf["from"]:
            spec["clusterVersion"] = wf["from"]
        return {
            "kind": "WorkFlowTask",
            "apiVersion": "v3",
            "metadata": {
                "uid": uid,
                "creationTimestamp": iso(wf["created"]),
                "updateTimestamp": iso(state.clock.now()),
            },
            "spec": spec,
            "status": {
                "phase": phase,
                "pointStatuses": pts,
                "lineStatuses": [
                    {"startPoint": {"taskType": a}, "endPoint": {"taskType": b}} for a, b in _LINES
                ],
            },
        }

    async def create(request: web.Request) -> web.Response:
        target = target_of(request)
        if target is None:
            return missing(request)
        state.count("autopilot.workflow", target.id)
        spec = check_workflow(await read_json(request))
        resolved = resolve_version(target, spec["targetVersion"])
        if resolved is None:
            return cce_error(400, "CCE.01400001", f"Unsupported target version {spec['targetVersion']}")
        for uid, wf in sim.workflows.items():
            if wf["cluster"] != target.id:
                continue
            if view(uid, visible=False)["status"]["phase"] not in ("Success", "Cancel"):
                return cce_error(409, "CCE.01409001", f"Upgrade workflow {uid} is already in progress")
        uid = sim.uid(state)
        sim.workflows[uid] = {
            "cluster": target.id,
            "from": spec.get("clusterVersion") or target.version,
            "target": resolved,
            "created": state.clock.now(),
            "cancelled": False,
            "created_real": time.monotonic(),
        }
        return web.json_response(view(uid), status=201)

    def workflow_of(request: web.Request, target: SimTarget) -> str | None:
        uid = request.match_info["workflow_id"]
        wf = sim.workflows.get(uid)
        return uid if wf is not None and wf["cluster"] == target.id else None

    async def get(request: web.Request) -> web.Response:
        target = target_of(request)
        if target is None:
            return missing(request)
        uid = workflow_of(request, target)
        if uid is None:
            return cce_error(404, "CCE.01404001", "Upgrade workflow not found")
        state.count("autopilot.workflow", target.id)
        return web.json_response(view(uid))

    async def listing(request: web.Request) -> web.Response:
        target = target_of(request)
        if target is None:
            return missing(request)
        state.count("autopilot.workflows", target.id)
        items = [
            view(uid)
            for uid, wf in sim.workflows.items()
            if wf["cluster"] == target.id and not lagging(wf["created_real"])
        ]
        return web.json_response({"kind": "List", "apiVersion": "v3", "items": items})

    async def patch(request: web.Request) -> web.Response:
        target = target_of(request)
        if target is None:
            return missing(request)
        uid = workflow_of(request, target)
        if uid is None:
            return cce_error(404, "CCE.01404001", "Upgrade workflow not found")
        state.count("autopilot.workflow_cancel", target.id)
        doc = await read_json(request)
        status = doc.get("status") if isinstance(doc, dict) else None
        if not isinstance(status, dict) or status.get("phase") != "Cancel":
            raise BadRequest("status.phase must be Cancel (the only update the API takes)")
        truth = view(uid, visible=False)["status"]
        if truth["phase"] in _NO_CANCEL:
            return cce_error(
                400, "CCE.01400001", f"The workflow cannot be cancelled in phase {truth['phase']}"
            )
        if any(p.get("status") in ("Init", "Queuing", "Running") for p in truth["pointStatuses"]):
            return cce_error(400, "CCE.01400001", "The workflow cannot be cancelled while a task is running")
        sim.workflows[uid]["cancelled"] = True
        return web.json_response(view(uid))

    add("POST", base, create, "workflow")
    add("GET", base, listing, "workflows")
    add("GET", base + "/{workflow_id}", get, "workflow")
    add("PATCH", base + "/{workflow_id}", patch, "workflow_cancel")
    # Registered after every Autopilot route (simulator.huawei registers this module last).
    app.router.add_route("*", "/autopilot/{tail:.*}", no_such_api)
