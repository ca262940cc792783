"""Kafka verify (``stage.requested`` kind=ncloud-kafka, stage=verify): the cluster runs the version
and its brokers are healthy."""

from __future__ import annotations

from events.catalog import StageRequested
from events.envelope import Event
from functions.stages._kafka import KafkaCall, cluster_no, read, resolve_version
from shared.bus.base import Emitted
from shared.clouds.ncloud.client import NcloudClient
from shared.domain.fleet import Target
from shared.engine.contract import Done, Refused
from shared.engine.stage import run_stage
from shared.errors import RetryLater
from shared.runtime.function import Context, upshift_function

__all__ = ["CALL", "kafka_verify"]

#: Seconds before looking again at a cluster still being changed.
AGAIN_S = 5.0


class KafkaVerify(KafkaCall):
    """Reads (unclaimed): ``getClusterInfoList/{no}`` must show the target ``kafkaVersionCode`` and
    ``status`` "running"; then ``getClusterStatus/{no}`` must show every broker up and
    ``brokerStatus`` "green". "changing"/"creating", or brokers not all up and green but not red or
    gray either: look again later (a verify right after the upgrade may see the last broker rejoin)."""

    stage = "verify"
    claimed = False

    async def start(self, client: NcloudClient, target: Target, req: StageRequested) -> Done:
        version = await resolve_version(client, req.to_version)
        info = await client.get_cluster_info(cluster_no(target))
        if info.state in ("changing", "creating"):
            raise RetryLater(AGAIN_S, f"cluster is still {info.state}")
        if info.state != "running" or info.kafkaVersionCode != version.code:
            raise Refused(
                "verify.failed",
                f"cluster is {info.state} at version code {info.kafkaVersionCode}, not at {version.label()}",
            )
        status = await read(client.get_cluster_status(cluster_no(target)))
        if status.colour == "green" and status.all_up:
            return Done()
        brokers = f"{status.brokerNumber}/{status.brokerNodeTotalNumber} brokers up, {status.colour}"
        if status.colour not in ("red", "gray"):
            raise RetryLater(AGAIN_S, f"brokers not settled yet: {brokers}")
        raise Refused(
            "verify.failed", f"cluster runs {version.label()} but its brokers are not healthy: {brokers}"
        )


CALL = KafkaVerify()


@upshift_function
async def kafka_verify(event: Event[StageRequested], ctx: Context) -> list[Emitted]:
    """``getClusterInfoList`` (+ ``getClusterStatus``) → ``stage.succeeded``, or ``stage.failed``."""
    return await run_stage(CALL, event, ctx)
