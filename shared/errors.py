"""Errors as types. Code decides on the *type* of an error, never on its text."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "Conflict",
    "PermanentError",
    "RetryLater",
    "TransientError",
    "UpshiftError",
]


class UpshiftError(Exception):
    """Base of every error Upshift raises on purpose."""


class ConfigError(UpshiftError):
    """A config file, manifest or URL is wrong. ``where`` names the file/field (and line if known)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


class Conflict(UpshiftError):
    """A compare-and-set lost: the key exists, or its revision moved on."""


class TransientError(UpshiftError):
    """Worth retrying later (timeouts, 5xx, throttling, 'operation in progress')."""

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(UpshiftError):
    """Retrying will not help (validation, not found, auth)."""


class RetryLater(UpshiftError):
    """Raised by a handler to be redelivered after ``delay`` seconds (counts as an attempt)."""

    def __init__(self, delay: float, reason: str = "") -> None:
        super().__init__(reason or f"retry in {delay:.3g}s")
        self.delay = delay
