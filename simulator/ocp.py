"""OceanBase OCP, simulated from OCP's documents — auth, envelopes, bodies, task DAGs.

Written apart from ``shared.clouds.oceanbase.client`` (nothing is imported from it): the signature
check, the envelope and the validation below follow the documents, and the tests hold client
and simulator to one golden vector.

Sources: seed 001 (the legacy upgrade page and its sample DAG), common-ocp-10000000002169663
(the current upgrade page), common-ocp-10000000002169100 (AK/SK signatures), the task pages
(community-ocp-en-10000000000779408, common-ocp-10000000001188044), the cluster statuses
(enterprise-oceanbase-ocp-en-10000000000390694), and oceanbase/ocp-express — the open-source OCP
server — for what the pages leave out: the failure envelope (``core/response/ErrorResponse``,
``ApiError``), error codes and their messages (``ErrorCodes``, ``messages_en_US.properties``), the
401 of an unauthenticated ``/api/**`` request (``CustomAuthenticationEntryPoint``), and how a
bad body is answered (``RestExceptionHandler``; Jackson ignores unknown fields).

* **Auth**: ``Authorization: Basic base64(user:pass)``, or ``OCP-ACCESS-KEY-HMACSHA1 {AK}:{sig}``
  with an RFC 1123 ``Date`` within 15 minutes of the real clock (:func:`to_sign`, :func:`sign`).
* **Envelope**: success ``{data, successful: true, timestamp, duration, status, traceId,
  server}``; failure ``{successful: false, timestamp, duration, status, traceId, server, error:
  {code, message, debugMessage?, subErrors?}}`` — on every answer under ``/api/v2/``, unknown
  paths included (400 "Could not find the GET method for URL …", as ``RestExceptionHandler``).
* **Upgrade body**: a target's ``extra["upgrade_body"]`` says which OCP it emulates — ``new``
  (default: the current page; ``destVersion`` and ``operatingSystem`` required, ``rpmFileName``
  ignored) or ``legacy`` (the older pages: ``rpmFileName`` required; the new fields are unknown,
  so ignored). The other body is refused with a validation failure naming the missing field(s)
  (HTTP 400, ``subErrors[].field``). ``upgradeMode`` is checked when given (only ROLLING is
  documented) and defaults to ROLLING: the page marks it required, but marks the deprecated
  ``rpmFileName`` required too, so its Required column is not taken literally.
* **The task** an upgrade starts is seed 001's: ``Submit upgrade OB cluster dag``, a chain
  ``Start node`` → ``Prepare upgrade cluster`` → ``Submit cluster upgrade task`` → ``Wait dag
  success`` (the upgrade itself) → ``Update OB cluster status``. Subtasks move PENDING → READY →
  RUNNING → SUCCESSFUL on the simulated clock; a failing job fails ``Wait dag success`` (task
  FAILED); retry re-runs from it; rollback marks it ROLLBACK and leaves the task FAILED. A
  stalled job freezes in it, RUNNING for ever. A second upgrade while one runs is refused: HTTP
  409 with code 50002 "Operation not allowed in cluster …" (the code is OCP Express's; the
  status is a choice — OCP's own answer is not documented).
* **Task list** ``GET /api/v2/tasks/instances``: ``clusterId``, ``name`` (fuzzy), ``status``
  (array), ``type``, ``page`` (from 1), ``size`` (1..2000, default 10), ``sort`` (``field[,asc|desc]``).
  Without ``sort`` tasks come oldest first — the real default order is not documented, so a
  client must ask for the order it relies on.
* **Cluster status** has no UPGRADING (vendor-facts §5.3): RUNNING, and OPERATING while an
  upgrade task runs (OPERATING is the documented maintenance state; that an upgrade shows it is
  unconfirmed).

Operations (fault keys, stats counters): ``ocp.upgrade``, ``ocp.get_cluster``, ``ocp.list_tasks``,
``ocp.get_task``, ``ocp.retry``, ``ocp.rollback``, ``ocp.subtask_log`` (``GET …/subtasks/{sid}/log``
→ ``data.log``: a failed subtask's log ends with the job's fail reason).

``list_lag_s``: a task younger than it is left out of the task list and the cluster shows
RUNNING for it; ``GET /api/v2/tasks/instances/{id}`` finds it. ``clock_skew_s`` shifts
``startTime``, ``finishTime`` and the envelope's ``timestamp`` (the OCP's clock: simulated
time, skewed).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, quote

from aiohttp import web

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

__all__ = [
    "AUTH_SCHEME",
    "CLUSTER_STATUSES",
    "DAG",
    "SERVICE",
    "SUBTASK_STATUSES",
    "TASK_NAME",
    "TASK_STATUSES",
    "envelope",
    "error_body",
    "register",
    "sign",
    "to_sign",
]

SERVICE = "ocp"
KIND = "oceanbase"
#: "OCP-ACCESS-KEY-{Signature algorithm}"; "Only HMACSHA1 is supported … must be written in
#: uppercase" (common-ocp-10000000002169100).
AUTH_SCHEME = "OCP-ACCESS-KEY-HMACSHA1"
#: "… must be less than 15 minutes" between the request's Date and its arrival.
MAX_SKEW = 15 * 60
TASK_STATUSES = ("RUNNING", "FAILED", "SUCCESSFUL")
SUBTASK_STATUSES = ("PENDING", "READY", "RUNNING", "CANCELING", "FAILED", "SUCCESSFUL")
TASK_TYPES = ("MANUAL", "SYS_ONECE", "SCHEDULED", "SYS_SCHEDULED")  # sic, as documented
CLUSTER_STATUSES = (
    "RUNNING", "CREATING", "DELETING", "STARTING", "RESTARTING", "STOPPING", "STOPPED",
    "TAKINGOVER", "MOVINGOUT", "SWITCHOVER", "FAILOVER", "OPERATING",
)  # fmt: skip
UPGRADE_MODES = ("ROLLING",)
UPGRADE_BODIES = ("new", "legacy")
#: Seed 001's sample answer: the task's name and its DAG (a chain), with relative durations.
TASK_NAME = "Submit upgrade OB cluster dag"
DAG: tuple[tuple[str, float], ...] = (
    ("Start node", 1),
    ("Prepare upgrade cluster", 1),
    ("Submit cluster upgrade task", 1),
    ("Wait dag success", 6),
    ("Update OB cluster status", 1),
)
_FAIL_STEP = 3  # "Wait dag success": the upgrade DAG it waits for is what fails
_DISPATCH = 0.1  # a subtask sits READY for this share of a weight unit before it runs
_SORTABLE = ("id", "name", "status", "startTime", "finishTime")
# ocp-express ErrorCodes and messages_en_US.properties
ILLEGAL_ARGUMENT, NOT_FOUND, TASK_NOT_EXISTS, TASK_STATE_INVALID, OPS_NOT_ALLOWED = (
    10001,
    10002,
    20000,
    20003,
    50002,
)
NOT_AUTHENTICATED = (
    "The current user has not logged on or a logon error has occurred. Please log on and try again."
)


# -- the envelope --------------------------------------------------------------------------------


def _fmt(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def _iso(epoch: float) -> str:
    """A simulated time on the OCP's clock (the request's ``clock_skew_s`` added)."""
    return _fmt(vendor_time(epoch))


def _meta(status: int) -> dict[str, Any]:
    return {
        "timestamp": _fmt(vendor_now()),
        "duration": 3,
        "status": status,
        "traceId": uuid.uuid4().hex[:16],
        "server": "127.0.0.1",
    }


def envelope(data: Any, status: int = 200) -> dict[str, Any]:
    """A success: ``{data, successful: true, timestamp, duration, status, traceId, server}``."""
    return {"data": data, "successful": True, **_meta(status)}


def error_body(
    status: int,
    code: int | str,
    message: str,
    *,
    debug: str | None = None,
    sub_errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A failure: ``{successful: false, …, error: {code, message, debugMessage?, subErrors?}}``.
    ``code`` is OCP's integer code (0 when there is none); a non-numeric one becomes 0."""
    error: dict[str, Any] = {"code": int(code) if str(code).isdigit() else 0, "message": message}
    if debug is not None:
        error["debugMessage"] = debug
    if sub_errors:
        error["subErrors"] = sub_errors
    return {"successful": False, **_meta(status), "error": error}


