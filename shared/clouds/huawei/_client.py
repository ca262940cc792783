"""``HuaweiClient``: the base of the CCE, Autopilot and TaurusDB clients (auth, errors, JSON)."""

from __future__ import annotations

from typing import ClassVar, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError
from yarl import URL

from shared.clouds.client import BaseClient, JsonObject
from shared.clouds.errors import AuthError, PermanentCloudError
from shared.clouds.huawei._errors import VENDOR, huawei_error
from shared.clouds.huawei.auth import HuaweiAuth, make_auth
from shared.clouds.huawei.config import HuaweiConfig
from shared.clouds.response import Response
from shared.clouds.urls import Params
from shared.log import get_logger

__all__ = ["HuaweiClient"]

M = TypeVar("M", bound=BaseModel)
_log = get_logger("upshift.clouds.huawei")


class HuaweiClient(BaseClient):
    """One Huawei service endpoint. Pass ``auth`` to share one token cache between clients."""

    vendor = VENDOR
    service: ClassVar[str]

    def __init__(
        self,
        config: HuaweiConfig,
        *,
        auth: HuaweiAuth | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        super().__init__(
            config.endpoints[self.service],
            limits=config.limits,
            retry=config.retry,
            reconcile=config.reconcile,
            session=session,
        )
        self.config = config
        self.project_id = config.project_id
        self.auth = auth if auth is not None else make_auth(config, session=session)

    async def _sign(self, method: str, url: URL, headers: dict[str, str], body: bytes) -> None:
        await self.auth.apply(method, url, headers, body)

    def _raise_for(self, response: Response) -> None:
        raise huawei_error(response)

    async def _call(
        self,
        method: str,
        url_path: str,
        *,
        endpoint_key: str,
        json: JsonObject | None = None,
        params: Params | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool = True,
    ) -> Response:
        """``BaseClient._call``; on 401 in token mode the token is refetched and the call made once more.

        Safe for non-idempotent calls too: a 401 means the gateway refused the request unseen.
        """
        base_call = super()._call

        async def once() -> Response:
            return await base_call(
                method,
                url_path,
                endpoint_key=endpoint_key,
                json=json,
                params=params,
                headers=headers,
                idempotent=idempotent,
            )

        try:
            return await once()
        except AuthError as exc:
            if not self.auth.invalidate():
                raise
            _log.info("huawei.token_refresh", code=exc.code, request_id=exc.request_id)
            return await once()

    def _parse_response(self, model: type[M], response: Response) -> M:
        """The body as ``model``; a body that does not fit is a permanent error (no retry helps).

        Unlike ``BaseClient._parse`` (a value already read), this reads the body too, and the
        error carries the answer's request id and status."""
        try:
            return model.model_validate(response.json())
        except (ValueError, ValidationError) as exc:
            raise PermanentCloudError(
                f"unexpected {model.__name__} answer: {str(exc).splitlines()[0]}",
                vendor=VENDOR,
                code="client.bad_answer",
                request_id=response.request_id,
                status=response.status,
            ) from None
