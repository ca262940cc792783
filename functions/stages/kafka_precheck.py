"""Kafka precheck (``stage.requested`` kind=ncloud-kafka, stage=precheck): ``rollingUpgradePreCheck``."""

from __future__ import annotations

from typing import Any

from events.catalog import StageRequested
from events.envelope import Event
from functions.stages._common import Done, Refused, run_stage
from functions.stages._kafka import KafkaCall, version_code
from shared.bus.base import Emitted
from shared.function import Context, upshift_function

__all__ = ["CALL", "kafka_precheck"]


class KafkaPrecheck(KafkaCall):
    """A synchronous yes/no that starts nothing (so unclaimed); NAVER requires a passing one for
    the same version and config group right before the rolling upgrade."""

    stage = "precheck"
    claimed = False

    async def start(self, client: Any, target: Any, req: StageRequested) -> Done:
        if not await client.precheck(target.cluster, version_code(req.to_version), target.config_group):
            raise Refused("precheck.failed", f"rolling-upgrade precheck to {req.to_version} did not pass")
        return Done()


CALL = KafkaPrecheck()


@upshift_function
async def kafka_precheck(event: Event[StageRequested], ctx: Context) -> list[Emitted]:
    """One precheck call → ``stage.succeeded``, or ``stage.failed`` (e.g. 10153: not newer)."""
    return await run_stage(CALL, event, ctx)