def _fail(status: int, message: str, code: int = 0, **kw: Any) -> web.Response:
    return json_error(status, error_body(status, code, message, **kw))


def _ok(data: Any) -> web.Response:
    return web.json_response(envelope(data))


def _invalid(problems: list[tuple[str, Any, str]]) -> web.Response:
    """A bean-validation failure (MethodArgumentNotValidException): 400, the first field's
    message, ``subErrors`` naming each field."""
    subs = [
        {"object": "upgradeObClusterParam", "field": f, "rejectedValue": v, "message": m}
        for f, v, m in problems
    ]
    return _fail(400, problems[0][2], sub_errors=subs)


def _illegal(name: str, why: str) -> web.Response:
    return _fail(
        400,
        f"The input parameter {name} is empty or invalid. Please check and try again. ({why})",
        ILLEGAL_ARGUMENT,
    )


# -- auth (common-ocp-10000000002169100) ----------------------------------------------------------


def md5_payload(body: bytes) -> str:
    """Md5Payload: the body's MD5 as upper-case hex, 32 characters; "" when there is no body."""
    if not body:
        return ""
    return format(int.from_bytes(hashlib.md5(body).digest(), "big"), "032X")


def path_and_query(path: str, pairs: Iterable[tuple[str, str]]) -> str:
    """PathAndQueryParams: the path, and when there is a query ``?`` and its parameters by key,
    each ``key=value`` percent-encoded (RFC 3986), an array's values joined by commas first."""
    params: dict[str, str] = {}
    for key, value in pairs:
        params[key] = f"{params[key]},{value}" if key in params else value
    if not params:
        return path
    return path + "?" + "&".join(quote(k, safe="") + "=" + quote(params[k], safe="") for k in sorted(params))


