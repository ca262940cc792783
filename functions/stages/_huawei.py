"""CCE and CCE Autopilot share their cluster calls (Autopilot's client is CCE's under another
prefix): precheck, upgrade, postcheck. The per-kind modules only name the kind and its client.

Where an impossible target is refused: not at plan time — ``plan_upgrades`` is pure policy and
makes no vendor call — but by the run's first stage, in its window, just before it starts
anything at the vendor: CCE's ``precheck`` and Autopilot's ``workflow`` read ``GET
.../upgradeinfo`` (and ``clusterupgradepaths`` when it lists no targets; :func:`allowed_target`)
and refuse with ``upgrade.target_not_allowed``, naming the versions CCE offers, before any task or
workflow exists. The pre-check reads it too, for the ``clusterVersion`` it must send (the
cluster's current patch version).
"""

from __future__ import annotations

from typing import TypeVar

from events.catalog import JobPoll, StageRequested
from shared.clouds.errors import TransientCloudError
from shared.clouds.huawei.cce import ClusterUpgradeClient
from shared.clouds.huawei.models.cce import CheckTask, UpgradeInfo
from shared.domain.fleet import Target
from shared.domain.versions import names, reached
from shared.engine.contract import ALREADY_DONE, Done, Job, JobStatus, Refused, VendorCall, required
from shared.engine.vendor_clock import Since, recent

#: The cluster client of the kind: ``CceClient`` or ``AutopilotClient`` (each stage module names
#: its kind and returns its client from ``ctx.clouds``).
H = TypeVar("H", bound=ClusterUpgradeClient)

__all__ = [
    "NOT_ALLOWED",
    "ClusterPostcheck",
    "ClusterPrecheck",
    "ClusterUpgrade",
    "allowed_target",
    "cluster_id",
    "offered",
    "precheck_failure",
    "task_status",
]

#: Phases of CCE tasks (upgrade: Init|Queuing|Running|Pause|Success|Failed; checks add Error).
_FAILED = frozenset({"Failed", "Error"})
#: ``stage.failed`` code of a target CCE does not offer this cluster.
NOT_ALLOWED = "upgrade.target_not_allowed"


def cluster_id(target: Target) -> str:
    return required(target, "cluster_id", target.cluster_id)


def task_status(phase: str, progress: str | None, message: str | None, code: str) -> JobStatus:
    if phase == "Success":
        return JobStatus("succeeded", phase)
    if phase in _FAILED:
        return JobStatus("failed", phase, message or f"task ended {phase}", code)
    return JobStatus("running", f"{phase}:{progress or ''}")


def offered(kind: str, targets: list[str], to: str) -> bool:
    """Is ``to`` among ``targets``? Either side may name a line (``v1.29``) the other resolves."""
    return any(names(kind, t, to) or names(kind, to, t) for t in targets)


async def allowed_target(
    kind: str, client: ClusterUpgradeClient, target: Target, req: StageRequested
) -> UpgradeInfo:
    """The cluster's ``upgradeinfo``; :class:`Refused` when ``req.to_version`` is not among the
    versions CCE offers it: ``versionInfo.targetVersions``, or, when that answer carries no list,
    the region's ``clusterupgradepaths`` entry for the cluster's version. With neither (nothing
    to judge by) the vendor's own checks decide."""
    try:
        info = await client.upgrade_info(cluster_id(target))
        targets, source = info.target_versions, "upgradeinfo versionInfo.targetVersions"
        current = info.current_version or req.from_version
        if targets is None and current:
            source = "clusterupgradepaths"
            paths = [p for p in await client.upgrade_paths() if p.version and names(kind, current, p.version)]
            targets = sorted({t for p in paths for t in p.targetVersions}) if paths else None
    except TransientCloudError as exc:
        # A read that failed before the stage's call: nothing was started, whatever its status
        # says, so the claim is released and retried rather than reconciled.
        exc.maybe_applied = False
        raise
    if targets is not None and not offered(kind, targets, req.to_version):
        raise Refused(
            NOT_ALLOWED,
            f"{req.to_version} is not an upgrade target of cluster {cluster_id(target)} at {current};"
            f" CCE offers {', '.join(targets) or 'none'} ({source})",
        )
    return info


