"""Huawei Cloud ``SDK-HMAC-SHA256`` request signing (APIG AK/SK), byte for byte as the official SDK.

The canonical request is, lines joined by ``\\n``: METHOD; the canonical URI (the path decoded,
each segment percent-encoded with ``~`` safe, and a trailing ``/`` — in the string to sign only,
never on the wire); the canonical query (raw ``(name, value)`` pairs sorted, then each encoded);
one ``name:value`` line per signed header followed by a blank line; the signed header names; the
lower-hex SHA-256 of the body (the empty-body hash when there is none; ``UNSIGNED-PAYLOAD`` for a
non-JSON body, announced in ``X-Sdk-Content-Sha256``). Every header present at signing time is
signed, except names containing ``_``; a header added afterwards must not be.

The simulator verifies signatures with its own implementation (``simulator/huawei/_common.py``),
written from the same guide; Huawei's worked example (``shared/seeds/cloud-apis.md``) is the
golden vector both sides are tested against, and this one is also cross-checked against the
official SDK's ``huaweicloudsdkcore.signer.signer.Signer``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from urllib.parse import quote, unquote

from pydantic import SecretStr
from yarl import URL

__all__ = [
    "ALGORITHM",
    "DATE_FORMAT",
    "EMPTY_SHA256",
    "Signer",
    "canonical_query",
    "canonical_request",
    "canonical_uri",
    "signature",
    "signed_header_names",
]

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_CONTENT_HEADER = "X-Sdk-Content-Sha256"
_UNSIGNED = "UNSIGNED-PAYLOAD"


def _enc(value: str) -> str:
    return quote(value, safe="~")


def canonical_uri(raw_path: str) -> str:
    """``/a b/c`` -> ``/a%20b/c/``: decode, encode each segment, append ``/`` when missing."""
    uri = "/".join(_enc(segment) for segment in unquote(raw_path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Decoded ``(name, value)`` pairs, sorted raw (as the SDK does), then encoded."""
    return "&".join(f"{_enc(k)}={_enc(v)}" for k, v in sorted(pairs))


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    return sorted(k.lower() for k in headers if "_" not in k)


def _payload_hash(headers: Mapping[str, str], body: bytes) -> str:
    if not body:
        return EMPTY_SHA256
    for name, value in headers.items():
        if name.lower() == _CONTENT_HEADER.lower() and value:
            return value
    return hashlib.sha256(body).hexdigest()


def canonical_request(
    method: str,
    raw_path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed: list[str],
    body: bytes,
) -> str:
    lowered = {k.lower(): str(v).strip() for k, v in headers.items()}
    header_lines = "".join(f"{name}:{lowered.get(name, '')}\n" for name in signed)
    return "\n".join(
        [
            method.upper(),
            canonical_uri(raw_path),
            canonical_query(query),
            header_lines,
            ";".join(signed),
            _payload_hash(headers, body),
        ]
    )


def signature(secret_key: str, sdk_date: str, canonical: str) -> str:
    """hex(HMAC-SHA256(SK, "SDK-HMAC-SHA256\\n{date}\\n{hex(sha256(canonical))}"))."""
    string_to_sign = f"{ALGORITHM}\n{sdk_date}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.new(secret_key.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def _host_header(url: URL) -> str:
    host = url.raw_host or ""
    if url.port is not None and not url.is_default_port():
        host = f"{host}:{url.port}"
    return host


class Signer:
    """Signs requests with one AK/SK. The SK never appears in ``repr``."""

    def __init__(self, access_key: str, secret_key: SecretStr) -> None:
        self.access_key = access_key
        self._secret_key = secret_key

    def __repr__(self) -> str:
        return f"Signer(access_key={self.access_key[:4]}***)"

    def sign(
        self,
        method: str,
        url: URL,
        headers: dict[str, str],
        body: bytes,
        *,
        now: datetime | None = None,
    ) -> None:
        """Add ``X-Sdk-Date``, ``Host`` (and ``X-Sdk-Content-Sha256`` when due) and ``Authorization``."""
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        if content_type and not content_type.startswith(("application/json", "application/bson")):
            headers[_CONTENT_HEADER] = _UNSIGNED
        if not any(k.lower() == "x-sdk-date" for k in headers):
            headers["X-Sdk-Date"] = (now or datetime.now(UTC)).strftime(DATE_FORMAT)
        if not any(k.lower() == "host" for k in headers):
            headers["Host"] = _host_header(url)
        sdk_date = next(v for k, v in headers.items() if k.lower() == "x-sdk-date")
        signed = signed_header_names(headers)
        canonical = canonical_request(method, url.raw_path, url.query.items(), headers, signed, body)
        sig = signature(self._secret_key.get_secret_value(), sdk_date, canonical)
        headers["Authorization"] = (
            f"{ALGORITHM} Access={self.access_key}, SignedHeaders={';'.join(signed)}, Signature={sig}"
        )
