"""NAVER Cloud Data Streaming Service (Kafka) client: rolling-upgrade precheck, upgrade and its
progress, cluster info and status, the Kafka version list and config groups per version, signed
with API Gateway signature v2.

Errors: the gateway's ``{"error": {...}}`` maps by status (401 -> AuthError, 429 -> ThrottledError,
5xx -> TransientCloudError); a DSS answer with ``code != 0`` is an error whatever the HTTP status
(10153 "version must be later" -> PermanentCloudError; a code in ``busy_codes`` ->
TransientCloudError, conflict).

Signature v2 (seed 004; vendor-facts §6): ``base64(HMAC-SHA256(secretKey, METHOD + " " +
pathWithQuery + "\\n" + timestamp + "\\n" + accessKey))``. NAVER's official Java SDK
(``ncloud-sdk-java`` ``NcloudCredentials``/``IamCredentials``) signs ``uri.getRawPath() + "?" +
uri.getRawQuery()``: the percent-encoded path and query exactly as sent, in wire order. So the
query is encoded once (``shared.clouds.urls.encode_query``) and those bytes are both sent and
signed. (The generated Python/JS SDKs sign the *unencoded* pairs; they agree only when nothing
needs encoding.)
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

from shared.clouds.client import BaseClient, JsonObject, ReconcilePolicy
from shared.clouds.credentials import read_secret
from shared.clouds.errors import CloudError, PermanentCloudError, TransientCloudError, ValidationFailed
from shared.clouds.limits import Limits
from shared.clouds.ncloud.models import (
    ClusterInfo,
    ClusterStatus,
    ConfigGroup,
    ConfigGroupListRequest,
    ConfigGroupPage,
    Envelope,
    GatewayError,
    KafkaVersion,
    ProgressCheckRequest,
    RollingUpgradeRequest,
    VersionList,
)
from shared.clouds.response import Response, error_for_status
from shared.clouds.retry import RetryPolicy, parse_retry_after
from shared.clouds.urls import Params

__all__ = [
    "GROUP_PAGE_SIZE",
    "MAX_PAGES",
    "PREFIXES",
    "VENDOR",
    "VERSION_NOT_LATER",
    "NcloudClient",
    "NcloudConfig",
    "signature_v2",
]

VENDOR = "ncloud"
#: Region path prefixes (seed 004: KR, SGN, JPN; the gov cloud's ``/api/krs-v1`` is another host).
PREFIXES = {"KR": "/api/v1", "SGN": "/api/sgn-v1", "JPN": "/api/jpn-v1"}
#: "the updated Kafka version must be later than the current cluster version." (seed 004)
VERSION_NOT_LATER = 10153
#: Page size for ``getKafkaVersionConfigGroupList`` (documented ``1-N``, default 10).
GROUP_PAGE_SIZE = 50
#: At most this many pages are read (a guard against a list that never says ``isLast``).
MAX_PAGES = 100


class NcloudConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    region: Literal["KR", "SGN", "JPN"] = "KR"
    endpoint: str = Field("https://clouddatastreamingservice.apigw.ntruss.com", pattern=r"^https?://[^/\s]+$")
    access_key_env: str = "NCP_ACCESS_KEY"
    secret_key_env: str = "NCP_SECRET_KEY"
    limits: Limits = Field(default_factory=Limits)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    reconcile: ReconcilePolicy = Field(default_factory=ReconcilePolicy)
    #: DSS ``code`` values meaning "the cluster is being changed; try later": retried, and treated
    #: as a conflict (maybe our own call). NAVER documents no such code; 10105 is the simulator's
    #: choice — set the real one here once seen.
    busy_codes: frozenset[int] = frozenset({10105})
    #: Seconds the version list and the config groups of a version are kept (both change when an
    #: operator adds a version or a group, not during an upgrade); 0 reads them every time.
    catalog_ttl_s: float = Field(300.0, ge=0)

    @property
    def prefix(self) -> str:
        return PREFIXES[self.region]


def signature_v2(method: str, uri: str, timestamp: str, access_key: str, secret_key: str) -> str:
    """base64(HMAC-SHA256(secret, "METHOD uri\\ntimestamp\\naccessKey")); ``uri`` is the path from
    ``/api/...`` with the query exactly as sent (percent-encoded, wire order)."""
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
            config.endpoint,
            limits=config.limits,
            retry=config.retry,
            reconcile=config.reconcile,
            session=session,
        )
        self.config = config
        self._clock = clock
        self._ak: SecretStr = read_secret(config.access_key_env)
        self._sk: SecretStr = read_secret(config.secret_key_env)
        self._versions: tuple[float, list[KafkaVersion]] | None = None
        self._groups: dict[int, tuple[float, list[ConfigGroup]]] = {}
        #: (cluster, version code) -> (when, config group) of the last passing precheck
        self._passed: dict[tuple[int, int], tuple[float, int]] = {}

    def __repr__(self) -> str:
        return f"NcloudClient(endpoint={self.endpoint!r}, region={self.config.region!r})"

    # -- hooks --------------------------------------------------------------------------------
    def _sign(self, method: str, url: URL, headers: dict[str, str], body: bytes) -> None:
        timestamp = str(int(self._clock() * 1000))
        # The URL is already encoded (BaseClient._url): sign its raw bytes, which are what is sent.
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
            answer = Envelope.model_validate(body)
            code, rid = answer.code, answer.requestId
            kw: dict[str, Any] = {
                "vendor": VENDOR,
                "code": str(code),
                "request_id": rid,
                "status": response.status,
            }
            if code in self.config.busy_codes:
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
        self,
        method: str,
        path: str,
        *,
        key: str,
        json: JsonObject | None = None,
        params: Params | None = None,
        idempotent: bool = True,
    ) -> Any:
        """The ``result`` of a DSS call under the region's prefix; ``params`` are encoded once,
        sent and signed as encoded."""
        response = await self._call(
            method,
            self.config.prefix + path,
            endpoint_key=key,
            json=json,
            params=params,
            idempotent=idempotent,
        )
        try:
            answer = Envelope.model_validate(response.json())
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
    def _body(model: type[BaseModel], **fields: int) -> dict[str, Any]:
        try:
            return model(**fields).model_dump()
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise ValidationFailed(f"{field}: {err['msg']}", vendor=VENDOR, field=field) from None

    @classmethod
    def _upgrade_body(cls, cluster_no: int, version_code: int, config_group_no: int) -> dict[str, Any]:
        return cls._body(
            RollingUpgradeRequest,
            serviceGroupInstanceNo=cluster_no,
            upgradeKafkaVersionCode=version_code,
            upgradeConfigGroupNo=config_group_no,
        )

    @staticmethod
    def _no(value: int, field: str = "serviceGroupInstanceNo") -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValidationFailed(
                f"{field} must be a positive integer, got {value!r}", vendor=VENDOR, field=field
            )
        return value

    def _fresh(self, entry: tuple[float, object] | None) -> bool:
        return entry is not None and time.monotonic() - entry[0] < self.config.catalog_ttl_s

    # -- the upgrade ----------------------------------------------------------------------------
    async def precheck(self, cluster_no: int, version_code: int, config_group_no: int) -> bool:
        """``rollingUpgradePreCheck``: True when the cluster may be upgraded to ``version_code``
        with config group ``config_group_no`` (created for that version). A target that is not
        newer raises PermanentCloudError with code "10153"."""
        body = self._upgrade_body(cluster_no, version_code, config_group_no)
        passed = bool(
            await self._result("POST", "/cluster/rollingUpgradePreCheck", key="precheck", json=body)
        )
        if passed:
            self._passed[(cluster_no, version_code)] = (time.monotonic(), config_group_no)
        return passed

    def prechecked_group(self, cluster_no: int, version_code: int) -> int | None:
        """The config group of this client's last passing precheck of ``cluster_no`` to
        ``version_code`` (within ``catalog_ttl_s``): NAVER wants the upgrade to use exactly the
        version and group of a passing precheck, so this group needs no further lookup."""
        entry = self._passed.get((cluster_no, version_code))
        return entry[1] if entry is not None and self._fresh(entry) else None

    async def rolling_upgrade(self, cluster_no: int, version_code: int, config_group_no: int) -> bool:
        """``rollingUpgrade`` (after a passing precheck); ``result`` is ``true`` (or null on
        failure) and no job id comes back. Not retried once it may have reached NAVER."""
        body = self._upgrade_body(cluster_no, version_code, config_group_no)
        result = await self._result(
            "POST", "/cluster/rollingUpgrade", key="upgrade", json=body, idempotent=False
        )
        return bool(result)

    async def upgrade_progress(self, cluster_no: int) -> ClusterStatus:
        """``rollingUpgradeProgressCheck``: broker counts and colours while the brokers turn over."""
        body = self._body(ProgressCheckRequest, serviceGroupInstanceNo=self._no(cluster_no))
        return self._parse(
            ClusterStatus,
            await self._result("POST", "/cluster/rollingUpgradeProgressCheck", key="progress", json=body),
        )

    # -- the cluster ----------------------------------------------------------------------------
    async def get_cluster_info(self, cluster_no: int) -> ClusterInfo:
        """``getClusterInfoList/{no}``: ``kafkaVersionCode`` (the version it runs) and ``status``."""
        no = self._no(cluster_no)
        return self._parse(
            ClusterInfo, await self._result("POST", f"/cluster/getClusterInfoList/{no}", key="info")
        )

    async def get_cluster_status(self, cluster_no: int) -> ClusterStatus:
        """``getClusterStatus/{no}``: broker and ZooKeeper counts and colours, per node."""
        no = self._no(cluster_no)
        return self._parse(
            ClusterStatus, await self._result("GET", f"/cluster/getClusterStatus/{no}", key="status")
        )

    # -- catalogs (cached for ``catalog_ttl_s``) -----------------------------------------------
    async def kafka_versions(self) -> list[KafkaVersion]:
        """``getCDSSVersionList``: the versions NAVER offers, code with names."""
        if not self._fresh(self._versions):
            result = await self._result("GET", "/cluster/getCDSSVersionList", key="versions")
            self._versions = (time.monotonic(), self._parse(VersionList, result).kafkaVersionList)
        assert self._versions is not None
        return list(self._versions[1])

    async def version_config_groups(self, version_code: int) -> list[ConfigGroup]:
        """``getKafkaVersionConfigGroupList``: every config group created for ``version_code``
        (all pages)."""
        cached = self._groups.get(version_code)
        if self._fresh(cached):
            assert cached is not None
            return list(cached[1])
        groups: list[ConfigGroup] = []
        page_no = 1
        while True:
            body = self._body(
                ConfigGroupListRequest,
                kafkaVersionCode=version_code,
                pageNo=page_no,
                pageSize=GROUP_PAGE_SIZE,
            )
            result = await self._result(
                "POST", "/configGroup/getKafkaVersionConfigGroupList", key="groups", json=body
            )
            page = self._parse(ConfigGroupPage, result)
            groups.extend(page.kafkaConfigGroupList)
            last = page.isLast if page.isLast is not None else page_no >= (page.totalPage or page_no)
            if last or not page.kafkaConfigGroupList or page_no >= MAX_PAGES:
                break
            page_no += 1
        self._groups[version_code] = (time.monotonic(), groups)
        return list(groups)
