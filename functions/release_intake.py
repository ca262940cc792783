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
* 400 malformed JSON, JSON nested deeper than :data:`shared.limits.LIMITS` allows, a field over
  its length limit, a body that is not the expected shape (the field is named), an
  ``X-GitHub-Delivery`` that is not UTF-8 or longer than 64 characters;
* 409 an ``X-GitHub-Delivery`` already recorded with another body (nothing is published);
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
import re
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.clouds.credentials import read_secret
from shared.domain.access import may_announce_release
from shared.domain.fleet import Feed, Fleet
from shared.domain.releases import Refused, Release, release_event, validate_release
from shared.errors import ConfigError, Conflict
from shared.limits import LIMITS, JsonRefused, loads_bounded
from shared.runtime.auth import Unauthenticated, authenticate, challenge
from shared.runtime.function import Context, HttpReply, HttpRequest, upshift_function

__all__ = ["DELIVERIES", "GenericRelease", "GitHubReleaseHook", "release_intake", "sign"]

#: Store bucket of GitHub delivery ids already accepted.
DELIVERIES = "hook_deliveries"
SIGNATURE_HEADER = "x-hub-signature-256"
DELIVERY_HEADER = "X-GitHub-Delivery"
_DEFAULT_TAG_PATTERN: str = Feed.model_fields["tag_pattern"].default
M = TypeVar("M", bound=BaseModel)
_GITHUB_REPO = re.compile(r"^https?://github\.com/([^/]+/[^/]+)/", re.IGNORECASE)


class Ignored(Exception):
    """A well-formed request that announces nothing (another event, another action, a draft)."""


class GenericRelease(BaseModel):
    """The generic body. Unknown fields are refused, so a typo is a 400, not silently dropped."""

    model_config = ConfigDict(extra="forbid")

    product: str = Field(min_length=1, max_length=LIMITS.max_name)
    version: str = Field(min_length=1, max_length=LIMITS.max_name)
    released_at: datetime | None = None
    url: str | None = Field(default=None, max_length=LIMITS.max_uri, pattern=r"^https?://")


class _GitHub(BaseModel):
    # GitHub sends far more than we read; extra keys are GitHub's business.
    model_config = ConfigDict(extra="ignore")


class GitHubRepository(_GitHub):
    full_name: str = Field(min_length=3, max_length=LIMITS.max_uri)


class GitHubRelease(_GitHub):
    # The limits of version.released (product, version, url), checked here, at the edge, so an
    # oversized field is a 400 naming it rather than a 500 when the event is built.
    tag_name: str = Field(min_length=1, max_length=LIMITS.max_name)
    html_url: str | None = Field(default=None, max_length=LIMITS.max_uri)
    published_at: datetime | None = None
    draft: bool = False
    prerelease: bool = False


class GitHubReleaseHook(_GitHub):
    """The subset of GitHub's ``release`` webhook payload that intake reads."""

    action: str = Field(max_length=LIMITS.max_name)
    release: GitHubRelease
    repository: GitHubRepository


def _refused(ctx: Context, exc: Refused) -> HttpReply:
    """The refusal as an answer; a 401 says how to authenticate (RFC 6750 ``WWW-Authenticate``)."""
    ctx.log.info("release refused", status=exc.status, reason=exc.error, field=exc.field)
    headers = {"WWW-Authenticate": challenge()} if exc.status == 401 else {}
    return HttpReply(exc.status, exc.body(), headers=headers)


def sign(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@upshift_function
async def release_intake(request: HttpRequest, ctx: Context) -> HttpReply:
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        _verify(ctx, headers, request.body)
        _delivery(headers.get("x-github-delivery"))
        doc = _json(headers, request.body)
        github_event = headers.get("x-github-event")
        if github_event is None:
            release = _from_generic(doc)
        else:
            release = _from_github(ctx.fleet, github_event, request.query.get("product"), doc)
        validate_release(ctx.fleet, release)
    except Refused as exc:
        return _refused(ctx, exc)
    except Ignored as exc:
        return HttpReply(202, {"status": "ignored", "reason": str(exc)})

    event = release_event(release, ctx.clock.now())
    try:
        duplicate = await _replayed(ctx, headers.get("x-github-delivery"), event.id, request.body)
    except Refused as exc:
        return _refused(ctx, exc)
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
        return loads_bounded(body)
    except JsonRefused as exc:
        raise Refused(400, exc.message, exc.field or "body") from None


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


def _delivery(delivery: str | None) -> None:
    """A GitHub delivery id is a GUID: refuse what no store key should be (400, naming the header)."""
    if delivery is None:
        return
    try:
        delivery.encode("utf-8")
    except UnicodeEncodeError:  # aiohttp hands non-UTF-8 header bytes over as surrogates
        raise Refused(400, "not valid UTF-8", DELIVERY_HEADER) from None
    if len(delivery) > LIMITS.max_name:
        raise Refused(400, f"longer than {LIMITS.max_name} characters", DELIVERY_HEADER)


async def _replayed(ctx: Context, delivery: str | None, event_id: str, body: bytes) -> bool:
    """Record a GitHub delivery id with its body's digest; True when it was already recorded
    with this body (a replay). The same id with another body is refused (409): a delivery id
    binds to its body, so a replayed id cannot carry a new release."""
    if not delivery:
        return False
    digest = hashlib.sha256(body).hexdigest()
    record = {"event_id": event_id, "body_sha256": digest, "at": ctx.clock.now().isoformat()}
    try:
        await ctx.store.kv.create(DELIVERIES, delivery, record)
    except Conflict:
        entry = await ctx.store.kv.get(DELIVERIES, delivery)
        seen = entry.value if entry is not None and isinstance(entry.value, dict) else {}
        # records written before the digest was: the event id is what they bind to
        same = (
            seen.get("body_sha256") == digest if "body_sha256" in seen else seen.get("event_id") == event_id
        )
        if not same:
            raise Refused(
                409, "this delivery id was already used for another body", DELIVERY_HEADER
            ) from None
        return True
    return False
