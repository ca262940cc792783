"""Simulated CCE (``/api/v3``, kind ``cce``) and CCE Autopilot (``/autopilot/v3``, kind ``autopilot``).

Both: cluster query, precheck (+ task), upgrade (+ task, list, pause/continue/retry), postcheck.
Autopilot adds the upgrade workflow, whose ``pointStatuses`` are derived from the stage tasks
started after it (PreCheck -> Snapshot -> Cluster -> PostCheck), and the v3.1 snapshot.
Task phases follow the simulated clock: ``Init`` / ``Queuing`` at the very start, ``Running``,
then ``Success`` or ``Failed`` (with the reason in ``status.message``); a stalled job stays
``Running`` at 50%.

Operations (fault keys, stats counters), ``<s>`` being ``cce`` or ``autopilot``: ``<s>.cluster``,
``<s>.precheck`` (the POST and the GET of its task), ``<s>.upgrade``, ``<s>.upgrade_tasks`` (list),
``<s>.upgrade_task`` (GET by id), ``<s>.upgrade_pause``, ``<s>.upgrade_continue``,
``<s>.upgrade_retry``, ``<s>.postcheck``.

``list_lag_s``: an upgrade task younger than it is left out of ``GET .../upgrade/tasks`` and the
cluster query still shows the pre-upgrade ``Available`` phase; ``GET .../upgrade/tasks/{id}`` and
the pre-check task by id are not affected. ``clock_skew_s`` shifts every timestamp.
"""

from __future__ import annotations

import re
import time
from typing import Any

from aiohttp import web

from simulator.core import SimJob, SimState, SimTarget, route
from simulator.huawei._common import authed, cce_error, fault_body, huawei_sim, iso, read_json

__all__ = ["register", "resolve_version", "task_phase", "timed_phase"]

_VERSION = re.compile(r"^v\d+\.\d+(\.\d+)?(-r\d+)?$")
#: Fraction of a target's ``job_seconds`` a pre-check / snapshot takes.
CHECK_FRACTION = 0.05
SNAPSHOT_FRACTION = 0.1


def resolve_version(target: SimTarget, wanted: str) -> str | None:
    """``v1.28`` names the newest ``v1.28.x-rN`` the target may go to; exact names match themselves."""
    if wanted in target.versions:
        return wanted
    matches = [v for v in target.versions if v.startswith(wanted + ".") or v.startswith(wanted + "-")]
    return matches[-1] if matches else None


def task_phase(state: SimState, job: SimJob) -> tuple[str, float]:
    now = state.clock.now()
    if "paused_frac" in job.extra:
        return "Pause", job.extra["paused_frac"]
    frac = job.fraction(now)
    outcome = job.outcome(now)
    if outcome == "succeeded":
        return "Success", 1.0
    if outcome == "failed":
        return "Failed", frac
    return ("Init" if frac < 0.01 else "Queuing" if frac < 0.03 else "Running"), frac


def _task_view(state: SimState, job: SimJob) -> dict[str, Any]:
    phase, frac = task_phase(state, job)
    return {
        "apiVersion": "v3",
        "kind": "UpgradeTask",
        "metadata": {
            "uid": job.id,
            "creationTimestamp": iso(job.extra.get("created", job.started)),
            "updateTimestamp": iso(state.clock.now()),
        },
        "spec": {"version": job.from_version, "targetVersion": job.to_version, "items": {}},
        "status": {
            "phase": phase,
            "progress": str(int(frac * 100)),
            "completionTime": iso(job.ends) if phase in ("Success", "Failed") else None,
            "message": job.fail_reason if phase == "Failed" else None,
        },
    }


def timed_phase(state: SimState, record: dict[str, Any]) -> str:
    elapsed = state.clock.now() - record["started"]
    if elapsed < 0.1 * record["duration"]:
        return "Init"
    if elapsed < record["duration"]:
        return "Running"
    return record.get("result", "Success")


