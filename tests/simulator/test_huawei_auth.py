"""The simulator's own SDK-HMAC-SHA256 verification (``simulator/huawei/_common.py``): Huawei's
worked example as the golden vector, agreement with the official SDK and with our client's
signer, and the API gateway's error bodies over real HTTP (401 APIGW.0301, 404 APIGW.0101)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import aiohttp
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer as SdkSigner
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from yarl import URL

from shared.clouds.huawei.signer import Signer as ClientSigner
from shared.clouds.urls import encode_query
from simulator.core import SimCredentials
from simulator.huawei._common import ALGORITHM, SDK_DATE, canonical_request, signature, string_to_sign
from simulator.testing import run_simulator

AK = "QTWAOYTTINDUT2QVKYUC"
SK = "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc"
CCE = "7378a198-4b2c-11ef-9a5e-0255ac100b01"


def _parse(authorization: str) -> tuple[str, list[str], str]:
    scheme, _, rest = authorization.partition(" ")
    assert scheme == ALGORITHM
    parts = dict(p.strip().split("=", 1) for p in rest.split(","))
    return parts["Access"], parts["SignedHeaders"].split(";"), parts["Signature"]


def test_huaweis_worked_example_is_the_golden_vector() -> None:
    """cloud-apis.md: GET .../vpcs?limit=2&marker=..., Content-Type and X-Sdk-Date given."""
    headers = {
        "Content-Type": "application/json",
        "X-Sdk-Date": "20191115T033655Z",
        "Host": "service.region.example.com",
    }
    signed = ["content-type", "host", "x-sdk-date"]
    canonical = canonical_request(
        "GET",
        "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs",
        [("marker", "13551d6b-755d-4757-b956-536f674975c0"), ("limit", "2")],
        headers,
        signed,
        b"",
    )
    assert hashlib.sha256(canonical.encode()).hexdigest() == (
        "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a"
    )
    assert signature(SK, string_to_sign("20191115T033655Z", canonical)) == (
        "7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"
    )


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12)
_segment = _text.filter(lambda s: s not in (".", ".."))
_request = {
    "method": st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
    "segments": st.lists(_segment, min_size=1, max_size=4),
    "pairs": st.lists(st.tuples(st.sampled_from(["id", "limit", "ä", "x y", "a~b"]), _text), max_size=5),
    "body": st.one_of(st.just(b""), st.binary(max_size=64)),
    "content_type": st.sampled_from(
        ["application/json", "application/json;charset=utf-8", "text/plain", None]
    ),
}
_DATE = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC).strftime(SDK_DATE)


def _verify(method, raw_path, pairs, headers, body, authorization) -> bool:
    """What the simulator's gateway does with a request that arrived like this."""
    access, signed, sig = _parse(authorization)
    lowered = {k.lower(): v for k, v in headers.items()}
    canonical = canonical_request(method, raw_path, pairs, lowered, signed, body)
    return access == AK and signature(SK, string_to_sign(lowered["x-sdk-date"], canonical)) == sig


@settings(max_examples=200, deadline=None)
@given(**_request)
def test_agrees_with_the_official_sdk(method, segments, pairs, body, content_type) -> None:
    raw_path = "/" + "/".join(quote(s, safe="~") for s in segments)
    headers = {"X-Sdk-Date": _DATE, **({"Content-Type": content_type} if content_type else {})}
    request = SdkRequest(
        method=method,
        schema="https",
        host="svc.example.com",
        resource_path=raw_path,
        query_params=list(pairs),
        header_params=dict(headers),
        body=body,
    )
    signed = SdkSigner(BasicCredentials(AK, SK)).sign(request)
    assert _verify(method, raw_path, pairs, signed.header_params, body, signed.header_params["Authorization"])