def to_sign(
    method: str,
    body: bytes,
    content_type: str,
    date: str,
    host: str,
    headers: Mapping[str, str],
    path: str,
    pairs: Iterable[tuple[str, str]],
) -> str:
    """toSignString = HttpMethod + "\\n" + Md5Payload + "\\n" + ContentType + "\\n" + RequestDate
    + "\\n" + Host + "\\n" + OCP-Headers + "\\n" + PathAndQueryParams, where OCP-Headers are the
    ``x-ocp-*`` headers as sorted ``name:value`` lines (names in lower case)."""
    ocp = "\n".join(
        sorted(
            name.lower() + ":" + value.strip()
            for name, value in headers.items()
            if name.lower().startswith("x-ocp-")
        )
    )
    parts = (method.upper(), md5_payload(body), content_type, date, host, ocp, path_and_query(path, pairs))
    return "\n".join(parts)


def sign(sk: str, text: str) -> str:
    """The Signature: base64(HMAC-SHA1(SK, toSignString))."""
    return base64.b64encode(hmac.new(sk.encode("utf-8"), text.encode("utf-8"), "sha1").digest()).decode(
        "ascii"
    )


def _auth_problem(state: SimState, request: web.Request, body: bytes) -> str | None:
    """Why the request is not authenticated, or None. Dates are checked against the real clock."""
    creds = state.creds
    header = request.headers.get("Authorization", "")
    if not header:
        return "Authorization header is missing"
    scheme, _, rest = header.partition(" ")
    if scheme == "Basic":
        try:
            user, sep, password = base64.b64decode(rest, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "malformed Basic credentials"
        ok = sep == ":" and hmac.compare_digest(user, creds.ocp_user) & hmac.compare_digest(
            password, creds.ocp_password
        )
        return None if ok else "Bad credentials"
    if scheme != AUTH_SCHEME:
        return f"unsupported Authorization scheme {scheme!r} (OCP-ACCESS-KEY-HMACSHA1, upper case)"
    ak, sep, signature = rest.partition(":")
    if not sep or not ak or rest != rest.strip():
        return "Authorization must be OCP-ACCESS-KEY-HMACSHA1 {AK}:{Signature}"
    date = request.headers.get("Date")
    if not date:
        return "Date header is missing"
    try:
        signed_at = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return "Date header is not an RFC 1123 date"
    if abs(time.time() - signed_at) > MAX_SKEW:
        return "request Date is more than 15 minutes from server time"
    if not hmac.compare_digest(ak, creds.ocp_ak):
        return "unknown AccessKey ID"
    text = to_sign(
        request.method,
        body,
        request.headers.get("Content-Type", ""),
        date,
        request.headers.get("Host", ""),
        request.headers,
        request.rel_url.raw_path,
        parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True),
    )
    return None if hmac.compare_digest(signature, sign(creds.ocp_sk, text)) else "signature does not match"


# -- the task DAG --------------------------------------------------------------------------------