def _register_service(app: web.Application, state: SimState, service: str, kind: str, prefix: str) -> None:
    sim = huawei_sim(state)
    base = prefix + "/projects/{project_id}/clusters/{cluster_id}"

    def add(method: str, path: str, handler: Any, op: str) -> None:
        route(app, state, service, method, path, authed(state, service, handler), op=f"{service}.{op}")

    def target_of(request: web.Request) -> SimTarget | None:
        return state.by_id(kind, request.match_info["cluster_id"])

    def missing(request: web.Request) -> web.Response:
        return cce_error(404, "CCE.01404001", f"Cluster {request.match_info['cluster_id']} not found")

    def latest_job(target: SimTarget) -> SimJob | None:
        jobs = [j for j in state.jobs_of(target.id) if j.service == service]
        return jobs[-1] if jobs else None

    async def cluster(request: web.Request) -> web.Response:
        target = target_of(request)
        if target is None:
            return missing(request)
        state.count(f"{service}.cluster", target.id)
        busy = state.active_job(target, visible=True) is not None
        return web.json_response(
            {
                "kind": "Cluster",
                "apiVersion": "v3",
                "metadata": {"uid": target.id, "name": target.name},
                "spec": {"version": target.version, "platformVersion": "cce.10.0"},
                "status": {"phase": "Upgrading" if busy else "Available"},
            }
        )

    async def check(request: web.Request, kind_name: str) -> web.Response:
        target = target_of(request)
        if target is None:
            return missing(request)
        state.count(f"{service}.{kind_name.lower()}", target.id)
        doc = await read_json(request)
        spec = doc.get("spec") if isinstance(doc, dict) else None
        if not isinstance(spec, dict) or not isinstance(spec.get("targetVersion"), str):
            return cce_error(400, "CCE.01400001", "Invalid request: spec.targetVersion is required")
        uid = sim.uid(state)
        now = state.clock.now()
        if kind_name == "PreCheck":
            resolved = resolve_version(target, spec["targetVersion"])
            if resolved is None:
                return cce_error(400, "CCE.01400001", f"Unsupported target version {spec['targetVersion']}")
            record = {
                "cluster": target.id,
                "started": now,
                "duration": target.job_seconds * CHECK_FRACTION,
                "target": resolved,
                "type": "PreCheck",
                "created_real": time.monotonic(),
            }
            phase = "Init"
        else:
            resolved = resolve_version(target, spec["targetVersion"]) or spec["targetVersion"]
            ok = target.version == resolved and state.active_job(target) is None
            record = {
                "cluster": target.id,
                "started": now,
                "duration": 0.0,
                "target": resolved,
                "type": "PostCheck",
                "result": "Success" if ok else "Failed",
                "created_real": time.monotonic(),
            }
            phase = record["result"]
        sim.checks[uid] = record
        return web.json_response(
            {
                "kind": f"{kind_name}Task",
                "apiVersion": "v3",
                "metadata": {"uid": uid, "creationTimestamp": iso(now)},
                "spec": {"clusterID": target.id, "clusterVersion": target.version, "targetVersion": resolved},
                "status": {"phase": phase},
            }
        )

    async def precheck(request: web.Request) -> web.Response:
        return await check(request, "PreCheck")

    async def postcheck(request: web.Request) -> web.Response:
        return await check(request, "PostCheck")

    async def precheck_task(request: web.Request) -> web.Response:
        target = target_of(request)
        record = sim.checks.get(request.match_info["task_id"])
        if target is None:
            return missing(request)
        if record is None or record["cluster"] != target.id or record["type"] != "PreCheck":
            return cce_error(404, "CCE.01404001", "Pre-check task not found")
        state.count(f"{service}.precheck", target.id)
        return web.json_response(
            {
                "kind": "PreCheckTask",
                "apiVersion": "v3",
                "metadata": {
                    "uid": request.match_info["task_id"],
                    "creationTimestamp": iso(record["started"]),
                },
                "spec": {"clusterID": target.id, "targetVersion": record["target"]},
                "status": {"phase": timed_phase(state, record)},
            }
        )

    async def upgrade(request: web.Request) -> web.Response:
        target = target_of(request)
        if target is None:
            return missing(request)
        state.count(f"{service}.upgrade", target.id)
        doc = await read_json(request)
        spec = doc.get("spec") if isinstance(doc, dict) else None
        action = None
        if isinstance(spec, dict):
            action = spec.get("clusterUpgradeAction", spec.get("autopilotClusterUpgradeAction"))
        if not isinstance(action, dict) or not isinstance(action.get("targetVersion"), str):
            return cce_error(
                400, "CCE.01400001", "Invalid request: spec.clusterUpgradeAction.targetVersion is required"
            )
        wanted = action["targetVersion"]
        strategy = action.get("strategy") or {}
        step = (strategy.get("inPlaceRollingUpdate") or {}).get("userDefinedStep")
        if step is not None and (not isinstance(step, int) or not 1 <= step <= 120):
            return cce_error(400, "CCE.01400001", "Invalid request: userDefinedStep must be within 1..120")
        resolved = resolve_version(target, wanted) if _VERSION.match(wanted) else None
        if resolved is None:
            return cce_error(400, "CCE.01400001", f"Unsupported target version {wanted}")
        if state.active_job(target) is not None:
            return cce_error(
                409, "CCE.01409001", "The cluster is being upgraded: another upgrade task is running"
            )
        if target.versions.index(resolved) <= (
            target.versions.index(target.version) if target.version in target.versions else -1
        ):
            return cce_error(
                400, "CCE.01400001", f"Target version {wanted} is not newer than {target.version}"
            )
        uid = sim.uid(state)
        job = state.start_job(target, resolved, service=service, job_id=uid)
        job.extra["created"] = job.started
        return web.json_response(
            {
                "metadata": {"uid": uid},
                "spec": {
                    "clusterUpgradeAction": {
                        "version": job.from_version,
                        "targetVersion": resolved,
                        "targetPlatformVersion": "cce.10",
                        "strategy": strategy or {"type": "inPlaceRollingUpdate"},
                        "config": {},
                    }
                },
            }
        )

    async def upgrade_task(request: web.Request) -> web.Response:
        target = target_of(request)
        if target is None:
            return missing(request)
        job = state.jobs.get(request.match_info["task_id"])
        if not isinstance(job, SimJob) or job.target_id != target.id or job.service != service:
            return cce_error(404, "CCE.01404001", "Upgrade task not found")
        state.count(f"{service}.upgrade_task", target.id)
        return web.json_response(_task_view(state, job))

    async def upgrade_tasks(request: web.Request) -> web.Response:
        target = target_of(request)
        if target is None:
            return missing(request)
        state.count(f"{service}.upgrade_tasks", target.id)
        jobs = state.jobs_of(target.id, visible=True)
        items = [_task_view(state, j) for j in jobs if j.service == service]
        return web.json_response({"apiVersion": "v3", "kind": "List", "items": items})

    async def control(request: web.Request, action: str) -> web.Response:
        target = target_of(request)
        if target is None:
            return missing(request)
        state.count(f"{service}.upgrade_{action}", target.id)
        job = latest_job(target)
        phase = task_phase(state, job)[0] if job else None
        now = state.clock.now()
        if job is None:
            return cce_error(400, "CCE.01400001", "No upgrade task on this cluster")
        if action == "pause":
            if phase not in ("Init", "Queuing", "Running"):
                return cce_error(400, "CCE.01400001", f"Cannot pause an upgrade task in phase {phase}")
            job.extra["paused_frac"] = job.fraction(now)
            job.started = now + 1e9  # frozen: no progress while paused (restored on continue)
        elif action == "continue":
            if phase != "Pause":
                return cce_error(400, "CCE.01400001", f"Cannot continue an upgrade task in phase {phase}")
            job.started = now - job.extra.pop("paused_frac") * job.duration
        else:  # retry: resume the failed task where it stopped
            if phase != "Failed":
                return cce_error(400, "CCE.01400001", f"Cannot retry an upgrade task in phase {phase}")
            resume_at = job.fail_at
            job.fail, job.stall = state.job_fate(target)  # a target whose outcome is fail fails again
            if not job.fail:
                job.fail_reason = ""
            job.started = now - resume_at * job.duration
        return web.json_response({})

    def controller(action: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            return await control(request, action)

        return handler

    add("GET", base, cluster, "cluster")
    add("POST", base + "/operation/precheck", precheck, "precheck")
    add("GET", base + "/operation/precheck/tasks/{task_id}", precheck_task, "precheck")
    add("POST", base + "/operation/upgrade", upgrade, "upgrade")
    add("GET", base + "/operation/upgrade/tasks", upgrade_tasks, "upgrade_tasks")
    add("GET", base + "/operation/upgrade/tasks/{task_id}", upgrade_task, "upgrade_task")
    for action in ("pause", "continue", "retry"):
        add("POST", base + f"/operation/upgrade/{action}", controller(action), f"upgrade_{action}")
    add("POST", base + "/operation/postcheck", postcheck, "postcheck")


def register(app: web.Application, state: SimState) -> None:
    body = fault_body(lambda status, code, msg: {"errorCode": f"CCE.01{status}0001", "errorMessage": msg})
    state.error_bodies["cce"] = body
    state.error_bodies["autopilot"] = body
    _register_service(app, state, "cce", "cce", "/api/v3")
    _register_service(app, state, "autopilot", "autopilot", "/autopilot/v3")
