"""autopilot_cancel (``upgrade.cancelled`` kind=autopilot): cancel the run's upgrade workflow at
the vendor — the one cancel a vendor here documents (not a stage: it follows a run's end) (Autopilot ``PATCH …/upgradeworkflows/{id}``
``{"status": {"phase": "Cancel"}}``, vendor-facts §3.1).

A run is cancelled only before its upgrade stage begins (:mod:`shared.engine.chatops.runs`), so
its workflow, created by the ``workflow`` stage, holds no running task and the vendor takes the
cancel; a workflow left open would block the cluster's next upgrade workflow. The vendor refuses
while a task runs, after success, and once cancelled: a refusal is logged and recorded on the
run's ``workflow`` stage (``cancel_refused``), never retried — a redelivery after the call was
made finds the workflow cancelled and is refused the same way, harmlessly. A run that never
reached the workflow stage has nothing to cancel.
"""

from __future__ import annotations

from events.catalog import UpgradeCancelled
from events.envelope import Event
from shared.bus.base import Emitted
from shared.clouds.errors import PermanentCloudError
from shared.runtime.function import Context, upshift_function

__all__ = ["autopilot_cancel"]


@upshift_function
async def autopilot_cancel(event: Event[UpgradeCancelled], ctx: Context) -> list[Emitted]:
    d = event.data
    run = await ctx.store.ledger.run(d.run) or {}
    workflow = run.get("stages", {}).get("workflow") or {}
    uid = workflow.get("job_id")
    if not uid or workflow.get("cancelled") or workflow.get("cancel_refused"):
        return []
    try:
        target = ctx.need_fleet().target(d.target)
    except KeyError:
        ctx.log.warning("autopilot_cancel.unknown_target", target=d.target)
        return []
    try:
        done = await ctx.need_clouds().autopilot.cancel_workflow(target.vendor_id, str(uid))
    except PermanentCloudError as exc:
        ctx.log.warning("autopilot_cancel.refused", code=exc.code, error=str(exc)[:300])
        await ctx.store.ledger.note_stage(
            d.run, "workflow", calls=1, cancel_refused=f"{exc.code} {exc}"[:500]
        )
        return []
    await ctx.store.ledger.note_stage(d.run, "workflow", calls=1, cancelled=True, phase=done.status.phase)
    ctx.log.info("autopilot_cancel.cancelled", workflow=uid)
    return []