def _offsets() -> list[tuple[float, float]]:
    """(ready, end) of each step in weight units from the task start (the DAG is a chain)."""
    out: list[tuple[float, float]] = []
    t = 0.0
    for _, weight in DAG:
        out.append((t, t + weight))
        t += weight
    return out


_OFFSETS = _offsets()
_TOTAL = _OFFSETS[-1][1]


def task_id(job: SimJob) -> int:
    return int(job.id.removeprefix("ocp-"))


def _task_view(state: SimState, job: SimJob, *, key: str = "subtasks") -> dict[str, Any]:
    now = state.clock.now()
    x = job.extra
    unit = job.duration / _TOTAL
    outcome = job.outcome(now)
    t = job.progress_time(now)  # after a failure (or in a stall) nothing moves any more
    base = x["sub_base"]
    subtasks: list[dict[str, Any]] = []
    for i, (name, _) in enumerate(DAG):
        ready, end = (job.started + o * unit for o in _OFFSETS[i])
        start = ready + _DISPATCH * unit
        if job.fail and i == _FAIL_STEP and outcome == "failed":
            status = "FAILED"
        elif end <= t:
            status = "SUCCESSFUL"
        elif start <= t:
            status = "RUNNING"
        elif ready <= t:
            status = "READY"
        else:
            status = "PENDING"
        if i and subtasks[i - 1]["status"] != "SUCCESSFUL":
            status = "PENDING"  # downstream of a failed (or unfinished) subtask never starts
        sub: dict[str, Any] = {
            "id": base + i,
            "name": name,
            "description": name,
            "status": status,
            "operation": x["operations"].get(str(i), "EXECUTE"),
            "paralleIdx": -1,
            "upstreams": [base + i - 1] if i else [],
            "downstreams": [base + i + 1] if i + 1 < len(DAG) else [],
        }
        if status in ("RUNNING", "FAILED", "SUCCESSFUL"):
            sub["startTime"] = _iso(start)
        if status in ("FAILED", "SUCCESSFUL"):
            sub["finishTime"] = _iso(min(end, t))
            sub["runTime"] = round(min(end, t) - start)
        subtasks.append(sub)
    task: dict[str, Any] = {
        "id": task_id(job),
        "name": TASK_NAME,
        "taskDefinitionId": 30,
        "status": {"running": "RUNNING", "failed": "FAILED", "succeeded": "SUCCESSFUL"}[outcome],
        "type": "MANUAL",
        "operation": x["operation"],
        "cluster": x["cluster"],
        "creator": {"id": 100, "name": x["creator"]},
        "executor": "127.0.0.1",
        "prohibitRollback": False,
        "startTime": _iso(x["created"]),
        "context": (
            f"Context(parallelIdx=-1, stringMap={{cluster_version={job.from_version}, "
            f"cluster_name={x['cluster']['name']}, cluster_id={x['cluster']['id']}}}, "
            f"listMap={{upgrade_versions=[{job.to_version}]}})"
        ),
        key: subtasks,
    }
    if outcome != "running":
        task["finishTime"] = _iso(job.ends)
    return task


# -- request handling ----------------------------------------------------------------------------


def _zones(target: SimTarget) -> list[str]:
    return [str(z) for z in target.extra.get("zones", ["zone1", "zone2", "zone3"])]


def _os(target: SimTarget) -> str:
    return str(target.extra.get("operatingSystem", "el7"))


def _packages(target: SimTarget) -> dict[str, str]:
    """RPM file name -> version, for the packages "uploaded" for the target (the console pages'
    naming: ``oceanbase-x.x.x-YYYYMMDDhhmmss.el7.x86_64.rpm``)."""
    arch = target.extra.get("arch", "x86_64")
    return {f"oceanbase-{v}.{_os(target)}.{arch}.rpm": v for v in [target.version, *target.versions]}


def _allowed_versions(target: SimTarget) -> list[str]:
    """Versions newer than the current one (``versions`` is ordered old -> new)."""
    if target.version in target.versions:
        return target.versions[target.versions.index(target.version) + 1 :]
    return list(target.versions)


