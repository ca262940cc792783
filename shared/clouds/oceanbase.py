"""OceanBase OCP client (seed 001): cluster upgrade, its task DAG, retry/rollback, cluster version.

Auth is HTTP Basic or AK/SK ``OCP-ACCESS-KEY-HMACSHA1`` (see :func:`string_to_sign`). Every
answer is the OCP envelope; ``successful: false`` or an error status becomes a typed error.
Starting an upgrade, retrying and rolling back are never retried automatically once they may
have reached OCP: the caller reconciles with :meth:`OcpClient.list_tasks` instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from email.utils import formatdate
from typing import Any, Literal
from urllib.parse import parse_qsl

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from yarl import URL

from shared.clouds._base import (
    BaseClient,
    Limits,
    ReconcilePolicy,
    Response,
    RetryPolicy,
    encode_query,
    error_for_status,
    parse_retry_after,
    read_secret,
)
from shared.clouds.errors import CloudError, PermanentCloudError, TransientCloudError, ValidationFailed
from shared.clouds.oceanbase_models import (
    OcpCluster,
    OcpEnvelope,
    RollingUpgrade,
    RpmUpgrade,
    TaskInstance,
    TaskPage,
    UpgradeRequest,
)

__all__ = [
    "AUTH_SCHEME",
    "VENDOR",
    "OcpClient",
    "OcpConfig",
    "canonical_resource",
    "hmac_authorization",
    "string_to_sign",
]

VENDOR = "ocp"
AUTH_SCHEME = "OCP-ACCESS-KEY-HMACSHA1"


class OcpConfig(BaseModel):
    """Where OCP is and which environment variables hold its credentials (names, not values)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://[^/\s]+(/.*)?$")
    auth: Literal["basic", "aksk"] = "basic"
    user_env: str = "OCP_USER"
    password_env: str = "OCP_PASSWORD"
    ak_env: str = "OCP_AK"
    sk_env: str = "OCP_SK"
    limits: Limits = Field(default_factory=Limits)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    reconcile: ReconcilePolicy = Field(default_factory=ReconcilePolicy)


# -- AK/SK signing (shared with the simulator, which recomputes it) -------------------------------


def canonical_resource(raw_path: str, raw_query: str) -> str:
    """The path as sent, then ``?`` and the query pairs sorted and percent-encoded (if any)."""
    pairs = sorted(parse_qsl(raw_query, keep_blank_values=True))
    return raw_path + (f"?{encode_query(pairs)}" if pairs else "")


def string_to_sign(
    method: str,
    body: bytes,
    content_type: str,
    date: str,
    host: str,
    headers: Mapping[str, str],
    resource: str,
) -> str:
    """METHOD, MD5(body) upper hex or "", Content-Type or "", Date, host[:port], the sorted
    ``x-ocp-*`` headers as ``name:value`` lines or "", and the canonical resource — joined by ``\\n``."""
    md5 = hashlib.md5(body).hexdigest().upper() if body else ""
    ocp = sorted(f"{k.lower()}:{v.strip()}" for k, v in headers.items() if k.lower().startswith("x-ocp-"))
    return "\n".join([method.upper(), md5, content_type, date, host, "\n".join(ocp), resource])


def hmac_authorization(ak: str, sk: str, to_sign: str) -> str:
    digest = hmac.new(sk.encode(), to_sign.encode(), hashlib.sha1).digest()
    return f"{AUTH_SCHEME} {ak}:{base64.b64encode(digest).decode()}"


def _host_port(url: URL) -> str:
    host = url.raw_host or ""
    return host if url.is_default_port() or url.port is None else f"{host}:{url.port}"


# -- the client ---------------------------------------------------------------------------------


