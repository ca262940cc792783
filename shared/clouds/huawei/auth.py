"""Huawei Cloud authentication: AK/SK request signing, or an IAM token (cached, refreshed on 401).

Both implement ``HuaweiAuth``: ``apply`` adds the auth headers to a request about to be sent;
``invalidate`` is called after the server answered 401 and says whether a retry may help
(a token can be refetched; a signature will not get better).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import aiohttp
from pydantic import BaseModel, ConfigDict, SecretStr
from yarl import URL

from shared.clouds.client import BaseClient
from shared.clouds.credentials import read_secret
from shared.clouds.errors import AuthError
from shared.clouds.huawei._errors import VENDOR, huawei_error
from shared.clouds.huawei.config import HuaweiConfig
from shared.clouds.huawei.signer import Signer
from shared.clouds.limits import Limits
from shared.clouds.response import Response
from shared.clouds.retry import RetryPolicy

__all__ = ["AkSkAuth", "HuaweiAuth", "IamClient", "TokenAuth", "make_auth"]

#: Refetch a token this long before IAM says it expires, so no request carries a dying one.
_EXPIRY_MARGIN = 300.0


class HuaweiAuth(Protocol):
    async def apply(self, method: str, url: URL, headers: dict[str, str], body: bytes) -> None: ...

    def invalidate(self) -> bool: ...


class AkSkAuth:
    """``SDK-HMAC-SHA256`` signing with ``X-Project-Id`` set, as the SDK's BasicCredentials does."""

    def __init__(self, signer: Signer, project_id: str) -> None:
        self.signer = signer
        self.project_id = project_id

    def __repr__(self) -> str:
        return f"AkSkAuth({self.signer!r}, project_id={self.project_id!r})"

    async def apply(self, method: str, url: URL, headers: dict[str, str], body: bytes) -> None:
        headers["X-Project-Id"] = self.project_id
        self.signer.sign(method, url, headers, body)

    def invalidate(self) -> bool:
        return False


class _TokenBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    expires_at: datetime | None = None


class _TokenAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    token: _TokenBody = _TokenBody()


class IamClient(BaseClient):
    """``POST /v3/auth/tokens`` (password identity, project scope); the token is the
    ``X-Subject-Token`` response header."""

    vendor = VENDOR

    def _raise_for(self, response: Response) -> None:
        error = huawei_error(response)
        if response.status in (400, 401, 403):
            # IAM says "wrong user/password/domain" with these: no retry will fix it.
            raise AuthError(
                error.message,
                vendor=VENDOR,
                code=error.code,
                request_id=error.request_id,
                status=error.status,
            )
        raise error

    async def issue_token(
        self, user: str, password: SecretStr, domain: str, project_id: str
    ) -> tuple[str, float | None]:
        """(token, expiry as epoch seconds or None)."""
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": user,
                            "password": password.get_secret_value(),
                            "domain": {"name": domain},
                        }
                    },
                },
                "scope": {"project": {"id": project_id}},
            }
        }
        response = await self._call("POST", "/v3/auth/tokens", endpoint_key="iam", json=body)
        token = response.headers.get("X-Subject-Token")
        if not token:
            raise AuthError(
                "IAM answered without an X-Subject-Token header",
                vendor=VENDOR,
                request_id=response.request_id,
                status=response.status,
            )
        expires = _TokenAnswer.model_validate(response.json() or {}).token.expires_at
        return token, (expires.timestamp() if expires else None)


class TokenAuth:
    """``X-Auth-Token`` from IAM, fetched once and shared by concurrent requests."""

    def __init__(
        self,
        iam: IamClient,
        *,
        user: str,
        password: SecretStr,
        domain: str,
        project_id: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.iam = iam
        self.user = user
        self._password = password
        self.domain = domain
        self.project_id = project_id
        self._clock = clock
        self._token: SecretStr | None = None
        self._expires: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    def __repr__(self) -> str:
        return f"TokenAuth(user={self.user!r}, domain={self.domain!r}, project_id={self.project_id!r})"

    def _valid(self) -> bool:
        if self._token is None:
            return False
        return self._expires is None or self._clock() < self._expires - _EXPIRY_MARGIN

    async def token(self) -> str:
        if not self._valid():
            async with self._lock:
                if not self._valid():  # another request may have fetched it while we waited
                    token, expires = await self.iam.issue_token(
                        self.user, self._password, self.domain, self.project_id
                    )
                    self.fetches += 1
                    self._token, self._expires = SecretStr(token), expires
        assert self._token is not None
        return self._token.get_secret_value()

    async def apply(self, method: str, url: URL, headers: dict[str, str], body: bytes) -> None:
        headers["X-Auth-Token"] = await self.token()

    def invalidate(self) -> bool:
        self._token = None
        self._expires = None
        return True


def make_auth(
    config: HuaweiConfig,
    *,
    session: aiohttp.ClientSession | None = None,
    limits: Limits | None = None,
    retry: RetryPolicy | None = None,
) -> HuaweiAuth:
    """The auth ``config.auth`` asks for, with credentials read from the named variables now."""
    if config.auth == "token":
        iam = IamClient(
            config.endpoints["iam"],
            limits=limits or config.limits,
            retry=retry or config.retry,
            session=session,
        )
        return TokenAuth(
            iam,
            user=read_secret(config.iam_user_env).get_secret_value(),
            password=read_secret(config.iam_password_env),
            domain=read_secret(config.iam_domain_env).get_secret_value(),
            project_id=config.project_id,
        )
    ak = read_secret(config.ak_env).get_secret_value()
    return AkSkAuth(Signer(ak, read_secret(config.sk_env)), config.project_id)
