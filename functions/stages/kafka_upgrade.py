"""Kafka rolling upgrade (``stage.requested`` kind=ncloud-kafka, stage=upgrade): ``rollingUpgrade``."""

from __future__ import annotations

from typing import Any

from events.catalog import JobPoll, StageRequested
from events.envelope import Event
from functions.stages._common import ALREADY_DONE, Done, Job, JobStatus, Refused, Since, reached, run_stage
from functions.stages._kafka import KafkaCall, version_code
from shared.bus.base import Emitted
from shared.function import Context, upshift_function

__all__ = ["CALL", "job_id", "kafka_upgrade"]


def job_id(code: int) -> str:
    """DSS answers the upgrade with a bare ``true``: the job is "this cluster going to ``code``"."""
    return f"rolling-upgrade-{code}"


class KafkaUpgrade(KafkaCall):
    """Followed through ``getClusterStatus`` (brokers move one by one; ``error`` + ``failReason``
    when it fails). Reconciled from ``getClusterInfoList``: at the version → done; being changed
    or in error → adopted; running at the old version → nothing started."""

    stage = "upgrade"

    async def start(self, client: Any, target: Any, req: StageRequested) -> Job:
        code = version_code(req.to_version)
        if not await client.rolling_upgrade(target.cluster, code, target.config_group):
            raise Refused("upgrade.refused", f"rolling upgrade to {req.to_version} was not accepted")
        return Job(job_id(code))

    async def find_existing(
        self, client: Any, target: Any, req: StageRequested, since: Since
    ) -> Job | Done | None:
        info = await client.get_cluster_info(target.cluster)
        if reached(self.kind, str(info.kafkaVersionCode), req.to_version):
            return ALREADY_DONE
        if (info.status or "running").lower() != "running":
            return Job(job_id(version_code(req.to_version)))
        return None

    async def status(self, client: Any, target: Any, poll: JobPoll) -> JobStatus:
        status = await client.get_cluster_status(target.cluster)
        code = version_code(poll.to_version)
        moved = sum(1 for b in status.brokerNodeList if b.kafkaVersionCode == code)
        brokers = len(status.brokerNodeList)
        state = status.status.lower()
        if state == "error":
            return JobStatus("failed", state, status.failReason or "cluster is in error", "upgrade.failed")
        if state == "running" and brokers and moved == brokers:
            return JobStatus("succeeded", f"{moved}/{brokers}")
        return JobStatus("running", f"{state}:{moved}/{brokers}")


CALL = KafkaUpgrade()


@upshift_function
async def kafka_upgrade(event: Event[StageRequested], ctx: Context) -> list[Emitted]:
    """At most one rolling-upgrade call per (cluster, version code) → ``stage.started``."""
    return await run_stage(CALL, event, ctx)
