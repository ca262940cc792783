"""Kafka verify (``stage.requested`` kind=ncloud-kafka, stage=verify): read the cluster's version."""

from __future__ import annotations

from typing import Any

from events.catalog import StageRequested
from events.envelope import Event
from functions.stages._common import Done, Refused, reached, run_stage
from functions.stages._kafka import KafkaCall
from shared.bus.base import Emitted
from shared.errors import RetryLater
from shared.function import Context, upshift_function

__all__ = ["CALL", "kafka_verify"]


class KafkaVerify(KafkaCall):
    """A read (unclaimed): the cluster must report the new version code and be running."""

    stage = "verify"
    claimed = False

    async def start(self, client: Any, target: Any, req: StageRequested) -> Done:
        info = await client.get_cluster_info(target.cluster)
        state = (info.status or "running").lower()
        if state == "upgrading":
            raise RetryLater(5.0, "cluster is still being changed")
        if state != "running" or not reached(self.kind, str(info.kafkaVersionCode), req.to_version):
            raise Refused("verify.failed", f"cluster is {state} at version code {info.kafkaVersionCode}")
        return Done()


CALL = KafkaVerify()


@upshift_function
async def kafka_verify(event: Event[StageRequested], ctx: Context) -> list[Emitted]:
    """One ``getClusterInfoList`` → ``stage.succeeded``, or ``stage.failed`` if not at the version."""
    return await run_stage(CALL, event, ctx)
