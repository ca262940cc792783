"""Fleet options of CCE and CCE Autopilot targets (``targets[].cce``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["CceOptions"]


class CceOptions(BaseModel):
    """Options of one CCE and CCE Autopilot target; none yet."""

    model_config = ConfigDict(extra="forbid")
