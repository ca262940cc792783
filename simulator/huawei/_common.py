"""What the simulated Huawei services share: API-gateway auth, error bodies, the Huawei sim state.

Auth is checked like the API gateway (APIG) does, before a service sees the request, and is
implemented here from Huawei's signing guide (``shared/seeds/cloud-apis.md``, "AK/SK signing"),
deliberately *not* with Upshift's own signer: two implementations that must agree, kept honest by
Huawei's worked example (tested on both sides) and a cross-check against the official SDK.

* ``Authorization: SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<a;b>, Signature=<hex>``: the
  signature recomputed from what arrived on the wire (:func:`canonical_request`,
  :func:`string_to_sign`, :func:`signature`), ``X-Sdk-Date`` within 15 minutes of the *real*
  clock, ``host`` and ``x-sdk-date`` among the signed headers, the right AK;
* or an ``X-Auth-Token`` issued by the simulated IAM and not expired.

Anything else is ``401 {"error_code": "APIGW.0301", "error_msg": ..., "request_id": ...}``, the
gateway's documented error body; a path under a Huawei prefix that no route serves is the
gateway's ``404 APIGW.0101`` (:func:`no_such_api`). Answers of the services that ask
:func:`authed` for it carry an ``X-Request-Id``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web

from simulator.core import Handler, SimState, json_error, vendor_time

__all__ = [
    "ALGORITHM",
    "MAX_SKEW",
    "SDK_DATE",
    "HuaweiSim",
    "apigw_error",
    "authed",
    "canonical_request",
    "cce_error",
    "dbs_error",
    "fault_body",
    "huawei_sim",
    "iso",
    "no_such_api",
    "read_json",
    "signature",
    "string_to_sign",
]

#: The algorithm name, first word of ``Authorization`` and first line of the string to sign.
ALGORITHM = "SDK-HMAC-SHA256"
#: ``X-Sdk-Date``: basic ISO 8601 in UTC, e.g. ``20191115T033655Z``.
SDK_DATE = "%Y%m%dT%H%M%SZ"
#: How far ``X-Sdk-Date`` may be from the gateway's clock ("request expired" beyond).
MAX_SKEW = 15 * 60.0
#: Announced by a signer that did not hash a non-JSON body; then this literal replaces the hash.
_PAYLOAD_HEADER = "x-sdk-content-sha256"
_UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
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
    #: The largest ``inPlaceRollingUpdate.userDefinedStep`` CCE accepts. The newest SDK models say
    #: ``[1-120]`` (huaweicloud-sdk-python-v3 @268f1d3, ``in_place_rolling_update.py``); older ones
    #: said ``[1, 40]``: set 40 to behave like a service of that age.
    max_user_defined_step: int = 120

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


def _request_id() -> str:
    return uuid.uuid4().hex


def apigw_error(status: int, code: str, message: str) -> web.Response:
    """The API gateway's own error body (``APIGW.*`` codes), with the request id it adds."""
    rid = _request_id()
    return json_error(status, {"error_code": code, "error_msg": message, "request_id": rid})


def dbs_error(status: int, code: str, message: str) -> web.Response:
    return json_error(status, {"error_code": code, "error_msg": message})


def cce_error(status: int, code: str, message: str) -> web.Response:
    """CCE / Autopilot's error body (vendor-facts §2.7): ``{"errorCode", "errorMessage"}``."""
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


# -- SDK-HMAC-SHA256, from the signing guide ---------------------------------------------------


def _escape(text: str) -> str:
    # RFC 3986 unreserved characters stay as they are (letters, digits, "-", ".", "_", "~").
    return quote(text, safe="~")


def canonical_request(
    method: str,
    raw_path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: list[str],
    body: bytes,
) -> str:
    """The guide's CanonicalRequest, six parts joined by ``\\n``:

    1. the method, upper case;
    2. the URI: the path decoded, each ``/``-separated segment percent-encoded, and a ``/``
       appended when it does not end with one (only here, never on the wire);
    3. the query: its decoded ``(name, value)`` pairs sorted, each encoded as ``name=value``,
       joined by ``&`` (empty without a query);
    4. one ``name:value`` line per signed header (lower-case name, value trimmed), each ending
       in ``\\n``;
    5. the signed header names joined by ``;``;
    6. the lower-hex SHA-256 of the body, or ``UNSIGNED-PAYLOAD`` when the signer announced it.
    """
    segments = unquote(raw_path).split("/")
    uri = "/".join(_escape(s) for s in segments)
    if not uri.endswith("/"):
        uri += "/"
    pairs = sorted((str(k), str(v)) for k, v in query)
    query_line = "&".join(f"{_escape(k)}={_escape(v)}" for k, v in pairs)
    by_name = {k.lower(): str(v).strip() for k, v in headers.items()}
    header_lines = "".join(f"{name}:{by_name.get(name, '')}\n" for name in signed_headers)
    if not body:
        payload = hashlib.sha256(b"").hexdigest()
    elif by_name.get(_PAYLOAD_HEADER) == _UNSIGNED_PAYLOAD:
        payload = _UNSIGNED_PAYLOAD
    else:
        payload = hashlib.sha256(body).hexdigest()
    return "\n".join([method.upper(), uri, query_line, header_lines, ";".join(signed_headers), payload])