def _read_body(target: SimTarget, raw: bytes) -> tuple[dict[str, Any] | None, web.Response | None]:
    """The upgrade body checked as the target's OCP binds it: (fields, None) or (None, refusal)."""
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return None, _fail(
            400, "Malformed JSON request", debug="JSON parse error: the body must be a JSON object"
        )
    types = {
        "rpmFileName": str,
        "upgradeMode": str,
        "destVersion": str,
        "operatingSystem": str,
        "freezeServer": bool,
    }
    for name, kind in types.items():
        if name in body and body[name] is not None and not isinstance(body[name], kind):
            return None, _fail(
                400, "Malformed JSON request", debug=f"cannot deserialize {name} from {body[name]!r}"
            )
    zones = body.get("zoneOrder")
    if zones is not None and not (isinstance(zones, list) and all(isinstance(z, str) for z in zones)):
        return None, _fail(400, "Malformed JSON request", debug="zoneOrder must be an array of zone names")
    mode = target.extra.get("upgrade_body", "new")
    if mode not in UPGRADE_BODIES:
        raise ValueError(
            f"simulated OCP target {target.name}: upgrade_body must be new or legacy, not {mode!r}"
        )
    if mode == "legacy":  # only rpmFileName is known; the new fields are ignored (unknown properties)
        if not body.get("rpmFileName"):
            return None, _invalid([("rpmFileName", body.get("rpmFileName"), "must not be blank")])
        return {"rpmFileName": body["rpmFileName"]}, None
    missing = [
        (f, body.get(f), "must not be blank") for f in ("destVersion", "operatingSystem") if not body.get(f)
    ]
    if missing:
        return None, _invalid(missing)
    if body.get("upgradeMode") is not None and body["upgradeMode"] not in UPGRADE_MODES:
        return None, _invalid(
            [("upgradeMode", body["upgradeMode"], f"must be one of {', '.join(UPGRADE_MODES)}")]
        )
    return {
        k: body[k]
        for k in ("upgradeMode", "destVersion", "operatingSystem", "freezeServer", "zoneOrder")
        if k in body
    }, None


def _dest_version(target: SimTarget, body: dict[str, Any]) -> tuple[str | None, web.Response | None]:
    """The version the body asks for, or a refusal."""
    if "rpmFileName" in body:
        version = _packages(target).get(body["rpmFileName"])
        if version is None:
            return None, _fail(
                400,
                f"No records of the software package type found based on the rpmFileName={body['rpmFileName']} "
                "parameter. Please check and try again.",
                NOT_FOUND,
            )
    else:
        version = body["destVersion"]
        if body["operatingSystem"] != _os(target) or version not in (target.version, *target.versions):
            return None, _fail(
                400,
                f"No records of the software package type found based on the destVersion={version}, "
                f"operatingSystem={body['operatingSystem']} parameter. Please check and try again.",
                NOT_FOUND,
            )
        zones = body.get("zoneOrder")
        if zones is not None and (len(set(zones)) != len(zones) or set(zones) - set(_zones(target))):
            return None, _illegal(
                "zoneOrder", f"zones of {target.name} are {', '.join(_zones(target))}, each once"
            )
    if version not in _allowed_versions(target):
        return None, _illegal(
            "destVersion", f"{version} must be later than the cluster version {target.version}"
        )
    return version, None


