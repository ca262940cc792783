"""Typed errors every vendor client raises. Callers decide on the *type*, never on the text.

* ``TransientCloudError`` — worth retrying (5xx, timeouts, resets, "operation in progress" 409s).
  ``maybe_applied`` says whether the request may have reached the vendor and taken effect
  (a reset or timeout after the bytes were sent, a 500/502/504): a non-idempotent call must then
  be *reconciled* (ask the vendor what happened), not blindly repeated.
* ``ThrottledError`` — the vendor asked us to slow down; ``retry_after`` in seconds when it said.
* ``AuthError`` / ``PermanentCloudError`` — retrying will not help.
* ``ValidationFailed`` — raised client side *before* anything is sent; the message names the field.

No message, ``str()`` or ``repr()`` may carry a credential: every secret read through
``shared.clouds.credentials.read_secret`` is scrubbed from the message on construction, in case a
vendor echoes one back.
"""

from __future__ import annotations

from shared.clouds.credentials import scrub
from shared.errors import PermanentError, TransientError, UpshiftError

__all__ = [
    "AuthError",
    "CloudError",
    "PermanentCloudError",
    "ThrottledError",
    "TransientCloudError",
    "ValidationFailed",
]


class CloudError(UpshiftError):
    """A vendor API call failed. ``code`` is the vendor's error code (e.g. ``DBS.200019``)."""

    def __init__(
        self,
        message: str,
        *,
        vendor: str,
        code: str = "",
        request_id: str | None = None,
        status: int | None = None,
        conflict: bool | None = None,
    ) -> None:
        message = scrub(message)
        super().__init__(message)
        self.message = message
        self.vendor = vendor
        self.code = code
        self.request_id = request_id
        self.status = status
        #: The vendor refused because something is already in progress or exists on the target —
        #: possibly our own earlier call, whose answer was lost: reconcile before failing.
        self.conflict = status == 409 if conflict is None else conflict

    def __str__(self) -> str:
        head = self.vendor
        if self.code:
            head += f" {self.code}"
        if self.status is not None:
            head += f" (HTTP {self.status})"
        tail = f" [request {self.request_id}]" if self.request_id else ""
        return f"{head}: {self.message}{tail}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(vendor={self.vendor!r}, code={self.code!r}, status={self.status!r}, "
            f"message={self.message!r}, request_id={self.request_id!r})"
        )


class TransientCloudError(CloudError, TransientError):
    """Worth retrying. ``maybe_applied``: the vendor may have acted on the request already."""

    def __init__(
        self,
        message: str,
        *,
        vendor: str,
        code: str = "",
        request_id: str | None = None,
        status: int | None = None,
        maybe_applied: bool = False,
        retry_after: float | None = None,
        conflict: bool | None = None,
    ) -> None:
        super().__init__(
            message, vendor=vendor, code=code, request_id=request_id, status=status, conflict=conflict
        )
        self.maybe_applied = maybe_applied
        self.retry_after = retry_after


class ThrottledError(TransientCloudError):
    """429 or the vendor's throttling code. Never applied; ``retry_after`` when the vendor said."""


class AuthError(CloudError, PermanentError):
    """Bad or expired credentials, bad signature, clock skew, missing permission."""


class PermanentCloudError(CloudError, PermanentError):
    """Validation, not found, a conflict that will not clear by waiting."""


class ValidationFailed(PermanentCloudError):
    """A request refused client side, before sending. ``field`` names the offending field."""

    def __init__(
        self,
        message: str,
        *,
        vendor: str,
        field: str = "",
        code: str = "client.validation",
        request_id: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, vendor=vendor, code=code, request_id=request_id, status=status)
        self.field = field
