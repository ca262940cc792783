"""Simulated CCE (``/api/v3``, kind ``cce``) and CCE Autopilot (``/autopilot/v3``, kind ``autopilot``).

Written from Huawei's documents (seed 003, the CCE upgrade page; seed 002; ``vendor-facts.md``
§2-3 with the SDK models it names), not from Upshift's client. Both services serve: the cluster,
``upgradeinfo`` and ``clusterupgradepaths`` (the allowed targets), pre-check (+ task), upgrade
(+ task, list, retry; CCE also pause/continue — Autopilot has no pause or continue, §3.3),
post-check (synchronous) and the v3.1 master snapshot (+ task list). Autopilot's upgrade workflow
is in ``simulator.huawei.autopilot``. Any other path under ``/api/v3``, ``/api/v3.1`` or
``/autopilot`` answers the API gateway's ``404 APIGW.0101``.

Strict where the pages are: every request body is checked for its mandatory fields, fixed
values and enums, and refused with ``400 {"errorCode": "CCE.01400001", "errorMessage":
"Invalid request: <field> ..."}`` (the code is the one third parties quote for a bad request;
UNCONFIRMED, vendor-facts §2.7). Fields the pages do not list are ignored, as a JSON API does.

State machines (phases are the documented ones):

- upgrade task: ``Init`` / ``Queuing`` at the very start, ``Running``, ``Pause`` (CCE, after
  pause), then ``Success`` or ``Failed`` (reason in ``status.message``); a stalled job stays
  ``Running`` at 50%. Without ``isOnlyUpgrade: true`` the upgrade runs its own pre-check first,
  so a target whose pre-check fails (below) also fails its upgrade at the start;
- pre-check task: ``Init``, ``Running``, then ``Success``, ``Failed`` (with the check items that
  failed) or ``Error``; ``SimTarget.extra["precheck"]`` = ``"fail"`` (two sample items: an
  ``Exception``/``Fatal`` node check and a ``Risk``/``Warning`` add-on check), ``"error"``, or a
  list of item objects (``{name, kind, group, level, message, errorCodes}``) makes it fail;
- ``upgradeinfo``: ``extra["upgradeinfo"] = "no_targets"`` leaves ``versionInfo.targetVersions``
  out (a client must then fall back on ``clusterupgradepaths``);
- post-check: answers at once, ``Success`` when the cluster runs the target version and no
  upgrade is running, else ``Failed``;
- snapshot task: ``status.phase`` Init -> Queuing -> Running -> Success (``extra["snapshot"] =
  "fail"``: Failed, its subtask saying why).

Operations (fault keys, stats counters), ``<s>`` being ``cce`` or ``autopilot``: ``<s>.cluster``,
``<s>.upgradeinfo``, ``<s>.upgrade_paths``, ``<s>.precheck`` (the POST and the GET of its task),
``<s>.upgrade``, ``<s>.upgrade_tasks`` (list), ``<s>.upgrade_task`` (GET by id),
``cce.upgrade_pause``, ``cce.upgrade_continue``, ``<s>.upgrade_retry``, ``<s>.postcheck``,
``<s>.snapshot``, ``<s>.snapshot_tasks``.

``list_lag_s``: an upgrade task or snapshot younger than it is left out of the task lists and the
cluster query still shows the pre-upgrade ``Available`` phase; ``GET .../upgrade/tasks/{id}`` and
the pre-check task by id are not affected. ``clock_skew_s`` shifts every timestamp.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from simulator.core import SimJob, SimState, SimTarget, lagging, route
from simulator.huawei._common import authed, cce_error, fault_body, huawei_sim, iso, no_such_api, read_json

__all__ = [
    "CHECK_FRACTION",
    "SNAPSHOT_FRACTION",
    "BadRequest",
    "check_spec",
    "check_workflow",
    "newer_versions",
    "register",
    "resolve_version",
    "task_phase",
    "timed_phase",
    "upgrade_action",
]

_VERSION = re.compile(r"^v\d+\.\d+(\.\d+)?(-r\d+)?$")
_RELEASE_PATCH = re.compile(r"^(?P<release>v\d+\.\d+(?:\.\d+)?)(?:-(?P<patch>r\d+))?$")
#: Fraction of a target's ``job_seconds`` a pre-check / snapshot takes.
CHECK_FRACTION = 0.05
SNAPSHOT_FRACTION = 0.1
#: A passed pre-check stays valid this long (``status.expireTimeStamp``; the length is not
#: documented, CCE.01400075 "the precheck has expired" says it ends).
CHECK_VALID_S = 24 * 3600.0
#: ``strategy.inPlaceRollingUpdate.scope`` (``in_place_rolling_update.py``).
SCOPES = ("Cluster", "NodePool")
#: ``nodeOrder[].nodeSelector.operator`` (``node_selector.py``).
OPERATORS = ("in", "notin", "exists", "!", "gt", "lt")
#: Pre-check item enums (``pre_check_item_status.py``).
ITEM_KINDS = ("Exception", "Risk")
ITEM_GROUPS = ("LimitCheck", "MasterCheck", "NodeCheck", "AddonCheck", "ExecuteException")
ITEM_LEVELS = ("Info", "Warning", "Fatal")
#: What ``extra["precheck"] = "fail"`` reports. The API documents the item shape and enums, not
#: the item catalogue: names, messages and codes here are sample values.
SAMPLE_FAILED_ITEMS = (
    {
        "name": "NodeStatus",
        "kind": "Exception",
        "group": "NodeCheck",
        "level": "Fatal",
        "message": "node 192.168.0.12 is NotReady: upgrade needs every node Ready",
        "errorCodes": ["Node.0002"],
    },
    {
        "name": "AddonCompatibility",
        "kind": "Risk",
        "group": "AddonCheck",
        "level": "Warning",
        "message": "add-on everest 2.1.9 is not verified with the target version",
        "errorCodes": ["Addon.0106"],
    },
)


class BadRequest(Exception):
    """A request body that does not follow the page: answered 400 ``CCE.01400001``."""


def _bad(exc: BadRequest) -> web.Response:
    return cce_error(400, "CCE.01400001", f"Invalid request: {exc}")


# -- body checks -------------------------------------------------------------------------------


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{where} is required and must be an object")
    return value


def _text(value: Any, where: str, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{where} is required and must be a non-empty string")
    return value


def _fixed(value: Any, where: str, allowed: tuple[str, ...], *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if value not in allowed:
        raise BadRequest(f"{where} must be one of {', '.join(allowed)} (got {value!r})")
    return value


def _integer(value: Any, where: str, lo: int, hi: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < lo or (hi is not None and value > hi):
        bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise BadRequest(f"{where} must be an integer {bound} (got {value!r})")
    return value


def _no_body(raw: bytes, doc: Any) -> None:
    """Calls documented without a body: nothing, or an empty JSON object, is accepted."""
    if raw.strip() and doc != {}:
        raise BadRequest("this call takes no body")


def upgrade_action(doc: Any, *, autopilot: bool, max_step: int) -> dict[str, Any]:
    """The ``clusterUpgradeAction`` of an upgrade body, after checking it against the page.

    Seed 003 (CCE): ``metadata{apiVersion v3, kind UpgradeTask}`` and ``spec.clusterUpgradeAction
    {strategy, targetVersion}`` mandatory; ``addons[]{addonTemplateName, operation "patch",
    version, values?}``, ``nodePoolOrder{pool: int}``, ``nodeOrder{pool: [{nodeSelector{key,
    value[]?, operator}, priority}]}`` optional; SDK: ``strategy.type`` inPlaceRollingUpdate,
    ``inPlaceRollingUpdate{userDefinedStep 1..max, scope?}``, ``isOnlyUpgrade`` bool. Autopilot
    (§3.3): the key may also be Terraform's ``autopilotClusterUpgradeAction`` and whether
    ``strategy`` is required is UNCONFIRMED, so both readings pass.
    """
    body = _obj(doc, "body")
    meta = _obj(body.get("metadata"), "metadata")
    _fixed(meta.get("apiVersion"), "metadata.apiVersion", ("v3",))
    _fixed(meta.get("kind"), "metadata.kind", ("UpgradeTask",))
    spec = _obj(body.get("spec"), "spec")
    key = "clusterUpgradeAction"
    if autopilot and key not in spec and "autopilotClusterUpgradeAction" in spec:
        key = "autopilotClusterUpgradeAction"
    where = f"spec.{key}"
    action = _obj(spec.get(key), where)
    wanted = _text(action.get("targetVersion"), f"{where}.targetVersion")
    assert wanted is not None
    if not _VERSION.match(wanted):
        raise BadRequest(
            f"{where}.targetVersion {wanted!r} is not a cluster version like v1.29 or v1.29.3-r0"
        )
    strategy = action.get("strategy")
    if strategy is not None or not autopilot:
        strategy = _obj(strategy, f"{where}.strategy")
        _fixed(strategy.get("type"), f"{where}.strategy.type", ("inPlaceRollingUpdate",))
        rolling = strategy.get("inPlaceRollingUpdate")
        if rolling is not None:
            rolling = _obj(rolling, f"{where}.strategy.inPlaceRollingUpdate")
            base = f"{where}.strategy.inPlaceRollingUpdate"
            _integer(rolling.get("userDefinedStep"), f"{base}.userDefinedStep", 1, max_step)
            _fixed(rolling.get("scope"), f"{base}.scope", SCOPES, required=False)
    addons = action.get("addons")
    if addons is not None:
        if not isinstance(addons, list):
            raise BadRequest(f"{where}.addons must be an array")
        for i, addon in enumerate(addons):
            at = f"{where}.addons[{i}]"
            addon = _obj(addon, at)
            _text(addon.get("addonTemplateName"), f"{at}.addonTemplateName")
            _fixed(addon.get("operation"), f"{at}.operation", ("patch",))
            _text(addon.get("version"), f"{at}.version")
            if addon.get("values") is not None:
                _obj(addon["values"], f"{at}.values")
    pools = action.get("nodePoolOrder")
    if pools is not None:
        for pool, priority in _obj(pools, f"{where}.nodePoolOrder").items():
            _integer(priority, f"{where}.nodePoolOrder[{pool}]", 0)
    nodes = action.get("nodeOrder")
    if nodes is not None:
        for pool, batches in _obj(nodes, f"{where}.nodeOrder").items():
            if not isinstance(batches, list):
                raise BadRequest(f"{where}.nodeOrder[{pool}] must be an array")
            for i, batch in enumerate(batches):
                at = f"{where}.nodeOrder[{pool}][{i}]"
                batch = _obj(batch, at)
                selector = _obj(batch.get("nodeSelector"), f"{at}.nodeSelector")
                _text(selector.get("key"), f"{at}.nodeSelector.key")
                _fixed(selector.get("operator"), f"{at}.nodeSelector.operator", OPERATORS)
                values = selector.get("value")
                if values is not None and not (
                    isinstance(values, list) and all(isinstance(v, str) for v in values)
                ):
                    raise BadRequest(f"{at}.nodeSelector.value must be an array of strings")
                _integer(batch.get("priority"), f"{at}.priority", 0)
    only = action.get("isOnlyUpgrade")
    if only is not None and not isinstance(only, bool):
        raise BadRequest(f"{where}.isOnlyUpgrade must be a boolean")
    return action


def check_spec(doc: Any, kind: str) -> dict[str, Any]:
    """A pre-/post-check body: ``apiVersion`` v3, ``kind`` PreCheckTask | PostCheckTask, ``spec``.

    The pre-check page (2024-11) marks ``spec.clusterID``, ``clusterVersion`` (the current patch
    version) and ``targetVersion`` mandatory, ``skippedCheckItemList[]{name, resourceSelector{key
    "node.uid", values[], operator "In"}}`` optional. For the post-check the SDK marks the spec
    fields optional; the simulator needs ``targetVersion`` to know what to check."""
    body = _obj(doc, "body")
    _fixed(body.get("apiVersion"), "apiVersion", ("v3",))
    _fixed(body.get("kind"), "kind", (kind,))
    spec = _obj(body.get("spec"), "spec")
    pre = kind == "PreCheckTask"
    _text(spec.get("clusterID"), "spec.clusterID", required=pre)
    _text(spec.get("clusterVersion"), "spec.clusterVersion", required=pre)
    _text(spec.get("targetVersion"), "spec.targetVersion")
    skipped = spec.get("skippedCheckItemList")
    if pre and skipped is not None:
        if not isinstance(skipped, list):
            raise BadRequest("spec.skippedCheckItemList must be an array")
        for i, item in enumerate(skipped):
            item = _obj(item, f"spec.skippedCheckItemList[{i}]")
            selector = item.get("resourceSelector")
            if selector is not None:
                at = f"spec.skippedCheckItemList[{i}].resourceSelector"
                selector = _obj(selector, at)
                _fixed(selector.get("key"), f"{at}.key", ("node.uid",))
                _fixed(selector.get("operator"), f"{at}.operator", ("In",))
    return spec


def check_workflow(doc: Any) -> dict[str, Any]:
    """An upgrade workflow body (seed 002 tables 3-4): ``kind`` WorkFlowTask, ``apiVersion`` v3,
    ``spec{clusterID, targetVersion}`` mandatory, ``spec.clusterVersion`` optional."""
    body = _obj(doc, "body")
    _fixed(body.get("kind"), "kind", ("WorkFlowTask",))
    _fixed(body.get("apiVersion"), "apiVersion", ("v3",))
    spec = _obj(body.get("spec"), "spec")
    _text(spec.get("clusterID"), "spec.clusterID")
    _text(spec.get("clusterVersion"), "spec.clusterVersion", required=False)
    _text(spec.get("targetVersion"), "spec.targetVersion")
    return spec


# -- versions and phases -----------------------------------------------------------------------


def resolve_version(target: SimTarget, wanted: str) -> str | None:
    """``v1.28`` names the newest ``v1.28.x-rN`` the target may go to; exact names match themselves."""
    if wanted in target.versions:
        return wanted
    matches = [v for v in target.versions if v.startswith(wanted + ".") or v.startswith(wanted + "-")]
    return matches[-1] if matches else None


def newer_versions(target: SimTarget) -> list[str]:
    """The versions ``target`` may be upgraded to now (``versions`` after the current one)."""
    if target.version in target.versions:
        return target.versions[target.versions.index(target.version) + 1 :]
    return list(target.versions)


def _line(version: str) -> str:
    """``v1.28.5-r0`` -> ``v1.28`` (how ``clusterupgradepaths`` names versions from v1.21 on)."""
    match = re.match(r"^(v\d+\.\d+)", version)
    return match.group(1) if match else version


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


def timed_phase(state: SimState, record: Mapping[str, Any]) -> str:
    """A check's / snapshot's phase: Init (first 10%), Running, then its ``result``."""
    elapsed = state.clock.now() - record["started"]
    if elapsed < 0.1 * record["duration"]:
        return "Init"
    if elapsed < record["duration"]:
        return "Running"
    return record.get("result", "Success")


def _precheck_outcome(target: SimTarget) -> tuple[str, list[dict[str, Any]], str | None]:
    """(result phase, failed items, message) the target's pre-check knob asks for."""
    knob = target.extra.get("precheck")
    if knob == "error":
        item = {
            "name": "CheckProcess",
            "kind": "Exception",
            "group": "ExecuteException",
            "level": "Fatal",
            "message": "the check process could not complete",
            "errorCodes": [],
        }
        return "Error", [item], "pre-upgrade check could not be executed"
    if knob == "fail":
        items = [dict(i) for i in SAMPLE_FAILED_ITEMS]
    elif isinstance(knob, list) and knob:
        items = [dict(i) for i in knob]
    else:
        return "Success", [], None
    for item in items:
        item["phase"] = "Failed"
        _fixed(item.get("kind"), "precheck item kind", ITEM_KINDS)
        _fixed(item.get("group"), "precheck item group", ITEM_GROUPS)
        _fixed(item.get("level"), "precheck item level", ITEM_LEVELS)
    blocking = sum(1 for i in items if i["kind"] == "Exception")
    return "Failed", items, f"{len(items)} check item(s) failed, {blocking} must be fixed before upgrading"