@settings(max_examples=200, deadline=None)
@given(**_request)
def test_agrees_with_our_clients_signer(method, segments, pairs, body, content_type) -> None:
    raw_path = "/" + "/".join(quote(s, safe="~") for s in segments)
    query = encode_query(pairs)
    url = URL(f"https://svc.example.com{raw_path}" + (f"?{query}" if query else ""), encoded=True)
    headers = {"X-Sdk-Date": _DATE, **({"Content-Type": content_type} if content_type else {})}
    ClientSigner(AK, SecretStr(SK)).sign(method, url, headers, body)
    assert _verify(method, url.raw_path, url.query.items(), headers, body, headers["Authorization"])
    # and another path is refused, and so is another body unless it was announced unsigned
    assert not _verify(method, url.raw_path + "x", url.query.items(), headers, body, headers["Authorization"])
    tampered = _verify(
        method, url.raw_path, url.query.items(), headers, body + b"!", headers["Authorization"]
    )
    assert tampered == (bool(body) and headers.get("X-Sdk-Content-Sha256") == "UNSIGNED-PAYLOAD")


# -- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture
async def sim():
    async with run_simulator(speed=1.0) as handle, aiohttp.ClientSession() as http:
        yield handle, http


def _signed_headers(
    creds: SimCredentials, method: str, url: URL, body: bytes, *, when: datetime
) -> dict[str, str]:
    """A request signed with the simulator's own functions (no client code involved)."""
    host = f"{url.host}:{url.port}"
    headers = {"Content-Type": "application/json", "Host": host, "X-Sdk-Date": when.strftime(SDK_DATE)}
    signed = sorted(k.lower() for k in headers)
    canonical = canonical_request(method, url.raw_path, url.query.items(), headers, signed, body)
    sig = signature(creds.hw_sk, string_to_sign(headers["X-Sdk-Date"], canonical))
    headers["Authorization"] = (
        f"{ALGORITHM} Access={creds.hw_ak}, SignedHeaders={';'.join(signed)}, Signature={sig}"
    )
    return headers


async def test_a_correctly_signed_request_passes_and_a_stale_one_is_refused(sim) -> None:
    handle, http = sim
    creds = handle.state.creds
    url = URL(f"{handle.url}/api/v3/projects/{creds.hw_project_id}/clusters/{CCE}")
    now = datetime.now(UTC)
    async with http.get(url, headers=_signed_headers(creds, "GET", url, b"", when=now)) as r:
        assert r.status == 200 and r.headers["X-Request-Id"]
    stale = now - timedelta(minutes=16)
    async with http.get(url, headers=_signed_headers(creds, "GET", url, b"", when=stale)) as r:
        body = await r.json()
        assert r.status == 401 and body["error_code"] == "APIGW.0301" and "15 minutes" in body["error_msg"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope"},
        {"X-Auth-Token": "MIInot-a-token"},
    ],
)
async def test_unauthenticated_requests_get_the_gateways_401_body(sim, headers) -> None:
    handle, http = sim
    url = f"{handle.url}/api/v3/projects/{handle.state.creds.hw_project_id}/clusters/{CCE}"
    async with http.get(url, headers=headers) as r:
        body = await r.json()
    assert r.status == 401 and r.content_type == "application/json"
    assert set(body) == {"error_code", "error_msg", "request_id"} and body["error_code"] == "APIGW.0301"
    assert handle.state.stats.calls == {}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v3/projects/{p}/clusters/{c}/nodes-that-do-not-exist"),
        ("GET", "/api/v3/"),
        ("DELETE", "/api/v3/projects/{p}/clusters/{c}/operation/upgrade"),
        ("GET", "/api/v3.1/projects/{p}/clusters/{c}/operation/backup"),
        ("POST", "/autopilot/v3/projects/{p}/clusters/{c}/operation/upgrade/pause"),
        ("GET", "/autopilot/v2/anything"),
    ],
)
async def test_unknown_paths_answer_the_gateways_json_404(sim, method, path) -> None:
    handle, http = sim
    path = path.replace("{p}", handle.state.creds.hw_project_id).replace("{c}", CCE)
    async with http.request(method, handle.url + path) as r:
        text = await r.text()
    assert r.status == 404 and r.content_type == "application/json"
    body = json.loads(text)
    assert body["error_code"] == "APIGW.0101" and body["error_msg"] and body["request_id"]
