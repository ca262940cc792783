"""Pydantic models of NAVER Cloud Data Streaming Service (Kafka) calls (seed 004).

Status strings of clusters and brokers are UNCONFIRMED by public docs: kept as plain strings.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BrokerNode",
    "ClusterInfo",
    "ClusterStatus",
    "GatewayError",
    "NcloudAnswer",
    "RollingUpgradeRequest",
]


class RollingUpgradeRequest(BaseModel):
    """Body of ``rollingUpgradePreCheck`` and ``rollingUpgrade``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    serviceGroupInstanceNo: int = Field(gt=0)
    upgradeKafkaVersionCode: int = Field(gt=0)
    upgradeConfigGroupNo: int = Field(gt=0)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class NcloudAnswer(_Lenient):
    """Every DSS answer: ``code`` 0 means success."""

    code: int
    message: str = ""
    result: Any = None
    requestId: str | None = None


class GatewayError(_Lenient):
    """``{"error": {"errorCode", "message", "details"}}`` from the API gateway."""

    errorCode: str = ""
    message: str = ""
    details: str | None = None


class ClusterInfo(_Lenient):
    serviceGroupInstanceNo: int
    clusterName: str = ""
    kafkaVersionCode: int
    kafkaVersionName: str | None = None
    configGroupNo: int | None = None
    status: str | None = None


class BrokerNode(_Lenient):
    nodeNo: int
    hostName: str = ""
    status: str
    kafkaVersionCode: int | None = None


class ClusterStatus(_Lenient):
    serviceGroupInstanceNo: int
    status: str
    brokerNodeList: list[BrokerNode] = Field(default_factory=list)
    failReason: str | None = None
