"""Our SDK-HMAC-SHA256 signer against Huawei's worked example and the official SDK's Signer."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from urllib.parse import quote

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer as SdkSigner
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from yarl import URL

from shared.clouds.huawei.signer import Signer, canonical_request
from shared.clouds.urls import encode_query

AK = "QTWAOYTTINDUT2QVKYUC"
SK = "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc"


def test_public_worked_example() -> None:
    url = URL(
        "https://service.region.example.com/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs"
        "?limit=2&marker=13551d6b-755d-4757-b956-536f674975c0"
    )
    headers = {"Content-Type": "application/json", "X-Sdk-Date": "20191115T033655Z"}
    Signer(AK, SecretStr(SK)).sign("GET", url, headers, b"")
    signed = ["content-type", "host", "x-sdk-date"]
    canonical = canonical_request("GET", url.raw_path, url.query.items(), headers, signed, b"")
    assert hashlib.sha256(canonical.encode()).hexdigest() == (
        "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a"
    )
    assert headers["Authorization"] == (
        "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-sdk-date, "
        "Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"
    )


def _sdk_authorization(method, host, path, pairs, headers, body) -> str:
    request = SdkRequest(
        method=method,
        schema="https",
        host=host,
        resource_path=path,
        query_params=list(pairs),
        header_params=dict(headers),
        body=body,
    )
    signed = SdkSigner(BasicCredentials(AK, SK)).sign(request)
    return signed.header_params["Authorization"]


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12)
_segment = _text.filter(lambda s: s not in (".", ".."))


@settings(max_examples=200, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
    segments=st.lists(_segment, min_size=1, max_size=4),
    trailing=st.booleans(),
    pairs=st.lists(st.tuples(st.sampled_from(["id", "limit", "ä", "x y", "a~b"]), _text), max_size=5),
    body=st.one_of(st.just(b""), st.binary(max_size=64)),
    content_type=st.sampled_from(["application/json", "application/json;charset=utf-8", "text/plain", None]),
    extra=st.dictionaries(
        st.sampled_from(["X-Language", "X-Project-Id", "X_Ignored"]), st.text("abc -", max_size=6)
    ),
)
def test_matches_official_sdk(method, segments, trailing, pairs, body, content_type, extra) -> None:
    raw_path = "/" + "/".join(quote(s, safe="~") for s in segments) + ("/" if trailing else "")
    query = encode_query(pairs)
    url = URL(f"https://svc.example.com{raw_path}" + (f"?{query}" if query else ""), encoded=True)
    headers = {"X-Sdk-Date": datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC).strftime("%Y%m%dT%H%M%SZ"), **extra}
    if content_type:
        headers["Content-Type"] = content_type
    ours = dict(headers)
    Signer(AK, SecretStr(SK)).sign(method, url, ours, body)
    assert ours["Authorization"] == _sdk_authorization(
        method, "svc.example.com", raw_path, pairs, headers, body
    )


def test_secret_key_not_in_repr() -> None:
    assert SK not in repr(Signer(AK, SecretStr(SK)))
