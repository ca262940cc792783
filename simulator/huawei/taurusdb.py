"""Simulated TaurusDB StarRocks: kernel upgrade (seed 000), the job query, the job list, the instance.

The upgrade goes to the target's newest version (StarRocks' API takes no version). A target's
``id`` is its StarRocks instance id (suffix ``in17``); it may carry ``extra["instance_id"]``, the
TaurusDB instance id (suffix ``in07``). Ids are checked as the documents state them: 32 letters
or digits and the suffix (seed 000: "36 characters with a suffix of in17"), in their positions:

- ``POST /v3/{p}/instances/{id}/starrocks/db-upgrade`` takes the StarRocks id (the page, PySDK)
  — or the TaurusDB id, as TF-HW sends (vendor-facts §4.1: unconfirmed). A target's
  ``extra["upgrade_path_id"]`` says which one this instance accepts: ``in17``, ``in07`` or
  ``either`` (default: both readings, until one is confirmed).
- ``GET /v3/{p}/instances/{in07}/starrocks/{in17}`` (ListStarrocksInstanceInfo): the TaurusDB
  id first — the target's own when it knows it, else any well-formed in07 id — then the
  StarRocks id.

Anything else (a malformed id, an id in the wrong position) is ``DBS.200022 Instance not found.``
Every error is ``{error_code, error_msg}``; a path under ``/v3/{project_id}/`` that is not one
of these routes is the API gateway's ``404 APIGW.0101``.

Routes and their operations (fault keys, stats counters):

- ``POST /v3/{p}/instances/{id}/starrocks/db-upgrade``  ``taurusdb.upgrade``  -> ``{job_id}``
- ``GET  /v3/{p}/jobs?id=``                             ``taurusdb.jobs``     -> ``{job}``
- ``GET  /v3/{p}/scheduled-jobs``                       ``taurusdb.scheduled_jobs`` -> ``{schedules,
  total_count}``: delayed upgrades still Pending (filterable by ``instance_id``); immediate-jobs
  and the instance's ``actions`` leave them out until they run
- ``GET  /v3/{p}/immediate-jobs``                       ``taurusdb.jobs_list`` -> ``{jobs, total_count,
  action_names}`` (vendor-facts §4.5: no instance filter, the caller filters)
- ``GET  /v3/{p}/instances/{in07}/starrocks/{in17}``    ``taurusdb.instance`` -> ``{instances: [...]}``
  with ``actions[]`` naming the running upgrade job (§4.3)

Job statuses (ShowGaussMySqlJobInfo, vendor-facts §4.4): Pending (a delayed job's first tenth),
Running, Completed, Failed — and, on request, the two the PySDK enum lacks: a target's
``extra["job_status"]`` set to ``Unauthorized`` makes its next jobs wait for authorisation (no
progress, status Unauthorized) until ``POST /_sim/taurusdb/jobs/{job_id}`` ``{"status":
"Running"}`` authorises one; ``Canceled`` makes them end Canceled (as a person cancelling them
halfway; the version stays). The same control route with ``{"status": "Canceled"}`` cancels a
running job now. (Control routes take no auth and no faults.)

``list_lag_s`` (a new job is not visible everywhere at once) affects, for a job younger than it:
``GET /jobs?id=`` answers 404 DBS.200404 (the docs: "a new job id becomes queryable only after a
few seconds"; ``HuaweiSim.fresh_job_404_s`` does the same, whichever is longer wins);
``immediate-jobs`` leaves it out; the instance view shows the pre-upgrade state (``status``
``normal``, no ``actions``). ``clock_skew_s`` shifts every timestamp in these answers.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from simulator.core import STALL_AT, SimJob, SimState, SimTarget, lagging, route, vendor_time
from simulator.huawei._common import authed, dbs_error, fault_body, huawei_sim, iso, no_such_api, read_json

__all__ = ["ACTION_NAMES", "JOB_NAME", "STARROCKS_ID", "TAURUSDB_ID", "register"]

KIND = "starrocks"
SERVICE = "taurusdb"
_FLAGS = {True: True, False: False, "true": True, "false": False}
#: The job name of a StarRocks kernel upgrade. The real name is UNCONFIRMED (vendor-facts §4.5):
#: this follows the style of the documented names (e.g. "UpgradeGaussDBforMySQLDatabase").
#: Clients should take it from ``action_names`` rather than hard-code it.
JOB_NAME = "UpgradeStarRocksKernelVersion"
#: ``action_names`` of the job list: only the jobs this simulator produces.
ACTION_NAMES = [JOB_NAME]
#: Job statuses the docs list (ShowGaussMySqlJobInfo; the last two on request, see above).
JOB_STATUSES = ("Pending", "Running", "Completed", "Failed", "Unauthorized", "Canceled")
#: The ids' documented form: 32 letters or digits, then the suffix.
STARROCKS_ID = re.compile(r"^[0-9A-Za-z]{32}in17$")
TAURUSDB_ID = re.compile(r"^[0-9A-Za-z]{32}in07$")
UPGRADE_PATH_IDS = ("in17", "in07", "either")
LIMITS = (10, 20, 50)
#: "Only jobs from the last month can be queried" (vendor-facts §4.4): simulated seconds.
JOB_LIST_MAX_AGE = 30 * 86400.0


def _upgrade_target(state: SimState, path_id: str) -> SimTarget | None:
    """The target a db-upgrade path id names, if that target takes that kind of id there."""
    if STARROCKS_ID.match(path_id):
        target, kind = state.by_id(KIND, path_id), "in17"
    elif TAURUSDB_ID.match(path_id):
        target = next(
            (t for t in state.targets.values() if t.kind == KIND and t.extra.get("instance_id") == path_id),
            None,
        )
        kind = "in07"
    else:
        return None
    if target is None:
        return None
    accepts = target.extra.get("upgrade_path_id", "either")
    if accepts not in UPGRADE_PATH_IDS:
        raise ValueError(f"simulated StarRocks {target.name}: upgrade_path_id must be in17, in07 or either")
    if accepts not in ("either", kind):
        return None
    state.refresh(target)
    return target


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
    if job.extra.get("unauthorized"):
        status = "Unauthorized"
    elif outcome == "running":
        status = "Pending" if job.extra.get("delay") and frac < 0.1 else "Running"
    elif outcome == "succeeded":
        status = "Completed"
    else:
        status = "Canceled" if job.extra.get("canceled") else "Failed"
    return status, frac


_ENDED = ("Completed", "Failed", "Canceled")


def _scheduled(state: SimState, job: SimJob) -> bool:
    """A delayed upgrade still waiting for its window (``Pending``): a scheduled job."""
    return bool(job.extra.get("delay")) and _status(state, job)[0] == "Pending"


def _authorise(state: SimState, job: SimJob) -> None:
    """An Unauthorized job is authorised: it runs from now, with the fate it was given."""
    job.extra.pop("unauthorized", None)
    job.started = state.clock.now()
    job.stall, job.stall_at = job.extra.pop("stall_after_authorisation", False), STALL_AT


def _cancel(state: SimState, job: SimJob) -> None:
    """A running job is cancelled now: it ends Canceled where it was; the version stays."""
    now = state.clock.now()
    job.extra.pop("unauthorized", None)
    job.fail_at = job.fraction(now) if job.duration > 0 else 0.0
    job.started = min(job.started, now)
    job.fail, job.stall, job.fail_reason = True, False, ""
    job.extra["canceled"] = True


def _process(status: str, frac: float) -> str | None:
    if status in ("Running", "Canceled"):
        return f"{int(frac * 100)}%"
    return "100%" if status == "Completed" else None


def _job_view(state: SimState, job: SimJob, target: SimTarget) -> dict[str, Any]:
    status, frac = _status(state, job)
    return {
        "id": job.id,
        "name": JOB_NAME,
        "status": status,
        "created": iso(job.extra.get("created", job.started)),
        "ended": iso(job.ends) if status in _ENDED else None,
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
        "ended_time": _offset_time(job.ends) if status in _ENDED else None,
        "fail_reason": job.fail_reason if status == "Failed" else None,
        "show_detail": False,
    }


def register(app: web.Application, state: SimState) -> None:
    sim = huawei_sim(state)
    state.error_bodies[SERVICE] = fault_body(
        lambda status, code, msg: {"error_code": "DBS.200001" if status >= 500 else code, "error_msg": msg}
    )

    def add(method: str, path: str, handler: Any, op: str) -> None:
        # TaurusDB answers carry X-Request-Id (cloud-apis.md, "Errors and throttling").
        route(app, state, SERVICE, method, path, authed(state, SERVICE, handler, request_ids=True), op=op)

    def invalid(message: str) -> web.Response:
        return dbs_error(400, "DBS.200001", f"Invalid parameter: {message}")

    def page_of(query: Any) -> tuple[int, int] | web.Response:
        """(page, size) of a job list query, or the vendor's 400. ``offset`` is read as a 1-based
        page number (its default is 1); whether the vendor means a page or rows to skip is
        unconfirmed."""
        limit, offset = query.get("limit", "10"), query.get("offset", "1")
        if not limit.isdigit() or int(limit) not in LIMITS:
            return invalid("limit must be 10, 20 or 50.")
        if not offset.isdigit():
            return invalid("offset must be a number and not negative.")
        return max(int(offset), 1), int(limit)

    def newest_jobs() -> list[SimJob]:
        jobs = [j for j in state.jobs.values() if isinstance(j, SimJob) and j.service == SERVICE]
        return sorted(jobs, key=lambda j: j.created_real, reverse=True)

    async def upgrade(request: web.Request) -> web.Response:
        target = _upgrade_target(state, request.match_info["instance_id"])
        if target is None:
            return dbs_error(400, "DBS.200022", "Instance not found.")
        state.count("taurusdb.upgrade", target.id)
        doc = await read_json(request)
        if doc is None:
            if await request.read():
                return invalid("the request body is not JSON.")
            doc = {}  # both fields are optional (default false)
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
        job = state.start_job(
            target,
            target.versions[-1],
            service=SERVICE,
            job_id=job_id,
            extra={
                "delay": flags["delay"],
                "body": doc,  # as received: tests check what went over the wire
                "created": state.clock.now(),
                "action_id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"upshift-sim/action/{job_id}")),
            },
        )
        hold = target.extra.get("job_status")
        if hold == "Unauthorized":  # waits for someone to authorise it: no progress until then
            job.extra.update(unauthorized=True, stall_after_authorisation=job.stall)
            job.stall, job.stall_at = True, 0.0
        elif hold == "Canceled":  # someone cancels it halfway
            job.fail, job.stall, job.fail_reason = True, False, ""
            job.extra["canceled"] = True
        elif hold is not None:
            raise ValueError(
                f"simulated StarRocks {target.name}: job_status must be Unauthorized or Canceled"
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
        paging = page_of(query)
        if isinstance(paging, web.Response):
            return paging
        page, size = paging
        status = query.get("status")
        if status is not None and status not in JOB_STATUSES:
            return invalid(f"status must be one of {', '.join(JOB_STATUSES)}.")
        bounds: list[float | None] = []
        for key in ("start_time", "end_time"):
            value = query.get(key)
            parsed = None if value is None else _parse_time(value)
            if value is not None and parsed is None:
                return invalid(
                    f"{key} must be formatted yyyy-mm-ddThh:mm:ssZ, e.g. 2024-03-01T10:41:14+0000."
                )
            bounds.append(parsed)
        start, end = bounds
        now = state.clock.now()
        rows = []
        for j in newest_jobs():
            created = j.extra.get("created", j.started)
            if lagging(j.created_real) or now - created > JOB_LIST_MAX_AGE:
                continue
            if _scheduled(state, j):  # a delayed job waits in scheduled-jobs until it runs
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
        return web.json_response(
            {
                "jobs": rows[(page - 1) * size : page * size],
                "total_count": len(rows),
                "action_names": list(ACTION_NAMES),
            }
        )

    async def scheduled_jobs(request: web.Request) -> web.Response:
        """``GET /v3/{p}/scheduled-jobs`` (vendor-facts §4.5): delayed jobs, filterable by
        ``instance_id`` (unlike immediate-jobs), answered as ``{schedules[], total_count}``."""
        state.count("taurusdb.scheduled_jobs", "*")
        query = request.query
        paging = page_of(query)
        if isinstance(paging, web.Response):
            return paging
        page, size = paging
        rows = []
        for j in newest_jobs():
            if lagging(j.created_real) or not _scheduled(state, j):
                continue
            target = state.targets[j.target_id]
            ids = {target.id, target.extra.get("instance_id")}
            if query.get("instance_id") is not None and query["instance_id"] not in ids:
                continue
            if query.get("job_id") is not None and query["job_id"] != j.id:
                continue
            rows.append(
                {
                    "job_id": j.id,
                    "job_status": "Pending",
                    "instance_id": target.id,
                    "instance_name": target.name,
                    "job_name": JOB_NAME,
                    "create_time": _offset_time(j.extra.get("created", j.started)),
                }
            )
        return web.json_response(
            {"schedules": rows[(page - 1) * size : page * size], "total_count": len(rows)}
        )

    async def instance(request: web.Request) -> web.Response:
        first, second = request.match_info["instance_id"], request.match_info["starrocks_instance_id"]
        target = state.by_id(KIND, second) if STARROCKS_ID.match(second) else None
        taurus_id = target.extra.get("instance_id") if target is not None else None
        if target is None or not TAURUSDB_ID.match(first) or (taurus_id is not None and first != taurus_id):
            return dbs_error(404, "DBS.200022", "Instance not found.")
        state.count("taurusdb.instance", target.id)
        running = state.active_job(target, visible=True)
        if running is not None and _scheduled(state, running):
            running = None  # scheduled, not yet running on the instance
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

    async def control(request: web.Request) -> web.Response:
        """``POST /_sim/taurusdb/jobs/{job_id}`` ``{"status": "Running" | "Canceled"}``."""
        job = state.jobs.get(request.match_info["job_id"])
        if not isinstance(job, SimJob) or job.service != SERVICE:
            return web.json_response({"error": "no such TaurusDB job"}, status=404)
        try:
            wanted = (await request.json()).get("status")
        except (ValueError, AttributeError):
            wanted = None
        current, _ = _status(state, job)
        if wanted == "Running" and current == "Unauthorized":
            _authorise(state, job)
        elif wanted == "Canceled" and current not in _ENDED:
            _cancel(state, job)
        else:
            message = f"cannot move a {current} job to {wanted!r} (Unauthorized -> Running, or not ended -> Canceled)"
            return web.json_response({"error": message}, status=400)
        return web.json_response({"job": _job_view(state, job, state.targets[job.target_id])})

    base = "/v3/{project_id}"
    add("POST", base + "/instances/{instance_id}/starrocks/db-upgrade", upgrade, "taurusdb.upgrade")
    add("GET", base + "/jobs", job, "taurusdb.jobs")
    add("GET", base + "/immediate-jobs", jobs_list, "taurusdb.jobs_list")
    add("GET", base + "/scheduled-jobs", scheduled_jobs, "taurusdb.scheduled_jobs")
    add(
        "GET",
        base + "/instances/{instance_id}/starrocks/{starrocks_instance_id}",
        instance,
        "taurusdb.instance",
    )
    app.router.add_post("/_sim/taurusdb/jobs/{job_id}", control)
    # Any other path under a project (IAM's /v3/auth/... has no project segment): the gateway's 404.
    app.router.add_route("*", "/v3/{project_id:[0-9A-Za-z]{32}}/{tail:.*}", no_such_api)
