"""What the simulated Huawei services share: API-gateway auth, error bodies, the Huawei sim state.

Auth is checked like the API gateway does, before a service sees the request: an
``SDK-HMAC-SHA256`` signature recomputed with Upshift's own signer (cross-checked against the
official SDK in the tests), an ``X-Sdk-Date`` within 15 minutes of the *real* clock, the right AK;
or an ``X-Auth-Token`` issued by the simulated IAM and not expired. Anything else is
``401 {"error_code": "APIGW.0301", ...}``.
"""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from shared.clouds.huawei.signer import ALGORITHM, DATE_FORMAT, canonical_request, signature
from simulator.core import Handler, SimState, json_error, vendor_time

__all__ = [
    "MAX_SKEW",
    "HuaweiSim",
    "apigw_error",
    "authed",
    "cce_error",
    "dbs_error",
    "huawei_sim",
    "iso",
    "read_json",
]

MAX_SKEW = 15 * 60.0
_NS = uuid.UUID("6f1e0a52-52f4-4a8e-9d0e-8a3c1b7f0c11")


@dataclass
class HuaweiSim:
    """Huawei-only state kept beside ``SimState``: tokens, checks, workflows, snapshots."""

    #: token -> expiry (real epoch seconds)
    tokens: dict[str, float] = field(default_factory=dict)
    token_ttl: float = 24 * 3600.0
    #: A TaurusDB job answers 404 for this many real seconds after it was created (as the real one
    #: may); the fault spec's ``list_lag_s`` does the same per request.
    fresh_job_404_s: float = 0.0
    #: check / workflow / snapshot records; each has ``created_real`` (``time.monotonic()``)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    workflows: dict[str, dict[str, Any]] = field(default_factory=dict)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)

    def uid(self, state: SimState) -> str:
        """A UUID, deterministic per simulator run (derived from the state's sequence)."""
        return str(uuid.uuid5(_NS, state.new_id("hw-")))


def huawei_sim(state: SimState) -> HuaweiSim:
    """The Huawei part of ``state`` (created on first use)."""
    sim = vars(state).get("_huawei")
    if sim is None:
        sim = HuaweiSim()
        vars(state)["_huawei"] = sim
    return sim


def iso(epoch: float | None) -> str | None:
    """``epoch`` on the vendor's clock (the request's ``clock_skew_s`` added), ISO 8601 with Z."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(vendor_time(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def apigw_error(status: int, code: str, message: str) -> web.Response:
    return json_error(status, {"error_code": code, "error_msg": message})


def dbs_error(status: int, code: str, message: str) -> web.Response:
    return json_error(status, {"error_code": code, "error_msg": message})


def cce_error(status: int, code: str, message: str) -> web.Response:
    return json_error(status, {"errorCode": code, "errorMessage": message})


async def read_json(request: web.Request) -> Any:
    """The body as JSON, or None when it is empty or not JSON (handlers answer 400 themselves)."""
    raw = await request.read()
    if not raw:
        return None
    try:
        return await request.json()
    except ValueError:
        return None


def _parse_authorization(value: str) -> dict[str, str] | None:
    if not value.startswith(ALGORITHM + " "):
        return None
    parts: dict[str, str] = {}
    for item in value[len(ALGORITHM) + 1 :].split(","):
        key, _, val = item.strip().partition("=")
        parts[key] = val
    return parts if {"Access", "SignedHeaders", "Signature"} <= parts.keys() else None


async def _auth_problem(request: web.Request, state: SimState, sim: HuaweiSim) -> str | None:
    """None when the request is authentic, else the reason (sent back in ``error_msg``)."""
    token = request.headers.get("X-Auth-Token")
    if token is not None:
        expires = sim.tokens.get(token)
        if expires is None:
            return "Incorrect token or token resolution failed"
        if time.time() >= expires:
            return "The token expires."
        return None
    auth = request.headers.get("Authorization")
    if not auth:
        return "Incorrect IAM authentication information: Authorization header is missing"
    parts = _parse_authorization(auth)
    if parts is None:
        return "Incorrect IAM authentication information: unsupported Authorization header"
    if parts["Access"] != state.creds.hw_ak:
        return "Incorrect IAM authentication information: AK not found"
    sdk_date = request.headers.get("X-Sdk-Date", "")
    try:
        signed_at = datetime.strptime(sdk_date, DATE_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return "Incorrect IAM authentication information: X-Sdk-Date is missing or malformed"
    if abs(time.time() - signed_at) > MAX_SKEW:
        return "Incorrect IAM authentication information: request expired (X-Sdk-Date skew over 15 minutes)"
    signed = [h for h in parts["SignedHeaders"].split(";") if h]
    if "host" not in signed or "x-sdk-date" not in signed:
        return "Incorrect IAM authentication information: host and x-sdk-date must be signed"
    headers = {name: request.headers.get(name, "") for name in signed}
    body = await request.read()
    raw_path = request.raw_path.split("?", 1)[0]
    canonical = canonical_request(request.method, raw_path, request.query.items(), headers, signed, body)
    expected = signature(state.creds.hw_sk, sdk_date, canonical)
    if not hmac.compare_digest(expected, parts["Signature"]):
        return "Incorrect IAM authentication information: verify aksk signature fail"
    project = request.headers.get("X-Project-Id")
    if project is not None and project != state.creds.hw_project_id:
        return "Incorrect IAM authentication information: X-Project-Id does not match"
    return None


def authed(state: SimState, service: str, handler: Handler) -> Handler:
    """``handler`` behind the API gateway's auth check; also refuses a foreign project id in the path."""
    sim = huawei_sim(state)

    async def wrapped(request: web.Request) -> web.StreamResponse:
        problem = await _auth_problem(request, state, sim)
        if problem is not None:
            state.stats.auth_failures[service] += 1
            return apigw_error(401, "APIGW.0301", problem)
        project = request.match_info.get("project_id")
        if project is not None and project != state.creds.hw_project_id:
            state.stats.auth_failures[service] += 1
            return apigw_error(
                403, "APIGW.0302", "The project in the URL is not the token's / credential's project"
            )
        return await handler(request)

    return wrapped


def fault_body(service_body: Callable[[int, str, str], Any]) -> Callable[[int, str, str], Any]:
    """Injected 429s and 401s come from the gateway whatever the service; the rest in its shape."""

    def body(status: int, code: str, message: str) -> Any:
        if status == 429:
            return {"error_code": "APIGW.0308", "error_msg": "The throttling threshold has been reached"}
        return service_body(status, code, message)

    return body
