"""Simulated CCE Autopilot upgrade workflow (seed 002) and the v3.1 snapshot.

A workflow is bookkeeping: its ``pointStatuses`` are read off the stage tasks started on the
cluster after it was created (the latest of each kind), so clients drive the stages with their own
calls exactly as against the real service.

Operations (fault keys, stats counters): ``autopilot.workflow`` (create and GET by id),
``autopilot.workflows`` (list), ``autopilot.workflow_cancel`` (PATCH), ``autopilot.snapshot``,
``autopilot.snapshot_tasks``; the cluster/precheck/upgrade/postcheck operations are in
``simulator.huawei.cce``.

``list_lag_s``: a workflow younger than it is left out of the workflow list; a stage task or
snapshot younger than it is not (yet) in a workflow's ``pointStatuses`` nor in the snapshot task
list. The GET of a workflow by id finds it. Conflict checks (a second workflow, cancel while a
task runs) use the truth. ``clock_skew_s`` shifts every timestamp.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from simulator.core import SimState, SimTarget, lagging, route
from simulator.huawei._common import authed, cce_error, huawei_sim, iso, read_json
from simulator.huawei.cce import SNAPSHOT_FRACTION, resolve_version, task_phase, timed_phase

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


def register(app: web.Application, state: SimState) -> None:
    sim = huawei_sim(state)
    base = "/autopilot/v3/projects/{project_id}/clusters/{cluster_id}/operation/upgradeworkflows"
    snap = "/autopilot/v3.1/projects/{project_id}/clusters/{cluster_id}/operation/snapshot"

    def add(method: str, path: str, handler: Any, op: str) -> None:
        route(app, state, SERVICE, method, path, authed(state, SERVICE, handler), op=f"{SERVICE}.{op}")

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
                found[rec["type"]] = {
                    "taskID": uid,
                    "status": _TASK_STATUS[phase],
                    "startTimeStamp": iso(rec["started"]),
                    "endTimeStamp": iso(rec["started"] + rec["duration"])
                    if phase in ("Success", "Failed")
                    else None,
                }
        for uid, rec in sim.snapshots.items():
            if rec["cluster"] == cluster and rec["started"] >= since and shown(rec, visible):
                phase = timed_phase(state, rec)
                found["Snapshot"] = {
                    "taskID": uid,
                    "status": _TASK_STATUS[phase],
                    "startTimeStamp": iso(rec["started"]),
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
        return [{"taskType": t, **found.get(t, {})} for t in _POINTS]

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
        elif any(statuses.values()):
            phase = "Running"
        else:
            phase = "Init"
        return {
            "kind": "WorkFlowTask",
            "apiVersion": "v3",
            "metadata": {
                "uid": uid,
                "creationTimestamp": iso(wf["created"]),
                "updateTimestamp": iso(state.clock.now()),
            },
            "spec": {"clusterID": wf["cluster"], "clusterVersion": wf["from"], "targetVersion": wf["target"]},
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
        doc = await read_json(request)
        spec = doc.get("spec") if isinstance(doc, dict) else None
        if (
            not isinstance(doc, dict)
            or doc.get("kind") != "WorkFlowTask"
            or not isinstance(spec, dict)
            or not isinstance(spec.get("targetVersion"), str)
        ):
            return cce_error(
                400, "CCE.01400001", "Invalid request: kind WorkFlowTask and spec.targetVersion required"
            )
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
            "from": target.version,
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
        if not isinstance(doc, dict) or (doc.get("status") or {}).get("phase") != "Cancel":
            return cce_error(400, "CCE.01400001", "Invalid request: only status.phase Cancel is supported")
        if any(
            p.get("status") in ("Init", "Queuing", "Running")
            for p in view(uid, visible=False)["status"]["pointStatuses"]
        ):
            return cce_error(400, "CCE.01400001", "The workflow cannot be cancelled while a task is running")
        sim.workflows[uid]["cancelled"] = True
        return web.json_response(view(uid))

    async def snapshot(request: web.Request) -> web.Response:
        target = target_of(request)
        if target is None:
            return missing(request)
        state.count("autopilot.snapshot", target.id)
        uid = sim.uid(state)
        sim.snapshots[uid] = {
            "cluster": target.id,
            "started": state.clock.now(),
            "duration": target.job_seconds * SNAPSHOT_FRACTION,
            "type": "Snapshot",
            "created_real": time.monotonic(),
        }
        return web.json_response({"uid": uid})

    async def snapshot_tasks(request: web.Request) -> web.Response:
        target = target_of(request)
        if target is None:
            return missing(request)
        state.count("autopilot.snapshot_tasks", target.id)
        items = []
        for uid, rec in sim.snapshots.items():
            if rec["cluster"] == target.id and not lagging(rec["created_real"]):
                phase = timed_phase(state, rec)
                elapsed = state.clock.now() - rec["started"]
                progress = 100 if phase == "Success" else int(100 * elapsed / max(rec["duration"], 1e-9))
                items.append(
                    {
                        "id": uid,
                        "type": "Snapshot",
                        "status": "Queuing" if phase == "Init" else phase,
                        "progress": str(progress),
                        "createdAt": iso(rec["started"]),
                        "updatedAt": iso(state.clock.now()),
                        "clusterID": target.id,
                    }
                )
        return web.json_response({"apiVersion": "v3.1", "kind": "List", "items": items})

    add("POST", base, create, "workflow")
    add("GET", base, listing, "workflows")
    add("GET", base + "/{workflow_id}", get, "workflow")
    add("PATCH", base + "/{workflow_id}", patch, "workflow_cancel")
    add("POST", snap, snapshot, "snapshot")
    add("GET", snap + "/tasks", snapshot_tasks, "snapshot_tasks")
