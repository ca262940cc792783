"""CCE and CCE Autopilot share their cluster calls (Autopilot's client is CCE's under another
prefix): precheck, upgrade, postcheck. The per-kind modules only name the kind."""

from __future__ import annotations

from typing import Any

from events.catalog import JobPoll, StageRequested
from functions.stages._common import (
    ALREADY_DONE,
    Done,
    Job,
    JobStatus,
    Refused,
    Since,
    VendorCall,
    names,
    reached,
    recent,
)
from shared.errors import RetryLater

__all__ = ["ClusterPostcheck", "ClusterPrecheck", "ClusterUpgrade", "task_status"]

#: Phases of CCE tasks (upgrade: Init|Queuing|Running|Pause|Success|Failed; checks add Error).
_FAILED = frozenset({"Failed", "Error"})


def task_status(phase: str, progress: str | None, message: str | None, code: str) -> JobStatus:
    if phase == "Success":
        return JobStatus("succeeded", phase)
    if phase in _FAILED:
        return JobStatus("failed", phase, message or f"task ended {phase}", code)
    return JobStatus("running", f"{phase}:{progress or ''}")


class _Cluster(VendorCall):
    """``kind`` is also the name of the client on ``ctx.clouds`` (``cce`` / ``autopilot``)."""

    def client(self, clouds: Any) -> Any:
        return getattr(clouds, self.kind)


class ClusterPrecheck(_Cluster):
    """Starts a pre-check task; followed with ``get_precheck``.

    Claimed so duplicates make one check; CCE lists no pre-check tasks, so a lost answer is
    reconciled by checking again (a check changes nothing on the cluster)."""

    stage = "precheck"
    safe_to_repeat = True

    async def start(self, client: Any, target: Any, req: StageRequested) -> Job:
        task = await client.precheck(target.cluster_id, cluster_version=None, target_version=req.to_version)
        return Job(task.uid)

    async def status(self, client: Any, target: Any, poll: JobPoll) -> JobStatus:
        task = await client.get_precheck(target.cluster_id, poll.job_id)
        return task_status(task.status.phase, task.status.progress, task.status.message, "precheck.failed")


class ClusterUpgrade(_Cluster):
    """Starts the in-place rolling upgrade; reconciled from the task list and the cluster version."""

    stage = "upgrade"

    async def start(self, client: Any, target: Any, req: StageRequested) -> Job:
        answer = await client.upgrade(
            target.cluster_id, req.to_version, user_defined_step=target.strategy.user_defined_step
        )
        return Job(answer.metadata.uid)

    async def find_existing(
        self, client: Any, target: Any, req: StageRequested, since: Since
    ) -> Job | Done | None:
        tasks = [
            t
            for t in await client.list_upgrade_tasks(target.cluster_id)
            if names(self.kind, t.spec.get("targetVersion"), req.to_version)
        ]
        tasks.sort(key=lambda t: t.metadata.creationTimestamp or "")
        for task in reversed(tasks):  # newest first
            if task.status.phase == "Success":
                return Done(task.uid)
            if task.status.phase not in _FAILED or recent(task.metadata.creationTimestamp, since):
                return Job(task.uid)  # running, or failed after our claim: its outcome is ours
        cluster = await client.get_cluster(target.cluster_id)
        return ALREADY_DONE if reached(self.kind, cluster.version, req.to_version) else None

    async def status(self, client: Any, target: Any, poll: JobPoll) -> JobStatus:
        task = await client.get_upgrade_task(target.cluster_id, poll.job_id)
        return task_status(task.status.phase, task.status.progress, task.status.message, "upgrade.failed")


class ClusterPostcheck(_Cluster):
    """The post-check answers at once (Success / Failed): a synchronous, unclaimed check."""

    stage = "postcheck"
    claimed = False

    async def start(self, client: Any, target: Any, req: StageRequested) -> Done:
        task = await client.postcheck(target.cluster_id, cluster_version=None, target_version=req.to_version)
        phase = task.status.phase
        if phase == "Success":
            return Done(task.uid)
        if phase in _FAILED:
            raise Refused("postcheck.failed", task.status.message or f"post-check ended {phase}")
        # Not decided yet, and there is no task query for post-checks: ask again shortly.
        raise RetryLater(5.0, f"post-check is {phase or 'pending'}")
