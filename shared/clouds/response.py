"""One HTTP answer (``Response``) and the generic mapping of an error status to a typed error.

``Response`` is fully read before the connection goes back to the pool; ``json()`` parses the
body once, on demand. ``error_for_status`` is the fallback every vendor's error mapping ends in,
after it has looked at the vendor's own codes: 429 throttles, 503 turns away, 500/502/504 may
have been applied, 401/403 are auth failures, any other status is permanent.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.clouds.errors import (
    AuthError,
    CloudError,
    PermanentCloudError,
    ThrottledError,
    TransientCloudError,
)

__all__ = ["Response", "error_for_status"]


@dataclass(slots=True)
class Response:
    """One HTTP answer, fully read."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    request_id: str | None = None
    # A JSON value whose shape is the vendor's: callers validate it into a model.
    _parsed: Any = field(default=None, repr=False)

    def json(self) -> Any:
        """The body parsed as JSON; None for an empty body."""
        if self._parsed is None and self.body:
            self._parsed = jsonlib.loads(self.body)
        return self._parsed


def error_for_status(
    vendor: str,
    status: int,
    *,
    code: str = "",
    message: str = "",
    request_id: str | None = None,
    retry_after: float | None = None,
) -> CloudError:
    """The generic mapping of an HTTP error status; vendors refine it with their codes first.

    500/502/504 may have been applied (the vendor answered after or while working on it);
    503 and 429 mean the request was turned away.
    """
    message = message or f"HTTP {status}"
    if status == 429:
        return ThrottledError(
            message, vendor=vendor, code=code, request_id=request_id, status=status, retry_after=retry_after
        )
    if status >= 500:
        return TransientCloudError(
            message,
            vendor=vendor,
            code=code,
            request_id=request_id,
            status=status,
            maybe_applied=status != 503,
            retry_after=retry_after,
        )
    if status in (401, 403):
        return AuthError(message, vendor=vendor, code=code, request_id=request_id, status=status)
    return PermanentCloudError(message, vendor=vendor, code=code, request_id=request_id, status=status)