def precheck_failure(task: CheckTask) -> JobStatus:
    """A failed pre-check as ``stage.failed`` material: every failed item (``kind``, ``level``,
    ``group``, name, message, ``errorCodes``), blocking ones first, after the task's own message;
    the code is the first item's first error code (``precheck.failed`` when none has one)."""
    status = task.status
    items = status.failed_items()
    parts = [status.message or f"pre-check ended {status.phase}"]
    parts += [item.describe() for item in items]
    codes = [code for item in items for code in item.errorCodes]
    return JobStatus("failed", status.phase, "; ".join(parts), codes[0] if codes else "precheck.failed")


class ClusterPrecheck(VendorCall[H]):
    """Refuses a target CCE does not offer (``upgradeinfo``), then starts a pre-check task with
    the current version it reports; followed with ``get_precheck``. A failed check fails the
    stage with its items (:func:`precheck_failure`).

    Claimed so duplicates make one check; a lost answer is reconciled by checking again (a check
    changes nothing on the cluster)."""

    stage = "precheck"
    safe_to_repeat = True

    async def start(self, client: H, target: Target, req: StageRequested) -> Job:
        info = await allowed_target(self.kind, client, target, req)
        current = info.current_version or (await client.get_cluster(cluster_id(target))).version
        task = await client.precheck(
            cluster_id(target), cluster_version=current, target_version=req.to_version
        )
        return Job(task.uid)

    async def status(self, client: H, target: Target, poll: JobPoll) -> JobStatus:
        task = await client.get_precheck(cluster_id(target), poll.job_id)
        if task.status.phase in _FAILED:
            return precheck_failure(task)
        return task_status(task.status.phase, task.status.progress, task.status.message, "precheck.failed")


class ClusterUpgrade(VendorCall[H]):
    """Starts the in-place rolling upgrade with the target's step and ``cce:`` options;
    reconciled from the task list and the cluster version."""

    stage = "upgrade"

    async def start(self, client: H, target: Target, req: StageRequested) -> Job:
        answer = await client.upgrade(
            cluster_id(target),
            req.to_version,
            user_defined_step=target.strategy.user_defined_step,
            options=target.cce,
        )
        return Job(answer.metadata.uid)

    async def find_existing(
        self, client: H, target: Target, req: StageRequested, since: Since
    ) -> Job | Done | None:
        tasks = [
            t
            for t in await client.list_upgrade_tasks(cluster_id(target))
            if names(self.kind, t.spec.get("targetVersion"), req.to_version)
        ]
        tasks.sort(key=lambda t: t.metadata.creationTimestamp or "")
        for task in reversed(tasks):  # newest first
            if task.status.phase == "Success":
                return Done(task.uid)
            if task.status.phase not in _FAILED or recent(task.metadata.creationTimestamp, since):
                return Job(task.uid)  # running, or failed after our claim: its outcome is ours
        cluster = await client.get_cluster(cluster_id(target))
        return ALREADY_DONE if reached(self.kind, cluster.version, req.to_version) else None

    async def status(self, client: H, target: Target, poll: JobPoll) -> JobStatus:
        task = await client.get_upgrade_task(cluster_id(target), poll.job_id)
        return task_status(task.status.phase, task.status.progress, task.status.message, "upgrade.failed")


class ClusterPostcheck(VendorCall[H]):
    """The post-check is synchronous (vendor-facts §2.3: the answer's ``status.phase`` is
    Success | Failed | Error, and there is no post-check task to query): one unclaimed call that
    ends the stage either way. ``clusterVersion`` is the version before the upgrade,
    ``targetVersion`` the one it went to."""

    stage = "postcheck"
    claimed = False

    async def start(self, client: H, target: Target, req: StageRequested) -> Done:
        task = await client.postcheck(
            cluster_id(target), cluster_version=req.from_version or None, target_version=req.to_version
        )
        phase = task.status.phase
        if phase == "Success":
            return Done(task.uid or None)
        if phase in _FAILED:
            raise Refused("postcheck.failed", task.status.message or f"post-check ended {phase}")
        # Off the documented answers: there is nothing to wait for, so say what came back.
        raise Refused("postcheck.unknown_phase", f"post-check answered phase {phase or '(none)'!r}")
