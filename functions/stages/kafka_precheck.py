"""Kafka precheck (``stage.requested`` kind=ncloud-kafka, stage=precheck): ``rollingUpgradePreCheck``."""

from __future__ import annotations

from events.catalog import StageRequested
from events.envelope import Event
from functions.stages._kafka import KafkaCall, cluster_no
from shared.bus.base import Emitted
from shared.clouds.ncloud.client import NcloudClient
from shared.domain.fleet import Target
from shared.engine.contract import Done, Refused
from shared.engine.stage import run_stage
from shared.runtime.function import Context, upshift_function

__all__ = ["CALL", "kafka_precheck"]


class KafkaPrecheck(KafkaCall):
    """A synchronous yes/no that starts nothing (so unclaimed); NAVER requires a passing one for
    the same version and config group right before the rolling upgrade. The version's code and
    config group are resolved first (a name or a version without a group may need a lookup)."""

    stage = "precheck"
    claimed = False

    async def start(self, client: NcloudClient, target: Target, req: StageRequested) -> Done:
        version, group = await self.plan(client, target, req.to_version)
        if not await client.precheck(cluster_no(target), version.code, group):
            raise Refused(
                "precheck.failed",
                f"rolling-upgrade precheck to {version.label()} with config group {group} did not pass",
            )
        return Done()


CALL = KafkaPrecheck()


@upshift_function
async def kafka_precheck(event: Event[StageRequested], ctx: Context) -> list[Emitted]:
    """One precheck call → ``stage.succeeded``, or ``stage.failed`` (e.g. 10153: not newer)."""
    return await run_stage(CALL, event, ctx)