def string_to_sign(sdk_date: str, canonical: str) -> str:
    """``SDK-HMAC-SHA256`` · ``X-Sdk-Date`` · lower-hex SHA-256 of the canonical request."""
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{sdk_date}\n{digest}"


def signature(secret_key: str, to_sign: str) -> str:
    """Lower-hex HMAC-SHA256 of the string to sign, keyed with the SK."""
    return hmac.new(secret_key.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def _authorization(value: str) -> dict[str, str] | None:
    """``{"Access", "SignedHeaders", "Signature"}`` from the header, None when malformed."""
    scheme, _, rest = value.partition(" ")
    if scheme != ALGORITHM:
        return None
    parts: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, val = item.strip().partition("=")
        if sep:
            parts[key] = val
    return parts if {"Access", "SignedHeaders", "Signature"} <= parts.keys() else None


_IAM = "Incorrect IAM authentication information: "


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
        return _IAM + "Authorization header is missing"
    parts = _authorization(auth)
    if parts is None:
        return _IAM + "unsupported Authorization header"
    if parts["Access"] != state.creds.hw_ak:
        return _IAM + "AK not found"
    sdk_date = request.headers.get("X-Sdk-Date", "")
    try:
        signed_at = datetime.strptime(sdk_date, SDK_DATE).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return _IAM + "X-Sdk-Date is missing or malformed"
    if abs(time.time() - signed_at) > MAX_SKEW:
        return _IAM + "request expired (X-Sdk-Date skew over 15 minutes)"
    signed = [h for h in parts["SignedHeaders"].split(";") if h]
    if "host" not in signed or "x-sdk-date" not in signed:
        return _IAM + "host and x-sdk-date must be signed"
    headers = {name: request.headers.get(name, "") for name in signed}
    if _PAYLOAD_HEADER in request.headers:
        headers[_PAYLOAD_HEADER] = request.headers[_PAYLOAD_HEADER]
    canonical = canonical_request(
        request.method,
        request.raw_path.split("?", 1)[0],
        request.query.items(),
        headers,
        signed,
        await request.read(),
    )
    expected = signature(state.creds.hw_sk, string_to_sign(sdk_date, canonical))
    if not hmac.compare_digest(expected, parts["Signature"]):
        return _IAM + "verify aksk signature fail"
    project = request.headers.get("X-Project-Id")
    if project is not None and project != state.creds.hw_project_id:
        return _IAM + "X-Project-Id does not match"
    return None


def authed(state: SimState, service: str, handler: Handler, *, request_ids: bool = False) -> Handler:
    """``handler`` behind the API gateway's auth check; also refuses a foreign project id in the
    path. ``request_ids``: every answer carries an ``X-Request-Id`` (the services that opt in)."""
    sim = huawei_sim(state)

    async def wrapped(request: web.Request) -> web.StreamResponse:
        problem = await _auth_problem(request, state, sim)
        if problem is not None:
            state.stats.auth_failures[service] += 1
            response: web.StreamResponse = apigw_error(401, "APIGW.0301", problem)
        elif request.match_info.get("project_id", state.creds.hw_project_id) != state.creds.hw_project_id:
            state.stats.auth_failures[service] += 1
            response = apigw_error(
                403, "APIGW.0302", "The project in the URL is not the token's / credential's project"
            )
        else:
            response = await handler(request)
        if request_ids:
            response.headers.setdefault("X-Request-Id", _request_id())
        return response

    return wrapped


async def no_such_api(request: web.Request) -> web.Response:
    """What the gateway answers for a path (or method) no published API serves."""
    return apigw_error(
        404, "APIGW.0101", "The API does not exist or has not been published in the environment"
    )


def fault_body(service_body: Callable[[int, str, str], Any]) -> Callable[[int, str, str], Any]:
    """Injected 429s and 401s come from the gateway whatever the service; the rest in its shape."""

    def body(status: int, code: str, message: str) -> Any:
        if status == 429:
            return {
                "error_code": "APIGW.0308",
                "error_msg": "The throttling threshold has been reached",
                "request_id": _request_id(),
            }
        return service_body(status, code, message)

    return body
