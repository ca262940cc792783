"""Vendor API clients: one subpackage per vendor, every client a ``client.BaseClient``.

The vendors: ``huawei`` (CCE, CCE Autopilot, TaurusDB StarRocks), ``oceanbase`` (OceanBase under
OCP, the OceanBase Cloud Platform) and ``ncloud`` (NAVER Cloud Kafka); each has a ``client`` and
its wire ``models`` (Huawei, with three services, has a ``models`` package of one module per API).
``registry.CloudClients`` builds them lazily from the fleet's ``clouds`` section.

What they share, one job per module: ``client`` (one HTTP exchange, ``ReconcilePolicy``),
``retry`` (``RetryPolicy``, ``with_retry``, ``Retry-After``), ``limits`` (``Limits``, token
bucket), ``sessions`` (one aiohttp session per loop), ``credentials`` (``read_secret``),
``urls`` (path and query encoding), ``response`` (``Response``, ``error_for_status``) and
``errors`` (the typed errors). Callers decide on error *types*; credentials are read from the
environment by name and never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

from shared.clouds.client import BaseClient, ReconcilePolicy
from shared.clouds.credentials import read_secret
from shared.clouds.errors import (
    AuthError,
    CloudError,
    PermanentCloudError,
    ThrottledError,
    TransientCloudError,
    ValidationFailed,
)
from shared.clouds.limits import Limits, TokenBucket
from shared.clouds.response import Response
from shared.clouds.retry import RetryPolicy, with_retry
from shared.clouds.sessions import close_sessions, get_session

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