def _check_status(state: SimState, record: Mapping[str, Any]) -> dict[str, Any]:
    """``PrecheckStatus``: phase, expireTimeStamp, message, and the items per cluster / add-on / node."""
    phase = timed_phase(state, record)
    done = phase in ("Success", "Failed", "Error")
    items = record.get("items", []) if done else []
    group_phase = "Running" if not done else ("Failed" if items else "Success")

    def of(groups: tuple[str, ...]) -> list[dict[str, Any]]:
        return [i for i in items if i["group"] in groups]

    node_items = of(("NodeCheck",))
    status: dict[str, Any] = {
        "phase": phase,
        "clusterCheckStatus": {
            "phase": group_phase,
            "itemsStatus": of(("LimitCheck", "MasterCheck", "ExecuteException")),
        },
        "addonCheckStatus": {"phase": group_phase, "itemsStatus": of(("AddonCheck",))},
        "nodeCheckStatus": {
            "phase": group_phase,
            "nodeStageStatus": [
                {
                    "nodeInfo": {
                        "uid": f"{record['cluster']}-node-1",
                        "name": "node-1",
                        "status": "Active",
                        "nodeType": "node",
                    },
                    "itemsStatus": node_items,
                }
            ]
            if node_items
            else [],
        },
    }
    if phase == "Success":
        status["expireTimeStamp"] = iso(record["started"] + record["duration"] + CHECK_VALID_S)
    if phase in ("Failed", "Error"):
        status["message"] = record.get("message")
    return status


