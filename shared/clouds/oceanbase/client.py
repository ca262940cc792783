"""OceanBase client, over OCP (OceanBase Cloud Platform, seed 001): cluster upgrade, its task DAG,
retry/rollback, cluster version.

Auth is HTTP Basic or AK/SK ``OCP-ACCESS-KEY-HMACSHA1`` (see :func:`string_to_sign`). Every
answer is the OCP envelope; ``successful: false`` or an error status becomes a typed error — a
refusal is :class:`OceanBaseRefused`, which keeps OCP's ``error`` object (a caller may decide on the
field a validation failure names). Starting an upgrade, retrying and rolling back are never
retried automatically once they may have reached OCP: the caller reconciles with
:meth:`OceanBaseClient.list_tasks` instead, which asks for the upgrade task by name, sorted, every
page (the list's default order is not documented).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterable, Mapping
from email.utils import formatdate
from typing import Any, Literal
from urllib.parse import parse_qsl, quote

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from yarl import URL

from shared.clouds.client import BaseClient, JsonObject, ReconcilePolicy
from shared.clouds.credentials import read_secret
from shared.clouds.errors import CloudError, PermanentCloudError, TransientCloudError, ValidationFailed
from shared.clouds.limits import Limits
from shared.clouds.oceanbase.models import (
    TASK_STATUSES,
    UPGRADE_TASK_NAME,
    Cluster,
    Envelope,
    ErrorBody,
    RollingUpgrade,
    RpmUpgrade,
    TaskInstance,
    TaskPage,
    UpgradeRequest,
)
from shared.clouds.response import Response, error_for_status
from shared.clouds.retry import RetryPolicy, parse_retry_after
from shared.clouds.urls import Params

__all__ = [
    "AUTH_SCHEME",
    "BUSY_CODES",
    "TASK_PAGE",
    "TASK_PAGES",
    "VENDOR",
    "OceanBaseClient",
    "OceanBaseConfig",
    "OceanBaseRefused",
    "canonical_query",
    "canonical_resource",
    "hmac_authorization",
    "string_to_sign",
]

#: The vendor label on this client's errors and log lines. It stays "ocp" (the API's name, as in
#: the simulator's service name) although the package says oceanbase: ``str()`` of an error starts
#: with it, and that text is persisted — dead letters (``bus_dead.error``, ``last_error``), the
#: dead-letter event's data — and searched in logs (``vendor=``); renaming it would split the
#: records of one vendor across two names.
VENDOR = "ocp"
AUTH_SCHEME = "OCP-ACCESS-KEY-HMACSHA1"
#: OCP error codes meaning "the cluster is busy with another operation": 50002
#: OB_CLUSTER_OPS_NOT_ALLOWED, "Operation not allowed in cluster {0}." (oceanbase/ocp-express
#: ``ErrorCodes``; OCP's own table was not found). Such a refusal clears by waiting — and may be
#: our own upgrade, whose answer was lost — so it is a conflict to reconcile, like an HTTP 409.
BUSY_CODES = frozenset({"50002"})
#: ``size`` of one task-list page (the list takes at most 2000) and the most pages read.
TASK_PAGE, TASK_PAGES = 100, 20


class OceanBaseRefused(PermanentCloudError):
    """OCP refused the request; ``error`` is its ``error`` object (``code``, ``message``,
    ``subErrors[{field, message, …}]`` for a validation failure)."""

    def __init__(
        self,
        message: str,
        *,
        error: ErrorBody,
        vendor: str = VENDOR,
        code: str = "",
        request_id: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, vendor=vendor, code=code, request_id=request_id, status=status)
        self.error = error

    @property
    def error_text(self) -> str:
        """The ``error`` object as JSON text (what a caller may search for a field name)."""
        return json.dumps(self.error.model_dump(exclude_none=True), ensure_ascii=False, default=str)


class OceanBaseConfig(BaseModel):
    """Where OCP is and which environment variables hold its credentials (names, not values).

    The variable names default to ``OCP_*``: what operators already set, so they stay."""

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


# -- AK/SK signing (common-ocp-10000000002169100; OB-MCP ocp_client.py) ------------------------
# The simulator checks signatures with its own implementation; the tests hold both to one
# golden vector built from the documented layout.


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """The query as signed: values of a repeated key comma-joined (OCP's array parameters), keys
    sorted, each ``quote(k, safe="")=quote(v, safe="")`` (RFC 3986: a space is ``%20``), ``&``-joined.
    The client sends exactly this string, so what is signed is what is sent."""
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(str(key), []).append(str(value))
    return "&".join(f"{quote(k, safe='')}={quote(','.join(v), safe='')}" for k, v in sorted(grouped.items()))


def canonical_resource(raw_path: str, raw_query: str) -> str:
    """The path as sent, then ``?`` and the canonical query (if there is one)."""
    query = canonical_query(parse_qsl(raw_query, keep_blank_values=True))
    return raw_path + (f"?{query}" if query else "")


def string_to_sign(
    method: str,
    body: bytes,
    content_type: str,
    date: str,
    host: str,
    headers: Mapping[str, str],
    resource: str,
) -> str:
    """The documented ``toSignString``, seven parts joined by ``\\n``: HttpMethod (upper case),
    Md5Payload (upper-hex MD5 of the body, 32 characters, or "" without a body), Content-Type or
    "", the Date, Host (``host:port``), the ``x-ocp-*`` headers as sorted ``name:value`` lines
    or "", and the path with its canonical query."""
    md5 = hashlib.md5(body).hexdigest().upper().zfill(32) if body else ""
    ocp = sorted(f"{k.lower()}:{v.strip()}" for k, v in headers.items() if k.lower().startswith("x-ocp-"))
    return "\n".join([method.upper(), md5, content_type, date, host, "\n".join(ocp), resource])


def hmac_authorization(ak: str, sk: str, to_sign: str) -> str:
    """``OCP-ACCESS-KEY-HMACSHA1 {AK}:{base64(HMAC-SHA1(SK, toSignString))}``."""
    digest = hmac.new(sk.encode(), to_sign.encode(), hashlib.sha1).digest()
    return f"{AUTH_SCHEME} {ak}:{base64.b64encode(digest).decode()}"


def _host_port(url: URL) -> str:
    host = url.raw_host or ""
    return host if url.is_default_port() or url.port is None else f"{host}:{url.port}"


# -- the client ---------------------------------------------------------------------------------


class OceanBaseClient(BaseClient):
    """One OceanBase Cloud Platform (OCP) server. ``clock`` (epoch seconds) dates AK/SK
    signatures; tests may skew it."""

    vendor = VENDOR
    request_id_headers = ("X-Trace-Id",)

    def __init__(
        self,
        config: OceanBaseConfig,
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
        return f"OceanBaseClient(url={self.endpoint!r}, auth={self.config.auth!r})"

    # -- hooks --------------------------------------------------------------------------------
    def _url(self, url_path: str, params: Params | None) -> URL:
        # The query goes on the wire exactly as it is signed (canonical: sorted, arrays joined).
        pairs = params.items() if isinstance(params, Mapping) else (params or ())
        query = canonical_query(pairs)
        return URL(self.endpoint + url_path + (f"?{query}" if query else ""), encoded=True)

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
            env = Envelope.model_validate(response.json())
        except (ValueError, ValidationError):
            env = Envelope()
        error = env.error or ErrorBody()
        message = error.message or f"HTTP {response.status}"
        code = str(error.code) if error.code not in (None, 0, "0", "") else ""
        trace = env.traceId or response.request_id
        status = response.status
        if status == 409 or code in BUSY_CODES:
            # Another operation holds the cluster (maybe our own upgrade): it clears by waiting.
            return TransientCloudError(
                message,
                vendor=VENDOR,
                code=code or "conflict",
                request_id=trace,
                status=status,
                conflict=True,
            )
        if status < 400 or status in (400, 404, 405, 409, 415, 422):
            return OceanBaseRefused(message, error=error, code=code, request_id=trace, status=status)
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
        json: JsonObject | None = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool = True,
    ) -> Any:
        response = await self._call(
            method, path, endpoint_key=key, json=json, params=params, idempotent=idempotent
        )
        try:
            env = Envelope.model_validate(response.json())
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
        self, cluster_id: int | str, request: UpgradeRequest | Mapping[str, object]
    ) -> TaskInstance:
        """Start upgrading cluster ``cluster_id``; returns the task instance (a DAG of subtasks).

        ``request`` is a :class:`RpmUpgrade` (older OCP) or :class:`RollingUpgrade` (newer OCP),
        or a dict of either's fields. Not retried once it may have reached OCP.
        """
        cid = self._id(cluster_id, "cluster_id")
        body: UpgradeRequest
        if isinstance(request, Mapping):
            model: type[UpgradeRequest] = RpmUpgrade if "rpmFileName" in request else RollingUpgrade
            try:
                body = model.model_validate(request)
            except ValidationError as exc:
                err = exc.errors()[0]
                field = ".".join(str(p) for p in err["loc"])
                raise ValidationFailed(f"{field}: {err['msg']}", vendor=VENDOR, field=field) from None
        else:
            body = request
        data = await self._data(
            "POST",
            f"/api/v2/ob/clusters/{cid}/upgrade",
            key="upgrade",
            json=body.model_dump(exclude_none=True),
            idempotent=False,
        )
        return self._parse(TaskInstance, data)

    async def get_task(self, task_id: int | str) -> TaskInstance:
        tid = self._id(task_id, "task_id")
        return self._parse(
            TaskInstance, await self._data("GET", f"/api/v2/tasks/instances/{tid}", key="task")
        )

    async def list_tasks(
        self,
        cluster_id: int | str,
        *,
        name: str | None = UPGRADE_TASK_NAME,
        status: str | None = None,
        sort: str = "id,desc",
        page_size: int = TASK_PAGE,
        max_pages: int = TASK_PAGES,
    ) -> list[TaskInstance]:
        """Tasks of a cluster, newest first, every page (up to ``max_pages``) — how a crashed
        attempt's task is found again. ``GET /api/v2/tasks/instances`` takes ``clusterId``,
        ``name`` (a fuzzy match: the exact name is checked here), ``status``, ``page`` (from 1),
        ``size`` (at most 2000) and ``sort`` (e.g. ``id,desc``); its default order is not
        documented, so the order is always asked for (vendor-facts §5.2)."""
        cid = self._id(cluster_id, "cluster_id")
        if status is not None and status not in TASK_STATUSES:
            raise ValidationFailed(
                f"status must be one of {', '.join(TASK_STATUSES)}", vendor=VENDOR, field="status"
            )
        if not 1 <= page_size <= 2000:
            raise ValidationFailed("page_size must be within 1..2000", vendor=VENDOR, field="page_size")
        params = {"clusterId": str(cid), "sort": sort, "size": str(page_size)}
        if name is not None:
            params["name"] = name
        if status is not None:
            params["status"] = status
        out: dict[int, TaskInstance] = {}  # a task started between two pages may show up twice
        for page in range(1, max_pages + 1):
            data = await self._data(
                "GET", "/api/v2/tasks/instances", key="tasks", params={**params, "page": str(page)}
            )
            answer = self._parse(TaskPage, data)
            for task in answer.contents:
                out.setdefault(task.id, task)
            if page >= answer.total_pages or not answer.contents:
                break
        return [t for t in out.values() if name is None or t.name == name]

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

    async def subtask_log(self, task_id: int | str, subtask_id: int | str) -> str:
        """``GET /api/v2/tasks/instances/{id}/subtasks/{sid}/log`` → ``data.log``: what a failed
        subtask says (the documented place for a failure's reason; task pages, vendor-facts §5.2)."""
        tid, sid = self._id(task_id, "task_id"), self._id(subtask_id, "subtask_id")
        data = await self._data("GET", f"/api/v2/tasks/instances/{tid}/subtasks/{sid}/log", key="task")
        return str(data.get("log") or "") if isinstance(data, dict) else ""

    async def get_cluster(self, cluster_id: int | str) -> Cluster:
        """The cluster, with its current ``obVersion`` and ``status``."""
        cid = self._id(cluster_id, "cluster_id")
        return self._parse(Cluster, await self._data("GET", f"/api/v2/ob/clusters/{cid}", key="cluster"))
