"""Map a Huawei Cloud error answer (API gateway, IAM, TaurusDB, CCE) to a typed ``CloudError``."""

from __future__ import annotations

import random
from typing import Any

from shared.clouds.errors import AuthError, CloudError, ThrottledError, TransientCloudError
from shared.clouds.response import Response, error_for_status
from shared.clouds.retry import parse_retry_after

__all__ = ["IN_PROGRESS_CODES", "VENDOR", "huawei_error"]

VENDOR = "huawei"
#: TaurusDB answers (409) meaning "another operation is in progress on this instance": retry later.
IN_PROGRESS_CODES = frozenset({"DBS.200019", "DBS.201014", "DBS.201015", "DBS.200047", "DBS.05000084"})
_THROTTLED = "APIGW.0308"
_AUTH = "APIGW.0301"


def _code_and_message(body: object) -> tuple[str, str]:
    if not isinstance(body, dict):
        return "", ""
    # TaurusDB / API gateway: error_code + error_msg; CCE: errorCode + errorMessage;
    # IAM: {"error": {"code": 401, "message": ...}}.
    error = body.get("error")
    nested = error if isinstance(error, dict) else {}
    code = body.get("error_code") or body.get("errorCode") or nested.get("code") or ""
    message = body.get("error_msg") or body.get("errorMessage") or nested.get("message") or ""
    return str(code), str(message)


def huawei_error(response: Response) -> CloudError:
    """The typed error for an error answer (status >= 400)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    code, message = _code_and_message(body)
    status = response.status
    message = message or f"HTTP {status}"
    kw: dict[str, Any] = {"vendor": VENDOR, "code": code, "request_id": response.request_id, "status": status}
    if code == _THROTTLED or status == 429:
        # The gateway asks for 2-5 s when it gives no Retry-After; jitter inside that range.
        retry_after = parse_retry_after(response.headers)
        return ThrottledError(
            message, retry_after=retry_after if retry_after is not None else random.uniform(2, 5), **kw
        )
    if code in IN_PROGRESS_CODES:
        return TransientCloudError(message, maybe_applied=False, **kw)
    if code == _AUTH:
        return AuthError(message, **kw)
    return error_for_status(
        VENDOR,
        status,
        code=code,
        message=message,
        request_id=response.request_id,
        retry_after=parse_retry_after(response.headers),
    )
