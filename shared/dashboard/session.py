"""Dashboard sign-in: a bearer token of the fleet's ``auth.tokens`` → a signed session cookie,
and the CSRF tokens of its forms.

Contract:

* **Sign-in** (:meth:`Sessions.sign_in`) checks the token exactly as the API does: it builds the
  ``Authorization: Bearer`` header and calls :func:`shared.runtime.auth.authenticate` (constant
  time over every configured token; a token whose variable is unset never matches).
* **The cookie** :data:`SESSION_COOKIE` is ``<token name>:<expiry, unix s>:<mac>``, the MAC an
  HMAC-SHA256 under the server secret over the name, the expiry and a digest of the token's
  *current value*: rotating a token's value, removing the token from the fleet or unsetting its
  variable ends every session signed in with it. It is ``HttpOnly``, ``SameSite=Strict``,
  ``Path=/``, lasts :data:`SESSION_TTL_S`, and is ``Secure`` when the request came over TLS
  (``https``, or ``X-Forwarded-Proto: https`` from a proxy in front). The cookie never holds
  the token or its role.
* **Roles** are re-resolved from the fleet on every request (:meth:`Sessions.session_of`): the
  principal is the token's entry as the fleet has it *now*.
* **The secret** is environment variable :data:`SECRET_ENV` (read through
  :func:`shared.clouds.credentials.read_secret`, so it is scrubbed from logs), or else random per
  process (sessions then end when the process restarts, and do not carry across processes).
* **CSRF**: every form of a session carries :attr:`Session.csrf`, an HMAC of the session cookie;
  :meth:`Sessions.csrf_ok` compares in constant time. The sign-in form, which has no session
  yet, carries the HMAC of a random nonce held in cookie :data:`LOGIN_COOKIE`
  (:meth:`Sessions.login_csrf`, :meth:`Sessions.login_csrf_ok`).
* :func:`safe_next` keeps a ``next`` only when it is a same-site relative path (``/…``, not
  ``//…`` nor ``/\\…``, no control characters); anything else is ``/``.

No token value, secret or cookie value is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from shared.clouds.credentials import read_secret
from shared.domain.access import Principal
from shared.domain.fleet import Fleet, Token
from shared.errors import ConfigError
from shared.runtime.auth import Unauthenticated, authenticate

__all__ = [
    "LOGIN_COOKIE",
    "SECRET_ENV",
    "SESSION_COOKIE",
    "SESSION_TTL_S",
    "Session",
    "Sessions",
    "safe_next",
]

SESSION_COOKIE = "upshift_session"
LOGIN_COOKIE = "upshift_login"
SECRET_ENV = "UPSHIFT_SESSION_SECRET"
#: How long a session lasts from sign-in (then the login page again).
SESSION_TTL_S = 12 * 3600
#: How long a sign-in form stays valid.
LOGIN_TTL_S = 3600
#: The longest ``next`` kept (a longer one is not a page of ours).
MAX_NEXT = 2048


@dataclass(frozen=True)
class Session:
    """A signed-in request: who (as the fleet has the token now), until when, its forms' CSRF token."""

    principal: Principal
    expires: int
    csrf: str


def safe_next(value: str | None) -> str:
    """``value`` when it is a same-site relative path, else ``/``."""
    if (
        not value
        or len(value) > MAX_NEXT
        or not value.startswith("/")
        or value.startswith(("//", "/\\"))
        or not value.isprintable()
        or "\\" in value
    ):
        return "/"
    return value


def _secure(request: web.Request) -> bool:
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


