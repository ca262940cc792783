"""NAVER Cloud Data Streaming Service (Kafka) client: rolling-upgrade precheck and upgrade, cluster
version and broker status, signed with API Gateway signature v2.

Errors: the gateway's ``{"error": {...}}`` maps by status (401 -> AuthError, 429 -> ThrottledError,
5xx -> TransientCloudError); a DSS answer with ``code != 0`` is an error whatever the HTTP status
(10153 "version must be later" -> PermanentCloudError; "cluster busy" -> TransientCloudError).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any, Literal

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from yarl import URL

from shared.clouds._base import (
    BaseClient,
    Limits,
    ReconcilePolicy,
    Response,
    RetryPolicy,
    error_for_status,
    parse_retry_after,
    read_secret,
)
from shared.clouds.errors import CloudError, PermanentCloudError, TransientCloudError, ValidationFailed
from shared.clouds.ncloud_models import (
    ClusterInfo,
    ClusterStatus,
    GatewayError,
    NcloudAnswer,
    RollingUpgradeRequest,
)

__all__ = [
    "BUSY_CODES",
    "PREFIXES",
    "VENDOR",
    "VERSION_NOT_LATER",
    "NcloudClient",
    "NcloudConfig",
    "signature_v2",
]

VENDOR = "ncloud"
PREFIXES = {"KR": "/api/v1", "SGN": "/api/sgn-v1", "JPN": "/api/jpn-v1"}
#: "the updated Kafka version must be later than the current cluster version."
VERSION_NOT_LATER = 10153
#: Codes meaning "the cluster is being changed": they clear by waiting. (Simulator's choice; the
#: public docs list no code for it.)
BUSY_CODES = frozenset({10105})


class NcloudConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    region: Literal["KR", "SGN", "JPN"] = "KR"
    endpoint: str = Field("https://clouddatastreamingservice.apigw.ntruss.com", pattern=r"^https?://[^/\s]+$")
    access_key_env: str = "NCP_ACCESS_KEY"
    secret_key_env: str = "NCP_SECRET_KEY"
    limits: Limits = Field(default_factory=Limits)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    reconcile: ReconcilePolicy = Field(default_factory=ReconcilePolicy)

    @property
    def prefix(self) -> str:
        return PREFIXES[self.region]


def signature_v2(method: str, uri: str, timestamp: str, access_key: str, secret_key: str) -> str:
    """base64(HMAC-SHA256(secret, "METHOD uri\\ntimestamp\\naccessKey")); ``uri`` is the path from
    ``/api/...`` with the query exactly as sent."""
    message = f"{method} {uri}\n{timestamp}\n{access_key}"
    digest = hmac.new(secret_key.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class NcloudClient(BaseClient):
    """Kafka (DSS) API of one region. ``clock`` (epoch seconds) stamps signatures; tests may skew it."""

    vendor = VENDOR

    def __init__(
        self,
        config: NcloudConfig,
        *,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            config.endpoint, limits=config.limits, retry=config.retry, reconcile=config.reconcile, session=session
        )
        self.config = config
        self._clock = clock
        self._ak: SecretStr = read_secret(config.access_key_env)
        self._sk: SecretStr = read_secret(config.secret_key_env)

    def __repr__(self) -> str:
        return f"NcloudClient(endpoint={self.endpoint!r}, region={self.config.region!r})"

    # -- hooks --------------------------------------------------------------------------------
    def _sign(self, method: str, url: URL, headers: dict[str, str], body: bytes) -> None:
        timestamp = str(int(self._clock() * 1000))
        uri = url.raw_path + (f"?{url.raw_query_string}" if url.raw_query_string else "")
        ak = self._ak.get_secret_value()
        headers["x-ncp-apigw-timestamp"] = timestamp
        headers["x-ncp-iam-access-key"] = ak
        headers["x-ncp-apigw-signature-v2"] = signature_v2(
            method, uri, timestamp, ak, self._sk.get_secret_value()
        )

    def _raise_for(self, response: Response) -> None:
        raise self._error(response)

    def _error(self, response: Response) -> CloudError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("code"), int) and body["code"] != 0:
            answer = NcloudAnswer.model_validate(body)
            code, rid = answer.code, answer.requestId
            kw: dict[str, Any] = {
                "vendor": VENDOR,
                "code": str(code),
                "request_id": rid,
                "status": response.status,
            }
            if code in BUSY_CODES:
                return TransientCloudError(answer.message, conflict=True, **kw)
            if response.status >= 500 or response.status == 429:
                return error_for_status(
                    VENDOR,
                    response.status,
                    code=str(code),
                    message=answer.message,
                    request_id=rid,
                    retry_after=parse_retry_after(response.headers),
                )
            return PermanentCloudError(answer.message, **kw)
        gateway = GatewayError()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            try:
                gateway = GatewayError.model_validate(body["error"])
            except ValidationError:
                pass
        message = gateway.message or f"HTTP {response.status}"
        if gateway.details:
            message += f" ({gateway.details})"
        return error_for_status(
            VENDOR,
            response.status,
            code=gateway.errorCode,
            message=message,
            request_id=response.request_id,
            retry_after=parse_retry_after(response.headers),
        )

    # -- plumbing -----------------------------------------------------------------------------
    async def _result(
        self, method: str, path: str, *, key: str, json: Any = None, idempotent: bool = True
    ) -> Any:
        response = await self._call(
            method, self.config.prefix + path, endpoint_key=key, json=json, idempotent=idempotent
        )
        try:
            answer = NcloudAnswer.model_validate(response.json())
        except (ValueError, ValidationError):
            raise PermanentCloudError(
                "answer is not a DSS {code, message, result} body",
                vendor=VENDOR,
                code="bad_answer",
                status=response.status,
            ) from None
        if answer.code != 0:
            raise self._error(response)
        return answer.result

    @staticmethod
    def _request(cluster_no: int, version_code: int, config_group_no: int) -> RollingUpgradeRequest:
        try:
            return RollingUpgradeRequest(
                serviceGroupInstanceNo=cluster_no,
                upgradeKafkaVersionCode=version_code,
                upgradeConfigGroupNo=config_group_no,
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise ValidationFailed(f"{field}: {err['msg']}", vendor=VENDOR, field=field) from None

    @staticmethod
    def _no(value: int, field: str = "serviceGroupInstanceNo") -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValidationFailed(
                f"{field} must be a positive integer, got {value!r}", vendor=VENDOR, field=field
            )
        return value

    # -- calls --------------------------------------------------------------------------------
    async def precheck(self, cluster_no: int, version_code: int, config_group_no: int) -> bool:
        """``rollingUpgradePreCheck``: True when the cluster may be upgraded to ``version_code``.
        A target that is not newer raises PermanentCloudError with code "10153"."""
        body = self._request(cluster_no, version_code, config_group_no).model_dump()
        return bool(await self._result("POST", "/cluster/rollingUpgradePreCheck", key="precheck", json=body))

    async def rolling_upgrade(self, cluster_no: int, version_code: int, config_group_no: int) -> bool:
        """``rollingUpgrade`` (after a passing precheck). Not retried once it may have reached NAVER."""
        body = self._request(cluster_no, version_code, config_group_no).model_dump()
        result = await self._result(
            "POST", "/cluster/rollingUpgrade", key="upgrade", json=body, idempotent=False
        )
        return bool(result)

    async def get_cluster_info(self, cluster_no: int) -> ClusterInfo:
        """``getClusterInfoList``: ``kafkaVersionCode`` reaches the target when the upgrade is done."""
        no = self._no(cluster_no)
        return self._parse(
            ClusterInfo, await self._result("POST", f"/cluster/getClusterInfoList/{no}", key="info")
        )

    async def get_cluster_status(self, cluster_no: int) -> ClusterStatus:
        """``getClusterStatus``: cluster status and per-broker status."""
        no = self._no(cluster_no)
        return self._parse(
            ClusterStatus, await self._result("GET", f"/cluster/getClusterStatus/{no}", key="status")
        )
