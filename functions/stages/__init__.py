"""One function per vendor call, each consuming ``stage.requested`` filtered by kind and stage.

``CALLS`` maps (kind, stage) to the module's :class:`~functions.stages._common.VendorCall`, so
``track_job`` can make the status call that belongs to a job.
"""

from __future__ import annotations

from functions.stages import (
    autopilot_postcheck,
    autopilot_precheck,
    autopilot_snapshot,
    autopilot_upgrade,
    autopilot_workflow,
    cce_postcheck,
    cce_precheck,
    cce_upgrade,
    kafka_precheck,
    kafka_upgrade,
    kafka_verify,
    oceanbase_upgrade,
    starrocks_upgrade,
)
from functions.stages._common import VendorCall

__all__ = ["CALLS", "MODULES"]

MODULES = (
    kafka_precheck,
    kafka_upgrade,
    kafka_verify,
    cce_precheck,
    cce_upgrade,
    cce_postcheck,
    autopilot_workflow,
    autopilot_precheck,
    autopilot_snapshot,
    autopilot_upgrade,
    autopilot_postcheck,
    starrocks_upgrade,
    oceanbase_upgrade,
)
CALLS: dict[tuple[str, str], VendorCall] = {(m.CALL.kind, m.CALL.stage): m.CALL for m in MODULES}