class OcpClient(BaseClient):
    """One OCP server. ``clock`` (epoch seconds) dates AK/SK signatures; tests may skew it."""

    vendor = VENDOR
    request_id_headers = ("X-Trace-Id",)

    def __init__(
        self,
        config: OcpConfig,
        *,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            config.url, limits=config.limits, retry=config.retry, reconcile=config.reconcile, session=session
        )
        self.config = config
        self._clock = clock
        self._user: SecretStr | None = None
        self._password: SecretStr | None = None
        self._ak: SecretStr | None = None
        self._sk: SecretStr | None = None
        if config.auth == "basic":
            self._user, self._password = read_secret(config.user_env), read_secret(config.password_env)
        else:
            self._ak, self._sk = read_secret(config.ak_env), read_secret(config.sk_env)

    def __repr__(self) -> str:
        return f"OcpClient(url={self.endpoint!r}, auth={self.config.auth!r})"

    # -- hooks --------------------------------------------------------------------------------
    def _sign(self, method: str, url: URL, headers: dict[str, str], body: bytes) -> None:
        if self._user is not None and self._password is not None:
            pair = f"{self._user.get_secret_value()}:{self._password.get_secret_value()}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
            return
        assert self._ak is not None and self._sk is not None
        headers["Date"] = formatdate(self._clock(), usegmt=True)
        # aiohttp would add its own Content-Type to a body-less POST after signing; pin it.
        headers.setdefault("Content-Type", "application/json")
        # Set Host ourselves so the value signed is exactly the value sent.
        headers["Host"] = _host_port(url)
        to_sign = string_to_sign(
            method,
            body,
            headers.get("Content-Type", ""),
            headers["Date"],
            headers["Host"],
            headers,
            canonical_resource(url.raw_path, url.raw_query_string),
        )
        headers["Authorization"] = hmac_authorization(
            self._ak.get_secret_value(), self._sk.get_secret_value(), to_sign
        )

    def _raise_for(self, response: Response) -> None:
        raise self._error(response)

    def _error(self, response: Response) -> CloudError:
        try:
            env = OcpEnvelope.model_validate(response.json())
        except (ValueError, ValidationError):
            env = OcpEnvelope()
        message = env.error.message if env.error and env.error.message else f"HTTP {response.status}"
        code = str(env.error.code) if env.error and env.error.code is not None else ""
        trace = env.traceId or response.request_id
        if response.status == 409:
            # "Cluster is UPGRADING": another operation holds the cluster; it clears by waiting.
            return TransientCloudError(
                message, vendor=VENDOR, code=code or "conflict", request_id=trace, status=409
            )
        if response.status < 400:
            return PermanentCloudError(
                message, vendor=VENDOR, code=code, request_id=trace, status=response.status
            )
        return error_for_status(
            VENDOR,
            response.status,
            code=code,
            message=message,
            request_id=trace,
            retry_after=parse_retry_after(response.headers),
        )

    # -- plumbing -----------------------------------------------------------------------------
    async def _data(
        self,
        method: str,
        path: str,
        *,
        key: str,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool = True,
    ) -> Any:
        response = await self._call(
            method, path, endpoint_key=key, json=json, params=params, idempotent=idempotent
        )
        try:
            env = OcpEnvelope.model_validate(response.json())
        except (ValueError, ValidationError):
            raise PermanentCloudError(
                "answer is not an OCP envelope", vendor=VENDOR, code="bad_answer", status=response.status
            ) from None
        if not env.successful:
            raise self._error(response)
        return env.data

    @staticmethod
    def _id(value: int | str, field: str) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = 0
        if number <= 0:
            raise ValidationFailed(
                f"{field} must be a positive integer, got {value!r}", vendor=VENDOR, field=field
            )
        return number

    # -- calls --------------------------------------------------------------------------------
    async def upgrade(
        self, cluster_id: int | str, request: UpgradeRequest | Mapping[str, Any]
    ) -> TaskInstance:
        """Start upgrading cluster ``cluster_id``; returns the task instance (a DAG of subtasks).

        ``request`` is a :class:`RpmUpgrade` (older OCP) or :class:`RollingUpgrade` (newer OCP),
        or a dict of either's fields. Not retried once it may have reached OCP.
        """
        cid = self._id(cluster_id, "cluster_id")
        if isinstance(request, Mapping):
            model: type[BaseModel] = RpmUpgrade if "rpmFileName" in request else RollingUpgrade
            try:
                request = model.model_validate(request)  # type: ignore[assignment]
            except ValidationError as exc:
                err = exc.errors()[0]
                field = ".".join(str(p) for p in err["loc"])
                raise ValidationFailed(f"{field}: {err['msg']}", vendor=VENDOR, field=field) from None
        assert isinstance(request, RpmUpgrade | RollingUpgrade)
        data = await self._data(
            "POST",
            f"/api/v2/ob/clusters/{cid}/upgrade",
            key="upgrade",
            json=request.model_dump(exclude_none=True),
            idempotent=False,
        )
        return self._parse(TaskInstance, data)

    async def get_task(self, task_id: int | str) -> TaskInstance:
        tid = self._id(task_id, "task_id")
        return self._parse(
            TaskInstance, await self._data("GET", f"/api/v2/tasks/instances/{tid}", key="task")
        )

    async def list_tasks(self, cluster_id: int | str, *, status: str | None = None) -> list[TaskInstance]:
        """Tasks of a cluster (newest first) — how a crashed attempt's task is found again."""
        params = {"clusterId": str(self._id(cluster_id, "cluster_id"))}
        if status is not None:
            if status not in ("RUNNING", "FAILED", "SUCCESSFUL"):
                raise ValidationFailed(
                    "status must be RUNNING, FAILED or SUCCESSFUL", vendor=VENDOR, field="status"
                )
            params["status"] = status
        data = await self._data("GET", "/api/v2/tasks/instances", key="tasks", params=params)
        return self._parse(TaskPage, data).contents

    async def retry_task(self, task_id: int | str) -> TaskInstance:
        """Re-run a FAILED task from its failed subtask."""
        tid = self._id(task_id, "task_id")
        data = await self._data("POST", f"/api/v2/tasks/instances/{tid}/retry", key="retry", idempotent=False)
        return self._parse(TaskInstance, data)

    async def rollback_task(self, task_id: int | str) -> TaskInstance:
        """Roll back a FAILED task's failed subtask."""
        tid = self._id(task_id, "task_id")
        data = await self._data(
            "POST", f"/api/v2/tasks/instances/{tid}/rollback", key="rollback", idempotent=False
        )
        return self._parse(TaskInstance, data)

    async def get_cluster(self, cluster_id: int | str) -> OcpCluster:
        """The cluster, with its current ``obVersion`` and ``status``."""
        cid = self._id(cluster_id, "cluster_id")
        return self._parse(OcpCluster, await self._data("GET", f"/api/v2/ob/clusters/{cid}", key="cluster"))
