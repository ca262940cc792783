"""Autopilot postcheck (``stage.requested`` kind=autopilot, stage=postcheck): the synchronous post-check."""

from __future__ import annotations

from typing import TYPE_CHECKING

from events.catalog import StageRequested
from events.envelope import Event
from functions.stages._huawei import ClusterPostcheck
from shared.bus.base import Emitted
from shared.clouds.huawei.autopilot import AutopilotClient
from shared.engine.stage import run_stage
from shared.runtime.function import Context, upshift_function

if TYPE_CHECKING:
    from shared.clouds.registry import CloudClients

__all__ = ["CALL", "autopilot_postcheck"]


class AutopilotPostcheck(ClusterPostcheck[AutopilotClient]):
    kind = "autopilot"

    def client(self, clouds: CloudClients) -> AutopilotClient:
        return clouds.autopilot


CALL = AutopilotPostcheck()


@upshift_function
async def autopilot_postcheck(event: Event[StageRequested], ctx: Context) -> list[Emitted]:
    """One ``POST .../operation/postcheck`` → ``stage.succeeded`` or ``stage.failed``."""
    return await run_stage(CALL, event, ctx)
