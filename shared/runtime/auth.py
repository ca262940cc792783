"""Bearer tokens at the ingress: who a request is, from its ``Authorization`` header.

The rules (roles, what each token may publish, the internal types) are
:mod:`shared.domain.access`; the tokens are the fleet file's ``auth:`` block
(:class:`shared.domain.fleet.Auth`), which names the *environment variable* holding each value.

* :func:`authenticate` reads each value when a request comes (so a rotated value is taken
  without a restart) through :func:`shared.clouds.credentials.read_secret` (which registers it
  for scrubbing), and compares the given token with **every** configured one in constant time
  (``hmac.compare_digest`` over SHA-256 digests: the time depends neither on which token
  matched nor on the lengths). A token whose variable is unset never matches.
* :class:`Unauthenticated` is a 401: missing header, not ``Bearer``, or no token matches;
  :data:`CHALLENGE` / :func:`challenge` are the ``WWW-Authenticate`` values (RFC 6750).
* :func:`ingress_warnings` is what ``upshift serve`` says at start about its credentials: no
  tokens (every ``POST /events`` refused), an unauthenticated release hook, a token whose variable
  is unset, a chat edge (Slack signing secret, Mattermost token) whose variable is unset. Warnings name tokens and variables, never a value.

No token value is ever logged or put in an answer.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from shared.clouds.credentials import read_secret
from shared.domain.access import Principal
from shared.domain.fleet import Auth, Fleet
from shared.errors import ConfigError

__all__ = [
    "CHALLENGE",
    "Unauthenticated",
    "authenticate",
    "bearer_of",
    "challenge",
    "ingress_warnings",
]

#: ``WWW-Authenticate`` of a 401 without a credential.
CHALLENGE = 'Bearer realm="upshift"'


def challenge(error: str | None = None) -> str:
    """The ``WWW-Authenticate`` value of a 401 (``error="invalid_token"`` for a wrong token)."""
    return CHALLENGE if error is None else f'{CHALLENGE}, error="{error}"'


class Unauthenticated(Exception):
    """No valid credential: the edge answers 401 with :attr:`message` and :attr:`www_authenticate`."""

    def __init__(self, message: str, error: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.www_authenticate = challenge(error)


def bearer_of(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (any header-name case), None when
    there is no ``Authorization`` header; :class:`Unauthenticated` for another scheme or none."""
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'", "invalid_request")
    return token.strip()


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def authenticate(auth: Auth | None, headers: Mapping[str, str]) -> Principal:
    """The principal whose token the request carries; :class:`Unauthenticated` otherwise."""
    token = bearer_of(headers)
    if token is None:
        raise Unauthenticated("a bearer token is required (Authorization: Bearer <token>)")
    given = _digest(token)
    found: Principal | None = None
    for spec in auth.tokens if auth is not None else ():
        try:
            value = read_secret(spec.token_env).get_secret_value()
        except ConfigError:
            continue
        # every configured token is compared: no early exit on a match
        if hmac.compare_digest(given, _digest(value)) and found is None:
            found = Principal(spec.name, spec.role, frozenset(spec.publish))
    if found is None:
        raise Unauthenticated("the bearer token is not valid", "invalid_token")
    return found


def ingress_warnings(fleet: Fleet | None, *, release_hook: bool) -> list[str]:
    """What to warn about at start: ``release_hook`` says ``/hooks/release`` is served."""
    warnings: list[str] = []
    tokens = fleet.auth.tokens if fleet is not None else []
    if not tokens:
        warnings.append(
            "no auth tokens are configured (fleet file auth.tokens): POST /events refuses every request"
        )
    for spec in tokens:
        try:
            read_secret(spec.token_env)
        except ConfigError:
            warnings.append(
                f"auth token {spec.name!r}: environment variable {spec.token_env} is not set; "
                "requests carrying it are refused"
            )
    chat = fleet.chat if fleet is not None else None
    for edge, env in (
        ("chat.slack", chat.slack.signing_secret_env if chat and chat.slack else None),
        ("chat.mattermost", chat.mattermost.token_env if chat and chat.mattermost else None),
    ):
        if env is None:
            continue
        try:
            read_secret(env)
        except ConfigError:
            warnings.append(f"{edge}: environment variable {env} is not set; its requests are refused (503)")
    if release_hook and fleet is not None and fleet.hooks.allow_unauthenticated:
        warnings.append(
            "hooks.allow_unauthenticated is true: anyone who reaches POST /hooks/release can "
            "announce a release without a GitHub signature or a bearer token"
        )
    return warnings