# -- the routes --------------------------------------------------------------------------------


def _register_service(
    app: web.Application, state: SimState, service: str, kind: str, prefix: str, snapshot_prefix: str
) -> None:
    sim = huawei_sim(state)
    autopilot = kind == "autopilot"
    base = prefix + "/projects/{project_id}/clusters/{cluster_id}"
    snap = snapshot_prefix + "/projects/{project_id}/clusters/{cluster_id}/operation/snapshot"

    def add(method: str, path: str, handler: Any, op: str) -> None:
        async def checked(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except BadRequest as exc:
                return _bad(exc)

        route(
            app,
            state,
            service,
            method,
            path,
            authed(state, service, checked, request_ids=True),
            op=f"{service}.{op}",
        )

    def target_of(request: web.Request) -> SimTarget | None:
        return state.by_id(kind, request.match_info["cluster_id"])

    def missing(request: web.Request) -> web.Response:
        return cce_error(404, "CCE.01404001", f"Cluster {request.match_info['cluster_id']} not found")

    def latest_job(target: SimTarget, *, visible: bool = False) -> SimJob | None:
        jobs = [j for j in state.jobs_of(target.id, visible=visible) if j.service == service]
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

    async def upgradeinfo(request: web.Request) -> web.Response:
        """``ShowClusterUpgradeInfo``: ``spec{lastUpgradeInfo, versionInfo{release, patch,
        suggestPatch, targetVersions}}`` (``upgrade_info_spec.py``, ``upgrade_version_info.py``)."""
        target = target_of(request)
        if target is None:
            return missing(request)
        state.count(f"{service}.upgradeinfo", target.id)
        match = _RELEASE_PATCH.match(target.version)
        release, patch = (match["release"], match["patch"]) if match else (target.version, None)
        version_info: dict[str, Any] = {"release": release}
        if target.extra.get("upgradeinfo") != "no_targets":
            version_info["targetVersions"] = newer_versions(target)
        if patch:
            version_info |= {"patch": patch, "suggestPatch": patch}
        spec: dict[str, Any] = {"versionInfo": version_info}
        job = latest_job(target, visible=True)
        if job is not None:
            phase, frac = task_phase(state, job)
            spec["lastUpgradeInfo"] = {
                "phase": "Running" if phase == "Queuing" else phase,
                "progress": str(int(frac * 100)),
                "completionTime": iso(job.ends) if phase in ("Success", "Failed") else None,
            }
        return web.json_response(
            {"kind": "UpgradeInfo", "apiVersion": "v3", "metadata": {"uid": target.id}, "spec": spec}
        )

    async def upgrade_paths(request: web.Request) -> web.Response:
        """``ListClusterUpgradePaths``: the region's paths, from every cluster of this kind."""
        state.count(f"{service}.upgrade_paths", "*")
        paths: dict[str, set[str]] = {}
        for target in state.targets.values():
            if target.kind == kind:
                state.refresh(target)
                paths.setdefault(_line(target.version), set()).update(
                    _line(v) for v in newer_versions(target)
                )
        items = [
            {"version": version, "platformVersion": "cce.10.0", "targetVersions": sorted(targets)}
            for version, targets in sorted(paths.items())
        ]
        return web.json_response(
            {"kind": "UpgradePath", "apiVersion": "v3", "metadata": {}, "upgradePaths": items}
        )

    async def precheck(request: web.Request) -> web.Response:
        target = target_of(request)
        if target is None:
            return missing(request)
        state.count(f"{service}.precheck", target.id)
        spec = check_spec(await read_json(request), "PreCheckTask")
        if spec["clusterVersion"] != target.version:
            raise BadRequest(
                f"spec.clusterVersion {spec['clusterVersion']} is not the cluster's current version {target.version}"
            )
        resolved = resolve_version(target, spec["targetVersion"])
        if resolved is None or resolved not in newer_versions(target):
            return cce_error(400, "CCE.01400001", f"Unsupported target version {spec['targetVersion']}")
        result, items, message = _precheck_outcome(target)
        uid = sim.uid(state)
        now = state.clock.now()
        sim.checks[uid] = {
            "cluster": target.id,
            "service": service,
            "started": now,
            "duration": state.durations.draw(uid, target.id, now, target.job_seconds * CHECK_FRACTION),
            "from": target.version,
            "target": resolved,
            "type": "PreCheck",
            "result": result,
            "items": items,
            "message": message,
            "created_real": time.monotonic(),
        }
        return web.json_response(_precheck_view(uid))

    def _precheck_view(uid: str) -> dict[str, Any]:
        record = sim.checks[uid]
        return {
            "kind": "PreCheckTask",
            "apiVersion": "v3",
            "metadata": {
                "uid": uid,
                "creationTimestamp": iso(record["started"]),
                "updateTimestamp": iso(state.clock.now()),
            },
            "spec": {
                "clusterID": record["cluster"],
                "clusterVersion": record["from"],
                "targetVersion": record["target"],
            },
            "status": _check_status(state, record),
        }

    async def precheck_task(request: web.Request) -> web.Response:
        target = target_of(request)
        if target is None:
            return missing(request)
        record = sim.checks.get(request.match_info["task_id"])
        if record is None or record["cluster"] != target.id or record["type"] != "PreCheck":
            return cce_error(404, "CCE.01404001", "Pre-check task not found")
        state.count(f"{service}.precheck", target.id)
        return web.json_response(_precheck_view(request.match_info["task_id"]))

    async def postcheck(request: web.Request) -> web.Response:
        """Synchronous (``postcheck_cluster_response_body_status.py``: Success | Failed | Error)."""
        target = target_of(request)
        if target is None:
            return missing(request)
        state.count(f"{service}.postcheck", target.id)
        spec = check_spec(await read_json(request), "PostCheckTask")
        resolved = resolve_version(target, spec["targetVersion"]) or spec["targetVersion"]
        ok = target.version == resolved and state.active_job(target) is None
        uid = sim.uid(state)
        now = state.clock.now()
        sim.checks[uid] = {
            "cluster": target.id,
            "service": service,
            "started": now,
            "duration": 0.0,
            "from": spec.get("clusterVersion"),
            "target": resolved,
            "type": "PostCheck",
            "result": "Success" if ok else "Failed",
            "created_real": time.monotonic(),
        }
        return web.json_response(
            {
                "kind": "PostCheckTask",
                "apiVersion": "v3",
                "metadata": {"uid": uid, "creationTimestamp": iso(now)},
                "spec": {
                    "clusterID": target.id,
                    "clusterVersion": spec.get("clusterVersion"),
                    "targetVersion": resolved,
                },
                "status": {"phase": "Success" if ok else "Failed"},
            }
        )

    async def upgrade(request: web.Request) -> web.Response:
        target = target_of(request)
        if target is None:
            return missing(request)
        state.count(f"{service}.upgrade", target.id)
        action = upgrade_action(
            await read_json(request), autopilot=autopilot, max_step=sim.max_user_defined_step
        )
        wanted = action["targetVersion"]
        resolved = resolve_version(target, wanted)
        if resolved is None:
            return cce_error(400, "CCE.01400001", f"Unsupported target version {wanted}")
        if state.active_job(target) is not None:
            return cce_error(
                409, "CCE.01409001", "The cluster is being upgraded: another upgrade task is running"
            )
        if resolved not in newer_versions(target):
            return cce_error(
                400, "CCE.01400001", f"Target version {wanted} is not newer than {target.version}"
            )
        uid = sim.uid(state)
        job = state.start_job(target, resolved, service=service, job_id=uid)
        job.extra["created"] = job.started
        job.extra["action"] = action  # what the client asked for, for tests and /_sim/fleet readers
        check, items, _ = _precheck_outcome(target)
        if check != "Success" and not action.get("isOnlyUpgrade"):
            # The upgrade's own pre-check (isOnlyUpgrade false, the default) stops it at once.
            job.fail, job.stall, job.fail_at = True, False, 0.02
            job.fail_reason = "pre-upgrade check failed: " + "; ".join(i["name"] for i in items)
        strategy = action.get("strategy") or {"type": "inPlaceRollingUpdate"}
        return web.json_response(
            {
                "metadata": {"uid": uid},
                "spec": {
                    "clusterUpgradeAction": {
                        "version": job.from_version,
                        "targetVersion": resolved,
                        "targetPlatformVersion": "cce.10",
                        "strategy": strategy,
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
        return web.json_response({"apiVersion": "v3", "kind": "List", "metadata": {}, "items": items})

    async def control(request: web.Request, action: str) -> web.StreamResponse:
        target = target_of(request)
        if target is None:
            return missing(request)
        state.count(f"{service}.upgrade_{action}", target.id)
        raw = await request.read()
        _no_body(raw, await read_json(request))
        job = latest_job(target)
        if job is None:
            return cce_error(400, "CCE.01400001", "No upgrade task on this cluster")
        phase = task_phase(state, job)[0]
        now = state.clock.now()
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
        return web.Response(status=200)  # no body (vendor-facts §2.1)

    def controller(action: str) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await control(request, action)

        return handler

    async def snapshot(request: web.Request) -> web.Response:
        """``CreateClusterMasterSnapshot``: no body -> ``{uid, metadata{apiVersion, kind}}``."""
        target = target_of(request)
        if target is None:
            return missing(request)
        state.count(f"{service}.snapshot", target.id)
        _no_body(await request.read(), await read_json(request))
        uid = sim.uid(state)
        sim.snapshots[uid] = {
            "cluster": target.id,
            "service": service,
            "started": (now := state.clock.now()),
            "duration": state.durations.draw(uid, target.id, now, target.job_seconds * SNAPSHOT_FRACTION),
            "type": "Snapshot",
            "result": "Failed" if target.extra.get("snapshot") == "fail" else "Success",
            "subtask": sim.uid(state),
            "created_real": time.monotonic(),
        }
        return web.json_response({"uid": uid, "metadata": {"apiVersion": "v3.1", "kind": "SnapshotTask"}})

    def _snapshot_view(uid: str, rec: Mapping[str, Any]) -> dict[str, Any]:
        phase = timed_phase(state, rec)
        elapsed = state.clock.now() - rec["started"]
        if phase == "Running" and elapsed < 0.2 * rec["duration"]:
            phase = "Queuing"
        done = phase in ("Success", "Failed")
        progress = 100 if done else int(100 * elapsed / max(rec["duration"], 1e-9))
        created, updated = iso(rec["started"]), iso(state.clock.now())
        return {
            "kind": "SnapshotTask",
            "apiVersion": "v3.1",
            "metadata": {"uid": uid, "creationTimestamp": created, "updateTimestamp": updated},
            "spec": {
                "items": [
                    {
                        "id": rec["subtask"],
                        "type": "master-backup",
                        "status": phase,
                        "creationTimestamp": created,
                        "updateTimestamp": updated,
                        "message": "EVS snapshot of the master disks failed" if phase == "Failed" else "",
                    }
                ]
            },
            "status": {
                "phase": phase,
                "progress": str(progress),
                "completionTime": iso(rec["started"] + rec["duration"]) if done else None,
            },
        }

    async def snapshot_tasks(request: web.Request) -> web.Response:
        """``ListClusterMasterSnapshotTasks``: ``{apiVersion, kind, metadata, items[],
        status{latestBackupTime}}`` (``list_cluster_master_snapshot_tasks_response.py``)."""
        target = target_of(request)
        if target is None:
            return missing(request)
        state.count(f"{service}.snapshot_tasks", target.id)
        mine = [
            (uid, rec)
            for uid, rec in sim.snapshots.items()
            if rec["cluster"] == target.id and rec["service"] == service and not lagging(rec["created_real"])
        ]
        done = [rec["started"] + rec["duration"] for _, rec in mine if timed_phase(state, rec) == "Success"]
        return web.json_response(
            {
                "apiVersion": "v3.1",
                "kind": "List",
                "metadata": {},
                "items": [_snapshot_view(uid, rec) for uid, rec in mine],
                "status": {"latestBackupTime": iso(max(done)) if done else None},
            }
        )

    add("GET", base, cluster, "cluster")
    add("GET", base + "/upgradeinfo", upgradeinfo, "upgradeinfo")
    add("GET", prefix + "/clusterupgradepaths", upgrade_paths, "upgrade_paths")
    add("POST", base + "/operation/precheck", precheck, "precheck")
    add("GET", base + "/operation/precheck/tasks/{task_id}", precheck_task, "precheck")
    add("POST", base + "/operation/upgrade", upgrade, "upgrade")
    add("GET", base + "/operation/upgrade/tasks", upgrade_tasks, "upgrade_tasks")
    add("GET", base + "/operation/upgrade/tasks/{task_id}", upgrade_task, "upgrade_task")
    for action in ("retry",) if autopilot else ("pause", "continue", "retry"):
        add("POST", base + f"/operation/upgrade/{action}", controller(action), f"upgrade_{action}")
    add("POST", base + "/operation/postcheck", postcheck, "postcheck")
    add("POST", snap, snapshot, "snapshot")
    add("GET", snap + "/tasks", snapshot_tasks, "snapshot_tasks")


def register(app: web.Application, state: SimState) -> None:
    body = fault_body(lambda status, code, msg: {"errorCode": f"CCE.01{status}0001", "errorMessage": msg})
    state.error_bodies["cce"] = body
    state.error_bodies["autopilot"] = body
    _register_service(app, state, "cce", "cce", "/api/v3", "/api/v3.1")
    _register_service(app, state, "autopilot", "autopilot", "/autopilot/v3", "/autopilot/v3.1")
    # Registered after every CCE route: the gateway's answer for anything else under its prefixes.
    for prefix in ("/api/v3/", "/api/v3.1/"):
        app.router.add_route("*", prefix + "{tail:.*}", no_such_api)
