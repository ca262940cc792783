"""Kafka rolling upgrade (``stage.requested`` kind=ncloud-kafka, stage=upgrade): ``rollingUpgrade``."""

from __future__ import annotations

import re

from events.catalog import JobPoll, StageRequested
from events.envelope import Event
from functions.stages._kafka import KafkaCall, cluster_no, newer_or_same, read, resolve_version
from shared.bus.base import Emitted
from shared.clouds.ncloud.client import NcloudClient
from shared.domain.fleet import Target
from shared.engine.contract import ALREADY_DONE, Done, Job, JobStatus, Refused
from shared.engine.stage import run_stage
from shared.engine.vendor_clock import Since
from shared.runtime.function import Context, upshift_function

__all__ = ["CALL", "job_id", "kafka_upgrade"]

#: ``getClusterInfoList`` states of a cluster being worked on (GoNC ``allowed_cluster_info.go``:
#: creating, changing, running, deleting, error, return).
BUSY_STATES = frozenset({"changing", "creating"})
GONE_STATES = frozenset({"deleting", "return"})
ABNORMAL = frozenset({"red", "gray"})
_ABNORMAL_LOOK = re.compile(r"\[(?:red|gray) look (\d+)\]")


def job_id(code: int) -> str:
    """DSS answers the upgrade with a bare ``true``: the job is "this cluster going to ``code``"."""
    return f"rolling-upgrade-{code}"


class KafkaUpgrade(KafkaCall):
    """No job id comes back (cdss-rollingupgrade): the job is the cluster, followed with
    ``rollingUpgradeProgressCheck`` and ``getClusterInfoList/{no}``.

    When it is done or failed is **an inference** — no NAVER document says (vendor-facts §1.2):

    * done: ``getClusterInfoList`` shows ``kafkaVersionCode`` == the target and ``status``
      "running", and the progress check shows every broker up (``brokerNumber ==
      brokerNodeTotalNumber``) with ``brokerStatus`` "green";
    * failed: ``status`` "error" (or the cluster going away: "deleting"/"return"), or brokers
      red/gray on ``kafka.abnormal_looks`` consecutive looks (a red that does not clear);
    * otherwise running (orange = changing, yellow = partly abnormal, a version not reached yet).

    Each look is one progress check; ``getClusterInfoList`` is read only when the brokers look
    finished (all up and green) or abnormal, so a look costs one call while brokers turn over.

    Reconciled from ``getClusterInfoList``: at the version (or later) → done; changing or in
    error → adopted (the cluster has no job list to tell whose change it is: adopting is the safe
    side, never a second upgrade call); running at the old version → nothing started.
    """

    stage = "upgrade"

    async def start(self, client: NcloudClient, target: Target, req: StageRequested) -> Job:
        version, group = await self.plan(client, target, req.to_version, after_precheck=True)
        if not await client.rolling_upgrade(cluster_no(target), version.code, group):
            raise Refused("upgrade.refused", f"rolling upgrade to {version.label()} was not accepted")
        return Job(job_id(version.code))

    async def find_existing(
        self, client: NcloudClient, target: Target, req: StageRequested, since: Since
    ) -> Job | Done | None:
        version = await resolve_version(client, req.to_version)
        info = await client.get_cluster_info(cluster_no(target))
        if await newer_or_same(client, info.kafkaVersionCode, version):
            return ALREADY_DONE
        if info.state in BUSY_STATES or info.state == "error":
            return Job(job_id(version.code))
        return None

    async def status(self, client: NcloudClient, target: Target, poll: JobPoll) -> JobStatus:
        version = await resolve_version(client, poll.to_version)
        progress = await client.upgrade_progress(cluster_no(target))
        colour = progress.colour
        brokers = f"{colour} {progress.brokerNumber}/{progress.brokerNodeTotalNumber} brokers"
        finished = colour == "green" and progress.all_up
        if not finished and colour not in ABNORMAL:
            return JobStatus("running", brokers)
        info = await read(client.get_cluster_info(cluster_no(target)))
        seen = f"{brokers}, cluster {info.state} at {info.kafkaVersionCode}"
        if info.state == "error":
            red = [n.hostname for n in progress.brokerStatusPerNode if n.status.strip().lower() in ABNORMAL]
            hosts = f"; {colour} brokers: {', '.join(red)}" if red else ""
            reason = f"cluster {info.clusterName or cluster_no(target)} is in error ({brokers}{hosts})"
            return JobStatus("failed", seen, reason, "upgrade.failed")
        if info.state in GONE_STATES:
            return JobStatus(
                "failed", seen, f"cluster is {info.state} (being deleted or gone)", "upgrade.failed"
            )
        if finished:
            if info.state == "running" and info.kafkaVersionCode == version.code:
                return JobStatus("succeeded", seen)
            return JobStatus("running", seen)
        looks = self._abnormal_looks(poll.last_progress) + 1
        if looks >= target.kafka.abnormal_looks:
            return JobStatus(
                "failed", seen, f"brokers {colour} on {looks} looks in a row ({seen})", "upgrade.failed"
            )
        return JobStatus("running", f"{seen} [{colour} look {looks}]")

    @staticmethod
    def _abnormal_looks(last: str | None) -> int:
        m = _ABNORMAL_LOOK.search(last or "")
        return int(m.group(1)) if m else 0


CALL = KafkaUpgrade()


@upshift_function
async def kafka_upgrade(event: Event[StageRequested], ctx: Context) -> list[Emitted]:
    """At most one rolling-upgrade call per (cluster, version code) → ``stage.started``."""
    return await run_stage(CALL, event, ctx)
