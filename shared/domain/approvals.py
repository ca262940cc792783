"""Approvals: which runs wait for people before they start, and whether they have what they need.

The rule comes from the fleet file, on a policy (``policies[].approval``) or a wave
(``waves.approval: {0: {...}}``); a policy's wins over its wave's:

```yaml
waves:
  bake: 30m
  approval:
    0: {required: true, approvers: [sre-leads], min_approvals: 1, expires: 12h}
```

* ``approvers``: names of ``rbac:`` grants whose members may approve (empty: anyone whose role is
  ``approver`` or above for the target);
* ``min_approvals``: distinct people needed;
* ``expires``: an approval request lapses this long after it was posted, or when the window
  occurrence it was posted for closes, whichever comes first (then a new one is posted when
  the next occurrence opens);
* ``prevent_self_approval``: whoever asked for the run (``upgrade`` from chat) may not approve it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.durations import Duration

__all__ = ["Approval"]


class Approval(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    required: bool = True
    approvers: list[str] = []
    min_approvals: int = Field(default=1, ge=1, le=10)
    expires: Duration | None = None
    prevent_self_approval: bool = True