def register(app: web.Application, state: SimState) -> None:
    """Add the OCP routes to ``app``."""
    state.error_bodies[SERVICE] = lambda status, code, message: error_body(status, code, message)

    def cluster_ref(target: SimTarget) -> dict[str, Any]:
        return {
            "id": int(target.id),
            "name": target.name,
            "obClusterId": target.extra.get("obClusterId", 1),
            "type": "PRIMARY",
        }

    def cluster_view(target: SimTarget) -> dict[str, Any]:
        busy = state.active_job(target, visible=True) is not None
        return {
            **cluster_ref(target),
            "obVersion": target.version,
            "status": "OPERATING" if busy else "RUNNING",
            "zones": [{"name": z} for z in _zones(target)],
        }

    async def authed(request: web.Request) -> tuple[bytes, web.Response | None]:
        body = await request.read()
        problem = _auth_problem(state, request, body)
        if problem is not None:
            state.stats.auth_failures[SERVICE] += 1
            return body, _fail(401, NOT_AUTHENTICATED, debug=problem)
        return body, None

    def target_or_404(cluster_id: str) -> SimTarget | web.Response:
        target = state.by_id(KIND, cluster_id) if cluster_id.isdigit() else None
        if target is None:
            return _fail(
                404,
                f"No records of the cluster type found based on the id={cluster_id} parameter. Please check and try again.",
                NOT_FOUND,
            )
        return target

    def task_or_404(raw_id: str) -> SimJob | web.Response:
        job = state.jobs.get(f"ocp-{raw_id}") if raw_id.isdigit() else None
        if not isinstance(job, SimJob):
            return _fail(404, f"The {raw_id} task does not exist.", TASK_NOT_EXISTS)
        state.refresh(state.targets[job.target_id])
        return job

    async def authed_task(request: web.Request, op: str) -> SimJob | web.Response:
        """The task a request names, once the caller is authenticated (counted under ``op``);
        the vendor's answer otherwise (401, 404)."""
        _, denied = await authed(request)
        if denied:
            return denied
        job = task_or_404(request.match_info["id"])
        if not isinstance(job, web.Response):
            state.count(op, job.target_id)
        return job

    def state_invalid(job: SimJob) -> web.Response:
        status = _task_view(state, job)["status"]
        return _fail(
            400,
            f"This operation is not supported for the {task_id(job)} task in the {status} state.",
            TASK_STATE_INVALID,
        )

    async def upgrade(request: web.Request) -> web.Response:
        raw, denied = await authed(request)
        if denied:
            return denied
        cluster_id = request.match_info["id"]
        target = target_or_404(cluster_id)
        if isinstance(target, web.Response):
            return target
        state.count("ocp.upgrade", cluster_id)
        body, refused = _read_body(target, raw)
        if refused is not None:
            return refused
        assert body is not None
        if state.active_job(target) is not None:
            return _fail(409, f"Operation not allowed in cluster {target.name}.", OPS_NOT_ALLOWED)
        version, refused = _dest_version(target, body)
        if refused is not None:
            return refused
        assert version is not None
        seq = int(state.new_id())
        job = state.start_job(
            target,
            version,
            service=SERVICE,
            job_id=f"ocp-{100000 + seq}",
            fail_at=_OFFSETS[_FAIL_STEP][1] / _TOTAL,
            extra={
                "sub_base": 200000 + 10 * seq,
                "operations": {},
                "operation": "EXECUTE",
                "cluster": cluster_ref(target),
                "creator": state.creds.ocp_user,
                "created": state.clock.now(),
                "rolled_back": False,
                "body": body,
            },
        )
        return _ok(_task_view(state, job, key="tasks"))

    async def get_task(request: web.Request) -> web.Response:
        job = await authed_task(request, "ocp.get_task")
        if isinstance(job, web.Response):
            return job
        return _ok(_task_view(state, job))

    async def list_tasks(request: web.Request) -> web.Response:
        _, denied = await authed(request)
        if denied:
            return denied
        query = request.query
        state.count("ocp.list_tasks", query.get("clusterId", "*"))
        numbers: dict[str, int] = {}
        for key, default, low, high in (
            ("page", "1", 1, 10**9),
            ("size", "10", 1, 2000),
            ("clusterId", "", 1, None),
        ):
            value = query.get(key, default)
            if not value and key == "clusterId":
                continue
            if not value.isdigit():
                return _fail(
                    400, f"The parameter '{key}' of value '{value}' could not be converted to type 'Long'"
                )
            if not low <= int(value) <= (high or int(value)):
                return _illegal(key, f"must be within {low}..{high}" if high else f"must be at least {low}")
            numbers[key] = int(value)
        statuses = [s for v in query.getall("status", []) for s in v.split(",") if s]
        if set(statuses) - set(TASK_STATUSES):
            return _illegal("status", f"must be among {', '.join(TASK_STATUSES)}")
        if query.get("type") is not None and query["type"] not in TASK_TYPES:
            return _illegal("type", f"must be one of {', '.join(TASK_TYPES)}")
        sort_field, _, direction = query.get("sort", "id,asc").partition(",")
        if sort_field not in _SORTABLE or direction.lower() not in ("", "asc", "desc"):
            return _illegal("sort", f"must be <field>[,asc|desc] with a field among {', '.join(_SORTABLE)}")
        jobs = [
            j
            for j in state.jobs.values()
            if isinstance(j, SimJob) and j.service == SERVICE and not lagging(j.created_real)
        ]
        if "clusterId" in numbers:
            jobs = [j for j in jobs if j.target_id == str(numbers["clusterId"])]
        cluster_name = query.get("clusterName") or query.get("cluterName")  # the doc's spelling, and OB-MCP's
        if cluster_name:
            jobs = [j for j in jobs if state.targets[j.target_id].name == cluster_name]
        for j in jobs:
            state.refresh(state.targets[j.target_id])
        views = [_task_view(state, j) for j in jobs]
        if statuses:
            views = [v for v in views if v["status"] in statuses]
        name = query.get("name")
        if name:
            views = [v for v in views if name.lower() in v["name"].lower()]
        views.sort(
            key=lambda v: (v.get(sort_field) is None, v.get(sort_field) or ""),
            reverse=direction.lower() == "desc",
        )
        page, size = numbers["page"], numbers["size"]
        chunk = views[(page - 1) * size : page * size]
        return _ok(
            {
                "contents": chunk,
                "page": {
                    "totalElements": len(views),
                    "totalPages": (len(views) + size - 1) // size,
                    "number": page,
                    "size": size,
                },
            }
        )

    async def retry(request: web.Request) -> web.Response:
        job = await authed_task(request, "ocp.retry")
        if isinstance(job, web.Response):
            return job
        now = state.clock.now()
        if job.outcome(now) != "failed" or job.extra["rolled_back"]:
            return state_invalid(job)
        unit = job.duration / _TOTAL
        target = state.targets[job.target_id]
        # Re-run from the failed subtask: shift the timeline so that subtask becomes READY now.
        job.started = now - _OFFSETS[_FAIL_STEP][0] * unit
        job.fail, job.stall = state.job_fate(target)
        job.extra["operations"][str(_FAIL_STEP)] = "RETRY"
        job.extra["operation"] = "RETRY"
        return _ok(_task_view(state, job))

    async def rollback(request: web.Request) -> web.Response:
        job = await authed_task(request, "ocp.rollback")
        if isinstance(job, web.Response):
            return job
        if job.outcome(state.clock.now()) != "failed":
            return state_invalid(job)
        job.extra["rolled_back"] = True
        job.extra["operations"][str(_FAIL_STEP)] = "ROLLBACK"
        job.extra["operation"] = "ROLLBACK"
        return _ok(_task_view(state, job))

    async def subtask_log(request: web.Request) -> web.Response:
        job = await authed_task(request, "ocp.subtask_log")
        if isinstance(job, web.Response):
            return job
        view = _task_view(state, job)
        sub = next((s for s in view["subtasks"] if str(s["id"]) == request.match_info["sid"]), None)
        if sub is None:
            return _fail(404, f"The {request.match_info['sid']} subtask does not exist.", TASK_NOT_EXISTS)
        lines = (
            [f"{sub.get('startTime', '')} INFO {sub['name']}: {sub['status']}"] if "startTime" in sub else []
        )
        if sub["status"] == "FAILED":
            lines.append(f"{sub['finishTime']} ERROR {job.fail_reason}")
        return _ok({"log": "\n".join(lines)})

    async def get_cluster(request: web.Request) -> web.Response:
        _, denied = await authed(request)
        if denied:
            return denied
        cluster_id = request.match_info["id"]
        target = target_or_404(cluster_id)
        if isinstance(target, web.Response):
            return target
        state.count("ocp.get_cluster", cluster_id)
        return _ok(cluster_view(target))

    async def unknown(request: web.Request) -> web.Response:
        _, denied = await authed(request)
        if denied:
            return denied
        return _fail(400, f"Could not find the {request.method} method for URL {request.path}")

    def add(method: str, path: str, handler: Any, op: str) -> None:
        route(app, state, SERVICE, method, path, handler, op=op)

    add("POST", "/api/v2/ob/clusters/{id}/upgrade", upgrade, "ocp.upgrade")
    add("GET", "/api/v2/ob/clusters/{id}", get_cluster, "ocp.get_cluster")
    add("GET", "/api/v2/tasks/instances", list_tasks, "ocp.list_tasks")
    add("GET", "/api/v2/tasks/instances/{id}", get_task, "ocp.get_task")
    add("POST", "/api/v2/tasks/instances/{id}/retry", retry, "ocp.retry")
    add("POST", "/api/v2/tasks/instances/{id}/rollback", rollback, "ocp.rollback")
    add("GET", "/api/v2/tasks/instances/{id}/subtasks/{sid}/log", subtask_log, "ocp.subtask_log")
    # Every other path (or method) under /api/v2/: OCP's envelope, not a plain-text 404.
    app.router.add_route("*", "/api/v2/{tail:.*}", unknown)
