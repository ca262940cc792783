"""release_intake: ``POST /hooks/release`` → ``version.released``.

Two bodies are accepted:

* generic JSON ``{"product": "starrocks", "version": "3.3.2", "released_at"?: ISO-8601, "url"?: ...}``;
* a GitHub ``release`` webhook (``X-GitHub-Event: release``). Only ``action: published`` of a
  non-draft, non-prerelease release is announced; anything else answers 202 ``ignored``. The
  product is the ``?product=`` query parameter of the webhook URL, else the fleet feed whose URL is
  on ``github.com/<owner>/<repo>``; the version is that feed's ``tag_pattern`` group applied to the
  tag (default ``^v?(.+)$``).

Authentication, checked before the body is parsed — every request (generic too: otherwise anyone
could announce a release) carries one of:

* ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>`` when
  ``fleet.hooks.github_secret_env`` names a secret (compared in constant time);
* ``Authorization: Bearer <token>`` of a fleet ``auth.tokens`` entry whose ``publish`` list holds
  ``version.released`` (role operator or above; :mod:`shared.domain.access`);
* nothing, only when the fleet file says ``hooks: {allow_unauthenticated: true}`` (``upshift
  serve`` warns about it at start).

Answers (``{"error", "field"}`` on every refusal; nothing is published on any refusal):

* 202 ``accepted`` with the event id; 200 ``duplicate`` for a replayed ``X-GitHub-Delivery``;
  202 ``ignored`` with the reason;
* 400 malformed JSON or a body that is not the expected shape (the field is named);
* 401 no credential, a wrong signature or an unknown bearer token (``field``: the header);
* 403 a valid token that may not announce releases;
* 422 unknown product (not in ``fleet.products``), a repository no product maps to, a tag the
  feed's pattern does not match, a version that does not parse for the product;
* 500 when a secret is configured but its environment variable is not set (never accept unsigned).

Ids: :func:`release_id` hashes product and version, and the feed poller uses it too, so a replay, a
re-sent generic body, and the same release seen by webhook and feed all dedupe on the bus.
GitHub deliveries are also recorded in the store (bucket ``hook_deliveries``) so a replay is
*answered* as a duplicate; it still re-offers the same event — the bus drops it, or publishes it
if the first attempt died between recording and publishing (nothing lost).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.clouds.credentials import read_secret
from shared.domain.access import may_announce_release
from shared.domain.fleet import Feed, Fleet
from shared.domain.releases import Refused, Release, release_event, validate_release
from shared.errors import ConfigError, Conflict
from shared.runtime.auth import Unauthenticated, authenticate
from shared.runtime.function import Context, HttpReply, HttpRequest, upshift_function

__all__ = ["DELIVERIES", "GenericRelease", "GitHubReleaseHook", "release_intake", "sign"]

#: Store bucket of GitHub delivery ids already accepted.
DELIVERIES = "hook_deliveries"
SIGNATURE_HEADER = "x-hub-signature-256"
_DEFAULT_TAG_PATTERN: str = Feed.model_fields["tag_pattern"].default
M = TypeVar("M", bound=BaseModel)
_GITHUB_REPO = re.compile(r"^https?://github\.com/([^/]+/[^/]+)/", re.IGNORECASE)


class Ignored(Exception):
    """A well-formed request that announces nothing (another event, another action, a draft)."""


class GenericRelease(BaseModel):
    """The generic body. Unknown fields are refused, so a typo is a 400, not silently dropped."""

    model_config = ConfigDict(extra="forbid")

    product: str = Field(min_length=1, max_length=64)
    version: str = Field(min_length=1, max_length=64)
    released_at: datetime | None = None
    url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://")


class _GitHub(BaseModel):
    # GitHub sends far more than we read; extra keys are GitHub's business.
    model_config = ConfigDict(extra="ignore")


class GitHubRepository(_GitHub):
    full_name: str = Field(min_length=3)


class GitHubRelease(_GitHub):
    tag_name: str = Field(min_length=1)
    html_url: str | None = None
    published_at: datetime | None = None
    draft: bool = False
    prerelease: bool = False


class GitHubReleaseHook(_GitHub):
    """The subset of GitHub's ``release`` webhook payload that intake reads."""

    action: str
    release: GitHubRelease
    repository: GitHubRepository


