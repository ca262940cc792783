"""Signature v2: golden vectors, NAVER's Python SDK (``ncloud_server.ApiClient.make_signature``)
where it applies, and the query signed as sent."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ncloud_server.api_client import ApiClient
from ncloud_server.configuration import Configuration

from shared.clouds.ncloud.client import signature_v2
from shared.clouds.urls import encode_query
from tests.clouds.ncloud.vectors import ACCESS_KEY, QUERY, SECRET_KEY, TIMESTAMP, VECTORS


def vendor_signature(prefix: str, path: str, query: list[tuple[str, str]], ts: str, ak: str, sk: str) -> str:
    config = Configuration()
    config.host = f"https://clouddatastreamingservice.apigw.ntruss.com{prefix}"
    config.access_key, config.secret_key = ak, sk
    return ApiClient(config).make_signature("POST", path, query, ts).decode()


def ours(prefix: str, path: str, query: list[tuple[str, str]], ts: str, ak: str, sk: str) -> str:
    q = "&".join(f"{k}={v}" for k, v in query)  # the SDK appends the query as given: sign what is sent
    return signature_v2("POST", prefix + path + (f"?{q}" if q else ""), ts, ak, sk)


@pytest.mark.parametrize(("method", "uri", "expected"), VECTORS)
def test_golden_vectors(method: str, uri: str, expected: str) -> None:
    assert signature_v2(method, uri, TIMESTAMP, ACCESS_KEY, SECRET_KEY) == expected


def test_the_golden_query_is_what_encode_query_sends() -> None:
    # the client's one encoding of the query is the vector's wire form (and so what is signed)
    assert VECTORS[1][1].split("?", 1)[1] == encode_query(QUERY)


def test_fixed_request_matches_the_sdk() -> None:
    args = (
        "/api/v1",
        "/cluster/rollingUpgradePreCheck",
        [],
        "1709716893293",
        "ANJNnR1jz1gUzaiS0aV2",
        "secret",
    )
    assert ours(*args) == vendor_signature(*args)
    args = ("/api/sgn-v1", "/cluster/getClusterStatus/3432149", [("a", "1"), ("a", "2")], "1", "ak", "sk")
    assert ours(*args) == vendor_signature(*args)


def test_the_sdk_agrees_only_when_given_the_encoded_query() -> None:
    """``make_signature`` signs the pairs it is given, while the generated SDK sends them
    urlencoded: given the wire form it matches us (and the golden vector); given the raw pairs
    it signs bytes that were never sent (vendor-facts §6) — the case where it does not apply."""
    wire = [tuple(p.split("=", 1)) for p in encode_query(QUERY).split("&")]
    assert vendor_signature(
        "/api/v1", "/cluster/getCDSSVersionList", wire, TIMESTAMP, ACCESS_KEY, SECRET_KEY
    ) == (ours("/api/v1", "/cluster/getCDSSVersionList", wire, TIMESTAMP, ACCESS_KEY, SECRET_KEY))
    raw = vendor_signature("/api/v1", "/cluster/getCDSSVersionList", QUERY, TIMESTAMP, ACCESS_KEY, SECRET_KEY)
    assert raw != ours("/api/v1", "/cluster/getCDSSVersionList", wire, TIMESTAMP, ACCESS_KEY, SECRET_KEY)


_text = st.text(min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.sampled_from(["/api/v1", "/api/sgn-v1", "/api/jpn-v1"]),
    segments=st.lists(_text, min_size=1, max_size=4),
    query=st.lists(st.tuples(_text, _text), max_size=4),
    ts=st.integers(min_value=0, max_value=2**45).map(str),
    ak=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30),
    sk=st.text(min_size=1, max_size=50),
)
def test_encoded_paths_and_repeated_unicode_query_match_the_sdk(prefix, segments, query, ts, ak, sk) -> None:
    # On the wire path and query are percent-encoded; both sides sign the encoded form.
    path = "/" + "/".join(quote(s, safe="~") for s in segments)
    encoded = [tuple(encode_query([(k, v)]).split("=", 1)) for k, v in query]
    assert ours(prefix, path, encoded, ts, ak, sk) == vendor_signature(prefix, path, encoded, ts, ak, sk)
