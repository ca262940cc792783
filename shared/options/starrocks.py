"""Fleet options of TaurusDB StarRocks targets (``targets[].starrocks``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["StarRocksOptions"]


class StarRocksOptions(BaseModel):
    """Options of one TaurusDB StarRocks target; none yet."""

    model_config = ConfigDict(extra="forbid")
