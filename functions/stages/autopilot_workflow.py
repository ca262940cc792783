"""Autopilot workflow (``stage.requested`` kind=autopilot, stage=workflow): create the upgrade
workflow that the later stages (precheck, snapshot, upgrade, postcheck) report into."""

from __future__ import annotations

from typing import TYPE_CHECKING

from events.catalog import StageRequested
from events.envelope import Event
from functions.stages._huawei import allowed_target, cluster_id
from shared.bus.base import Emitted
from shared.clouds.huawei.autopilot import AutopilotClient
from shared.domain.fleet import Target
from shared.domain.versions import names
from shared.engine.contract import Done, VendorCall
from shared.engine.stage import run_stage
from shared.engine.vendor_clock import Since
from shared.runtime.function import Context, upshift_function

if TYPE_CHECKING:
    from shared.clouds.registry import CloudClients

__all__ = ["CALL", "autopilot_workflow"]


class AutopilotWorkflow(VendorCall[AutopilotClient]):
    """Creating a workflow is synchronous (201 with it), but a second one is refused while the
    first is open, so it is claimed; a lost answer is found again in the workflow list.

    The run's first stage: a target CCE does not offer this cluster (``upgradeinfo``) is refused
    here, before the workflow exists (see :mod:`functions.stages._huawei`)."""

    kind = "autopilot"
    stage = "workflow"

    def client(self, clouds: CloudClients) -> AutopilotClient:
        return clouds.autopilot

    async def start(self, client: AutopilotClient, target: Target, req: StageRequested) -> Done:
        info = await allowed_target(self.kind, client, target, req)
        workflow = await client.create_workflow(
            cluster_id(target), req.to_version, cluster_version=info.current_version
        )
        return Done(workflow.uid)

    async def find_existing(
        self, client: AutopilotClient, target: Target, req: StageRequested, since: Since
    ) -> Done | None:
        for workflow in await client.list_workflows(cluster_id(target)):
            if workflow.status.phase != "Cancel" and names(
                self.kind, workflow.spec.get("targetVersion"), req.to_version
            ):
                return Done(workflow.uid)
        return None


CALL = AutopilotWorkflow()


@upshift_function
async def autopilot_workflow(event: Event[StageRequested], ctx: Context) -> list[Emitted]:
    """At most one ``POST .../operation/upgradeworkflows`` → ``stage.succeeded`` (its id as job)."""
    return await run_stage(CALL, event, ctx)