class Sessions:
    """Sign-in and session checks against the fleet ``fleet_of()`` returns at each call."""

    def __init__(
        self,
        fleet_of: Callable[[], Fleet | None],
        *,
        secret: bytes | None = None,
        ttl_s: int = SESSION_TTL_S,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._fleet_of = fleet_of
        self._secret = secret if secret is not None else self.secret_from_env()
        self.ttl_s = ttl_s
        # wall time, not the domain clock: a sped-up demo clock must not end sessions in seconds
        self._now = now

    @staticmethod
    def secret_from_env() -> bytes:
        """:data:`SECRET_ENV`'s value, or 32 random bytes when it is unset."""
        try:
            return read_secret(SECRET_ENV).get_secret_value().encode("utf-8", "surrogatepass")
        except ConfigError:
            return secrets.token_bytes(32)

    def _mac(self, *parts: str) -> str:
        message = "\n".join(parts).encode("utf-8", "surrogatepass")
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def _token(self, name: str) -> tuple[Token, str] | None:
        """The fleet's token ``name`` now and a digest of its current value, or None."""
        fleet = self._fleet_of()
        spec = next((t for t in fleet.auth.tokens if t.name == name), None) if fleet else None
        if spec is None:
            return None
        try:
            value = read_secret(spec.token_env).get_secret_value()
        except ConfigError:
            return None
        return spec, hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()

    # -- sessions ----------------------------------------------------------------------------------

    def sign_in(self, token: str) -> tuple[Principal, str]:
        """The principal of ``token`` and the session cookie's value; :class:`Unauthenticated`
        when it is no token of the fleet (the same check as a bearer header)."""
        fleet = self._fleet_of()
        principal = authenticate(fleet.auth if fleet else None, {"Authorization": f"Bearer {token}"})
        found = self._token(principal.name)
        if found is None:  # the fleet changed between the two reads
            raise Unauthenticated("the token is not valid", "invalid_token")
        expires = int(self._now()) + self.ttl_s
        return (
            principal,
            f"{principal.name}:{expires}:{self._mac('session', principal.name, str(expires), found[1])}",
        )

    def session_of(self, request: web.Request) -> Session | None:
        """The request's session, or None (no cookie, tampered, expired, token gone or rotated)."""
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie or len(cookie) > 256:
            return None
        name, _, rest = cookie.partition(":")
        expiry, _, mac = rest.partition(":")
        if not (expiry.isascii() and expiry.isdigit()) or int(expiry) <= self._now():
            return None
        found = self._token(name)
        if found is None:
            return None
        spec, digest = found
        if not _same(mac, self._mac("session", name, expiry, digest)):
            return None
        principal = Principal(spec.name, spec.role, frozenset(spec.publish))
        return Session(principal, int(expiry), self._mac("csrf", cookie))

    def csrf_ok(self, session: Session, given: str | None) -> bool:
        """Whether ``given`` is the CSRF token of ``session``."""
        return given is not None and _same(given, session.csrf)

    def set_session(self, response: web.StreamResponse, request: web.Request, value: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=self.ttl_s,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=_secure(request),
        )

    @staticmethod
    def clear_session(response: web.StreamResponse) -> None:
        response.del_cookie(SESSION_COOKIE, path="/")

    # -- the sign-in form --------------------------------------------------------------------------

    def login_csrf(self, request: web.Request) -> tuple[str, str | None]:
        """The sign-in form's CSRF token, and the nonce to set with :meth:`set_login_nonce` when
        the request has none yet (else None)."""
        nonce = request.cookies.get(LOGIN_COOKIE)
        fresh = None
        if not nonce or len(nonce) != 32 or not nonce.isalnum():
            nonce = fresh = secrets.token_hex(16)
        return self._mac("login", nonce), fresh

    @staticmethod
    def set_login_nonce(response: web.StreamResponse, request: web.Request, nonce: str) -> None:
        response.set_cookie(
            LOGIN_COOKIE,
            nonce,
            max_age=LOGIN_TTL_S,
            path="/login",
            httponly=True,
            samesite="Strict",
            secure=_secure(request),
        )

    def login_csrf_ok(self, request: web.Request, given: str | None) -> bool:
        """Whether ``given`` is the sign-in form's token for the request's nonce cookie."""
        nonce = request.cookies.get(LOGIN_COOKIE)
        return bool(nonce) and given is not None and _same(given, self._mac("login", nonce or ""))


def _same(given: str, want: str) -> bool:
    """Constant-time equality of a value from the request and ours. As bytes: ``compare_digest``
    raises TypeError on a str with non-ASCII characters, and a form's ``csrf=é`` must be a 403,
    not a 500."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), want.encode())
