"""Credentials: read from the environment by *name*, and never shown once read.

Configs hold environment variable names (``*_env`` fields), never values. ``read_secret`` turns
a name into a ``SecretStr`` at the moment a client is built and registers the value;
``scrub`` replaces every registered value in a text with ``***`` — every ``CloudError`` message
passes through it on construction, in case a vendor echoes a credential back.
"""

from __future__ import annotations

import os

from pydantic import SecretStr

from shared.errors import ConfigError

__all__ = ["read_secret", "register_secret", "scrub"]

# Values of every secret this process has read; scrubbed from error messages.
_SECRETS: set[str] = set()
_MIN_SECRET_LEN = 4  # shorter values would scrub ordinary words


def register_secret(value: str) -> None:
    """Remember a credential so that no error message can ever show it."""
    if len(value) >= _MIN_SECRET_LEN:
        _SECRETS.add(value)


def scrub(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def read_secret(env_name: str) -> SecretStr:
    """The credential held in environment variable ``env_name``; ConfigError naming it when unset."""
    value = os.environ.get(env_name)
    if not value:
        raise ConfigError(env_name, "environment variable is not set (it should hold a credential)")
    register_secret(value)
    return SecretStr(value)
