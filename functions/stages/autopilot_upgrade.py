"""Autopilot upgrade (``stage.requested`` kind=autopilot, stage=upgrade): start the in-place rolling upgrade."""

from __future__ import annotations

from typing import TYPE_CHECKING

from events.catalog import StageRequested
from events.envelope import Event
from functions.stages._huawei import ClusterUpgrade
from shared.bus.base import Emitted
from shared.clouds.huawei.autopilot import AutopilotClient
from shared.engine.stage import run_stage
from shared.runtime.function import Context, upshift_function

if TYPE_CHECKING:
    from shared.clouds.registry import CloudClients

__all__ = ["CALL", "autopilot_upgrade"]


class AutopilotUpgrade(ClusterUpgrade[AutopilotClient]):
    kind = "autopilot"

    def client(self, clouds: CloudClients) -> AutopilotClient:
        return clouds.autopilot


CALL = AutopilotUpgrade()


@upshift_function
async def autopilot_upgrade(event: Event[StageRequested], ctx: Context) -> list[Emitted]:
    """At most one ``POST .../operation/upgrade`` per (target, version), claimed first; a lost
    answer is reconciled from the upgrade task list and the cluster version."""
    return await run_stage(CALL, event, ctx)
