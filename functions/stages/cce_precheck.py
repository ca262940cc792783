"""CCE precheck (``stage.requested`` kind=cce, stage=precheck): start the cluster pre-check task."""

from __future__ import annotations

from typing import TYPE_CHECKING

from events.catalog import StageRequested
from events.envelope import Event
from functions.stages._huawei import ClusterPrecheck
from shared.bus.base import Emitted
from shared.clouds.huawei.cce import CceClient
from shared.engine.stage import run_stage
from shared.runtime.function import Context, upshift_function

if TYPE_CHECKING:
    from shared.clouds.registry import CloudClients

__all__ = ["CALL", "cce_precheck"]


class CcePrecheck(ClusterPrecheck[CceClient]):
    kind = "cce"

    def client(self, clouds: CloudClients) -> CceClient:
        return clouds.cce


CALL = CcePrecheck()


@upshift_function
async def cce_precheck(event: Event[StageRequested], ctx: Context) -> list[Emitted]:
    """One ``POST .../operation/precheck`` → ``stage.started`` + ``job.poll``, or ``stage.failed``."""
    return await run_stage(CALL, event, ctx)