def sign(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@upshift_function
async def release_intake(request: HttpRequest, ctx: Context) -> HttpReply:
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        _verify(ctx, headers, request.body)
        doc = _json(headers, request.body)
        github_event = headers.get("x-github-event")
        if github_event is None:
            release = _from_generic(doc)
        else:
            release = _from_github(ctx.fleet, github_event, request.query.get("product"), doc)
        validate_release(ctx.fleet, release)
    except Refused as exc:
        ctx.log.info("release refused", status=exc.status, reason=exc.error, field=exc.field)
        return HttpReply(exc.status, exc.body())
    except Ignored as exc:
        return HttpReply(202, {"status": "ignored", "reason": str(exc)})

    event = release_event(release, ctx.clock.now())
    duplicate = await _replayed(ctx, headers.get("x-github-delivery"), event.id)
    ctx.log.info("release announced", product=release.product, version=release.version, duplicate=duplicate)
    body = {
        "status": "duplicate" if duplicate else "accepted",
        "id": event.id,
        "product": release.product,
        "version": release.version,
    }
    # A duplicate still carries the event: same id, so the bus drops it unless the first try never published.
    return HttpReply(200 if duplicate else 202, body, [event])


# -- steps --------------------------------------------------------------------------------------


def _verify(ctx: Context, headers: dict[str, str], body: bytes) -> None:
    """A GitHub signature, a bearer token allowed to announce releases, or an explicitly open hook."""
    fleet = ctx.fleet
    env = fleet.hooks.github_secret_env if fleet is not None else None
    if env is not None and headers.get(SIGNATURE_HEADER):
        _verify_signature(ctx, env, headers, body)
    elif "authorization" in headers:
        try:
            principal = authenticate(fleet.auth if fleet is not None else None, headers)
        except Unauthenticated as exc:
            raise Refused(401, exc.message, "Authorization") from None
        denied = may_announce_release(principal)
        if denied is not None:
            raise Refused(403, denied.message, "Authorization")
    elif env is not None:
        _verify_signature(ctx, env, headers, body)
    elif fleet is None or not fleet.hooks.allow_unauthenticated:
        raise Refused(
            401,
            "a credential is required: Authorization: Bearer <token>, or a GitHub X-Hub-Signature-256",
            "Authorization",
        )


def _verify_signature(ctx: Context, env: str, headers: dict[str, str], body: bytes) -> None:
    try:
        secret = read_secret(env).get_secret_value()
    except ConfigError:
        ctx.log.error("webhook secret is not set", env=env)
        raise Refused(500, "the server's webhook secret is not configured") from None
    given = headers.get(SIGNATURE_HEADER)
    if not given:
        raise Refused(401, "missing signature", "X-Hub-Signature-256")
    if not hmac.compare_digest(sign(secret, body).encode(), given.encode("utf-8", "replace")):
        raise Refused(401, "signature does not match the body", "X-Hub-Signature-256")


def _json(headers: dict[str, str], body: bytes) -> Any:
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise Refused(400, "send JSON (on GitHub: Content type application/json)", "content-type")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, f"malformed JSON: {exc}", "body") from None


def _from_generic(doc: Any) -> Release:
    g = _model(GenericRelease, doc)
    return Release(product=g.product.strip(), version=g.version.strip(), released_at=g.released_at, url=g.url)


def _from_github(fleet: Fleet | None, event: str, product: str | None, doc: Any) -> Release:
    if event == "ping":
        raise Ignored("ping")
    if event != "release":
        raise Ignored(f"GitHub event {event!r} is not handled")
    hook = _model(GitHubReleaseHook, doc)
    if hook.action != "published":
        raise Ignored(f"release action {hook.action!r} (only 'published' is announced)")
    if hook.release.draft or hook.release.prerelease:
        raise Ignored("draft or prerelease")
    feed = _github_feed(fleet, hook.repository.full_name, product)
    product = product or (feed.product if feed else None)
    if product is None:
        raise Refused(
            422,
            f"no product for repository {hook.repository.full_name!r}: add ?product= or a fleet feed",
            "repository.full_name",
        )
    m = re.search(feed.tag_pattern if feed else _DEFAULT_TAG_PATTERN, hook.release.tag_name)
    if m is None or not m.group(1):
        raise Refused(
            422, f"tag {hook.release.tag_name!r} does not match the feed's tag_pattern", "release.tag_name"
        )
    return Release(
        product=product, version=m.group(1), released_at=hook.release.published_at, url=hook.release.html_url
    )


def _github_feed(fleet: Fleet | None, full_name: str, product: str | None) -> Feed | None:
    """The fleet feed on this repository (for ``product`` when given)."""
    for feed in fleet.feeds if fleet is not None else ():
        m = _GITHUB_REPO.match(feed.url)
        if m and m.group(1).lower() == full_name.lower() and product in (None, feed.product):
            return feed
    return None


def _model(model: type[M], doc: Any) -> M:
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        raise Refused(400, err["msg"], field) from None


async def _replayed(ctx: Context, delivery: str | None, event_id: str) -> bool:
    """Record a GitHub delivery id; True when it was already recorded (a replay)."""
    if not delivery:
        return False
    try:
        await ctx.store.kv.create(
            DELIVERIES, delivery[:128], {"event_id": event_id, "at": ctx.clock.now().isoformat()}
        )
    except Conflict:
        return True
    return False
