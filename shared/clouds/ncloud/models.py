"""Pydantic models of NAVER Cloud Data Streaming Service (Kafka) calls, as the vendor documents them.

Sources, named per field below (see ../shared/seeds/vendor-facts.md §1):

* **seed 004** — api.ncloud-docs.com "Rolling Upgrade precheck" (body, envelope, error 10153);
* **cdss-rollingupgrade**, **cdss-rollingupgradeprogresscheck** — api.ncloud-docs.com/docs/en/…;
* **getclusterstatus** — api.ncloud-docs.com/docs/en/analytics-clouddatastreamingservice-cluster-getclusterstatus;
* **getkafkaversionlist** — …/analytics-clouddatastreamingservice-cluster-getkafkaversionlist ("Get version");
* **getkafkaversionconfiggrouplist** — …/analytics-cdss-configgroup-getkafkaversionconfiggrouplist;
* **GoNC** — NaverCloudPlatform/ncloud-sdk-go-v2 ``services/vcdss/*.go`` (JSON names and types).

Answers are read leniently (unknown fields ignored); request bodies are strict. Version codes
come back as JSON **strings** (GoNC ``kafkaVersionCode string``; "Get version" example
``"3903006"``) while the precheck/upgrade bodies want an **Integer**: answers' codes are read
from a digit string (or an int) into ``int``, so a code compares the same on both sides.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "COLOURS",
    "ClusterInfo",
    "ClusterStatus",
    "Code",
    "ConfigGroup",
    "ConfigGroupListRequest",
    "ConfigGroupPage",
    "Envelope",
    "GatewayError",
    "KafkaVersion",
    "NodeStatus",
    "ProgressCheckRequest",
    "RollingUpgradeRequest",
    "VersionList",
]

#: ``brokerStatus`` / ``zookeeperStatus``: green (normal), yellow (partly abnormal), orange
#: (changing), red (abnormal), gray (unknown) — getclusterstatus, cdss-rollingupgradeprogresscheck.
COLOURS = ("green", "yellow", "orange", "red", "gray")


def _code(value: object) -> object:
    # A version code on the wire: "3903006" (documented) or 3903006 (tolerated). Not a bool, not "3.9.0".
    if isinstance(value, bool):
        raise ValueError("a Kafka version code is a number, not a boolean")
    if isinstance(value, str):
        if not value.strip().isdigit():
            raise ValueError(f"{value!r} is not a Kafka version code (digits, e.g. '3903006')")
        return int(value.strip())
    return value


#: A Kafka version code read from an answer (documented as a digit string).
Code = Annotated[int, BeforeValidator(_code)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class RollingUpgradeRequest(_Body):
    """Body of ``rollingUpgradePreCheck`` and ``rollingUpgrade``: three required Integers (seed 004,
    cdss-rollingupgrade)."""

    serviceGroupInstanceNo: int = Field(gt=0)
    upgradeKafkaVersionCode: int = Field(gt=0)
    upgradeConfigGroupNo: int = Field(gt=0)


class ProgressCheckRequest(_Body):
    """Body of ``rollingUpgradeProgressCheck``: ``serviceGroupInstanceNo`` Integer, required."""

    serviceGroupInstanceNo: int = Field(gt=0)


class ConfigGroupListRequest(_Body):
    """Body of ``getKafkaVersionConfigGroupList``. ``kafkaVersionCode`` is an Integer in the doc's
    field table (its curl example and GoNC send a string; we send the documented Integer)."""

    kafkaVersionCode: int = Field(gt=0)
    pageNo: int = Field(1, ge=1)
    pageSize: int = Field(10, ge=1)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Envelope(_Lenient):
    """Every DSS answer: ``{code, message, result, requestId}``; ``code`` 0 / "SUCCESS" is success
    (seed 004; "Get version"; GoNC ``response_vo_*.go``)."""

    code: int
    message: str = ""
    result: Any = None
    requestId: str | None = None


class GatewayError(_Lenient):
    """``{"error": {"errorCode", "message", "details"}}`` from the API gateway (401/200 auth failed,
    401/210 permission denied, 429/400–420, 503/500, 504/510: api.ncloud-docs.com API Gateway
    overview, "Response status codes")."""

    errorCode: str = ""
    message: str = ""
    details: str | None = None


class ClusterInfo(_Lenient):
    """``getClusterInfoList/{serviceGroupInstanceNo}`` result (GoNC
    ``open_api_get_cluster_info_response_vo.go``). ``status`` is one of creating, changing,
    running, deleting, error, return (= deleted) — GoNC ``allowed_cluster_info.go``, TF-NC
    ``cdss_cluster.go``; kept as text so an undocumented value is seen, not refused."""

    clusterName: str = ""
    kafkaVersionCode: Code
    configGroupNo: int | None = None
    status: str
    brokerNodeCount: int | None = None

    @property
    def state(self) -> str:
        return self.status.strip().lower()


class NodeStatus(_Lenient):
    """One entry of ``brokerStatusPerNode`` / ``zookeeperStatusPerNode`` (GoNC
    ``process_status_vo.go``). The values of ``status`` are UNCONFIRMED (vendor-facts §1.1)."""

    hostname: str = ""
    status: str = ""


class ClusterStatus(_Lenient):
    """``getClusterStatus/{no}`` and ``rollingUpgradeProgressCheck`` result (the latter "mirrors"
    the former: cdss-rollingupgradeprogresscheck; names and types from GoNC
    ``get_cluster_status_per_node_response_vo.go``). No Kafka versions here: the version is read
    from :class:`ClusterInfo`. Fields after ``zookeeperTotalNumber`` are UNCONFIRMED for the
    progress check, hence optional."""

    clusterName: str = ""
    brokerNodeTotalNumber: int
    brokerNumber: int
    brokerStatus: str
    brokerStatusPerNode: list[NodeStatus] = Field(default_factory=list)
    zookeeperTotalNumber: int | None = None
    zookeeperNumber: int | None = None
    zookeeperStatus: str | None = None
    zookeeperStatusPerNode: list[NodeStatus] = Field(default_factory=list)
    cmakStatus: str | None = None

    @property
    def colour(self) -> str:
        """``brokerStatus`` lower-cased; a value outside :data:`COLOURS` reads as gray (unknown)."""
        colour = self.brokerStatus.strip().lower()
        return colour if colour in COLOURS else "gray"

    @property
    def all_up(self) -> bool:
        return self.brokerNodeTotalNumber > 0 and self.brokerNumber == self.brokerNodeTotalNumber


class KafkaVersion(_Lenient):
    """One ``result.kafkaVersionList`` entry of ``getCDSSVersionList`` ("Get version"; GoNC
    ``kafka_version.go``): e.g. code "3903006", kafkaVersionName "Kafka 3.9.0",
    applicationVersionName "Kafka 3.9.0, CMAK 3.0.0.6", cmakVersionName "CMAK 3.0.0.6"."""

    kafkaVersionCode: Code
    kafkaVersionName: str = ""
    applicationVersionName: str = ""
    cmakVersionName: str = ""


class VersionList(_Lenient):
    kafkaVersionList: list[KafkaVersion] = Field(default_factory=list)


class ConfigGroup(_Lenient):
    """One ``result.kafkaConfigGroupList`` entry of ``getKafkaVersionConfigGroupList``
    (getkafkaversionconfiggrouplist; GoNC ``kafka_config_group.go``: configGroupNo int32, the rest
    strings)."""

    configGroupNo: int
    configGroupName: str = ""
    description: str | None = None
    kafkaVersion: str | None = None
    kafkaVersionCode: Code | None = None


class ConfigGroupPage(_Lenient):
    """``getKafkaVersionConfigGroupList`` result: one page of the version's config groups."""

    currentPage: int = 1
    isFirst: bool | None = None
    isLast: bool | None = None
    pageSize: int | None = None
    totalCount: int | None = None
    totalPage: int | None = None
    kafkaConfigGroupList: list[ConfigGroup] = Field(default_factory=list)
