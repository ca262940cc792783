"""Plain aiohttp calls to the simulator, authenticated the way each vendor wants (test helper).

Huawei calls use an ``X-Auth-Token`` from the simulated IAM; OCP uses Basic auth; NAVER uses
signature v2. No cloud client is involved, so the tests see the raw answers.
"""

from __future__ import annotations

import base64
import time
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from shared.clouds.ncloud.client import signature_v2
from simulator.core import SimCredentials
from simulator.testing import SimHandle

__all__ = ["Vendor", "epoch_of", "header_epoch"]


def header_epoch(response: aiohttp.ClientResponse) -> float:
    """The ``Date`` header as epoch seconds."""
    return parsedate_to_datetime(response.headers["Date"]).timestamp()


def epoch_of(stamp: str) -> float:
    """An ISO 8601 answer timestamp (``...Z``, ``...+0000`` or ``...+00:00``) as epoch seconds."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class Vendor:
    """Raw, authenticated requests to the five simulated services."""

    def __init__(self, sim: SimHandle, http: aiohttp.ClientSession) -> None:
        self.sim, self.http = sim, http
        self.creds: SimCredentials = sim.state.creds
        self._token: str | None = None

    @property
    def project(self) -> str:
        return self.creds.hw_project_id

    async def token(self) -> str:
        if self._token is None:
            c = self.creds
            body = {
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {
                            "user": {
                                "name": c.hw_iam_user,
                                "password": c.hw_iam_password,
                                "domain": {"name": c.hw_iam_domain},
                            }
                        },
                    },
                    "scope": {"project": {"id": c.hw_project_id}},
                }
            }
            async with self.http.post(f"{self.sim.url}/v3/auth/tokens", json=body) as r:
                assert r.status == 201, await r.text()
                self._token = r.headers["X-Subject-Token"]
        return self._token

    async def hw(self, method: str, path: str, **kw: Any) -> aiohttp.ClientResponse:
        """A Huawei call; ``path`` may contain ``{p}`` for the project id. The body is read."""
        headers = {"X-Auth-Token": await self.token(), **kw.pop("headers", {})}
        return await self._send(method, path.replace("{p}", self.project), headers=headers, **kw)

    async def ocp(self, method: str, path: str, **kw: Any) -> aiohttp.ClientResponse:
        basic = base64.b64encode(f"{self.creds.ocp_user}:{self.creds.ocp_password}".encode()).decode()
        return await self._send(method, path, headers={"Authorization": f"Basic {basic}"}, **kw)

    async def ncloud(self, method: str, path: str, **kw: Any) -> aiohttp.ClientResponse:
        ts = str(int(time.time() * 1000))
        sig = signature_v2(method, path, ts, self.creds.ncp_ak, self.creds.ncp_sk)
        headers = {
            "x-ncp-apigw-timestamp": ts,
            "x-ncp-iam-access-key": self.creds.ncp_ak,
            "x-ncp-apigw-signature-v2": sig,
        }
        return await self._send(method, path, headers=headers, **kw)

    async def _send(self, method: str, path: str, **kw: Any) -> aiohttp.ClientResponse:
        async with self.http.request(method, f"{self.sim.url}{path}", **kw) as r:
            await r.read()
            return r
