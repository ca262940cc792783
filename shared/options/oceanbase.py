"""Fleet options of OceanBase under OCP targets (``targets[].oceanbase``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["OceanBaseOptions"]


class OceanBaseOptions(BaseModel):
    """Options of one OceanBase under OCP target; none yet."""

    model_config = ConfigDict(extra="forbid")
