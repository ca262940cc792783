"""Vendor API clients: one subpackage or module per vendor, all on ``_base.BaseClient``.

Errors are types (``shared.clouds.errors``); credentials are read from the environment by name
(``read_secret``) and never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

from shared.clouds.base import (
    BaseClient,
    Limits,
    ReconcilePolicy,
    Response,
    RetryPolicy,
    TokenBucket,
    close_sessions,
    get_session,
    read_secret,
    with_retry,
)
from shared.clouds.errors import (
    AuthError,
    CloudError,
    PermanentCloudError,
    ThrottledError,
    TransientCloudError,
    ValidationFailed,
)

__all__ = [
    "AuthError",
    "BaseClient",
    "CloudError",
    "Limits",
    "PermanentCloudError",
    "ReconcilePolicy",
    "Response",
    "RetryPolicy",
    "ThrottledError",
    "TokenBucket",
    "TransientCloudError",
    "ValidationFailed",
    "close_sessions",
    "get_session",
    "read_secret",
    "with_retry",
]
