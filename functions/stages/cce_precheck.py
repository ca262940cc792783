"""CCE precheck (``stage.requested`` kind=cce, stage=precheck): start the cluster pre-check task."""

from __future__ import annotations

from events.catalog import StageRequested
from events.envelope import Event
from functions.stages._huawei import ClusterPrecheck
from shared.bus.base import Emitted
from shared.engine.stage import run_stage
from shared.runtime.function import Context, upshift_function

__all__ = ["CALL", "cce_precheck"]


class CcePrecheck(ClusterPrecheck):
    kind = "cce"


CALL = CcePrecheck()


@upshift_function
async def cce_precheck(event: Event[StageRequested], ctx: Context) -> list[Emitted]:
    """One ``POST .../operation/precheck`` → ``stage.started`` + ``job.poll``, or ``stage.failed``."""
    return await run_stage(CALL, event, ctx)
