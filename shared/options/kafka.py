"""Fleet options of NAVER Cloud Kafka (DSS) targets (``targets[].kafka``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["KafkaOptions"]


class KafkaOptions(BaseModel):
    """Options of one NAVER Cloud Kafka (DSS) target; none yet."""

    model_config = ConfigDict(extra="forbid")
