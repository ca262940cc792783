"""The dashboard's HTML pages, served by ``upshift serve`` (server-rendered, jinja2 autoescaped).

Routes (:func:`add_dashboard_routes`):

* ``GET /`` — runs: the filter form (``state``, ``kind``, ``window``, ``wave``, ``target``,
  ``page``, ``per_page``: :func:`shared.dashboard.views.runs_query`, the API's own validation —
  a bad value is the page again with the error naming the parameter, 400), counts per state, the
  table. ``GET /runs/{id}`` — one run: its stage timeline (a bar per stage placed and sized by its
  start and duration, with calls, polls and job id), the last vendor error (code, message,
  request id), its approval, its audit entries, and a form per action its state allows *and* the
  signed-in token's role allows (:func:`shared.dashboard.views.allowed_actions`); 404 for no such
  run. ``GET /fleet``, ``GET /calendar`` (``days``, ``tz``: the viewer's zone, which the page's
  script fills in from the browser; without it the times are the window's zone and UTC),
  ``GET /approvals``.
* Every page takes ``fragment=main``: then only its ``<main>`` content (what the live-update
  script swaps in).
* ``GET /dashboard/stream`` — server-sent events (:mod:`shared.dashboard.sse`); a page's script
  re-fetches its fragment on each ``changed``.
* ``GET /login``, ``POST /login`` (``token``, ``next``, ``csrf``), ``POST /logout`` (with its ``csrf``; no GET, so a cross-site link signs no one out) — sign in
  with a bearer token (:mod:`shared.dashboard.session`). Without a valid session every page is
  303 to ``/login?next=<the page>`` (a cross-site navigation, which a ``SameSite=Strict`` cookie
  does not accompany, first reloads itself once from this site), the stream is 401.
* ``POST /runs/{id}/approve|deny|pause|resume|cancel`` (form: ``csrf``, ``nonce``, ``comment``
  for approve, ``reason`` for deny) — the chat command ``approve <id> [comment]``, ``deny <id>
  <reason>``, ``pause <target>``, ``resume <target>``, ``cancel <id>`` (runs of spaces in the
  free text made one), submitted through the HTTP API's own flow,
  :func:`shared.engine.chatops.submit.submit`: checked with :func:`shared.domain.commands.parse`
  (a refusal is the run page again with its message, 400) and published as ``chat.command``
  (platform ``api``, channel ``dashboard``, user the token's name, ``via=token:<name>``);
  ``chat_command`` decides whether the role may (a viewer's POST is refused there and audited).
  The answer is 303 to the run page with ``done=<command id>``, which shows the command's audit
  reply as a flash (or says it is still running). A missing or wrong CSRF token is 403 and
  publishes nothing. The form's ``nonce`` is the retry key of the command id
  (``consequence_id("dashboard", <token>, <nonce>)``): a form submitted twice is one command.

Every HTML answer carries a strict ``Content-Security-Policy`` (scripts and styles from this
site only) and ``Cache-Control: no-store``. ``/healthz``, ``/metrics``, ``/events`` and
``/api/…`` are not this module's.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import aiohttp_jinja2
import jinja2
from aiohttp import web
from markupsafe import Markup

from shared.dashboard.live import live_flag, looks_of
from shared.dashboard.session import Session, Sessions, safe_next
from shared.dashboard.sse import Changes
from shared.dashboard.views import (
    ACTIONS,
    BadQuery,
    RunDetail,
    StageRow,
    allowed_actions,
    approvals_view,
    calendar_query,
    calendar_view,
    fleet_view,
    run_view,
    runs_query,
    runs_view,
)
from shared.domain.commands import KINDS, RUN_ID
from shared.domain.fleet import Fleet
from shared.engine.chatops.submit import BadCommand, OverLimit, Submission, command_text, submit
from shared.limits import LIMITS, Limits
from shared.log import get_logger
from shared.runtime.api import COMMAND_WAIT_S
from shared.runtime.auth import Unauthenticated
from shared.runtime.edge import read_body
from shared.runtime.host import Runtime
from shared.store.ledger import RunState

__all__ = ["CHANGES", "SESSIONS", "add_dashboard_routes"]

log = get_logger("upshift.dashboard")

#: The app's session keeper and change watcher (tests and the browser tests reach them here).
SESSIONS = web.AppKey("dashboard_sessions", Sessions)
CHANGES = web.AppKey("dashboard_changes", Changes)
_JINJA = web.AppKey("dashboard_jinja", jinja2.Environment)

_STATIC = Path(str(files("shared.dashboard") / "static"))
NAV = (("/", "runs", "Runs"), ("/fleet", "fleet", "Fleet"), ("/calendar", "calendar", "Calendar"),
       ("/approvals", "approvals", "Approvals"))  # fmt: skip
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: A form's nonce: 32 hex digits (what :func:`secrets.token_hex` makes).
NONCE = re.compile(r"[0-9a-f]{32}")
#: Fields a dashboard form may carry, and the most of them.
_FORM_FIELDS = 8


# -- rendering ------------------------------------------------------------------------------------


def _when(value: datetime | None) -> Markup:
    """An instant as ``<time>`` in UTC (minutes), a dash for None."""
    if value is None:
        return Markup("—")
    utc = value.astimezone(UTC)
    return Markup('<time datetime="{}">{}</time>').format(utc.isoformat(), utc.strftime("%Y-%m-%d %H:%M UTC"))


def _local(value: datetime | None, *, time_only: bool = False) -> Markup:
    """An instant in its own zone (the view converted it), with the zone's abbreviation."""
    if value is None:
        return Markup("")
    text = value.strftime("%H:%M %Z" if time_only else "%a %Y-%m-%d %H:%M %Z")
    return Markup('<time datetime="{}">{}</time>').format(value.isoformat(), text)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    d, rest = divmod(s, 86400)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    parts = (
        [f"{d}d"] * bool(d) + [f"{h}h"] * bool(h) + [f"{m}m"] * bool(m) + [f"{sec}s"] * (not d and bool(sec))
    )
    return " ".join(parts)


def _environment(app: web.Application) -> jinja2.Environment:
    env = aiohttp_jinja2.setup(
        app,
        app_key=_JINJA,
        loader=jinja2.PackageLoader("shared.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a template naming a missing field fails its test
        default_helpers=False,  # our own `static`, no app-wide static root
    )
    env.filters.update(when=_when, local=_local, duration=_duration)
    env.globals.update(
        static=lambda name: f"/static/{quote(name)}", nav=NAV, nonce=lambda: secrets.token_hex(16)
    )
    return env


def _bars(stages: list[StageRow]) -> list[tuple[StageRow, tuple[str, str] | None]]:
    """Each stage with its bar (x and width in percent of the span of the whole timeline)."""
    spans = [
        (s.started_at.timestamp(), s.started_at.timestamp() + (s.duration_s or 0.0))
        for s in stages
        if s.started_at is not None
    ]
    if not spans:
        return [(s, None) for s in stages]
    t0, t1 = min(a for a, _ in spans), max(b for _, b in spans)
    span = max(t1 - t0, 1.0)
    out: list[tuple[StageRow, tuple[str, str] | None]] = []
    for s in stages:
        if s.started_at is None:
            out.append((s, None))
            continue
        x = (s.started_at.timestamp() - t0) / span * 100
        width = max((s.duration_s or 0.0) / span * 100, 0.5)  # an instant stage still shows
        out.append((s, (f"{min(x, 99.5):.2f}", f"{min(width, 100 - min(x, 99.5)):.2f}")))
    return out


# -- the routes -----------------------------------------------------------------------------------


def add_dashboard_routes(
    app: web.Application,
    runtime: Runtime,
    *,
    limits: Limits = LIMITS,
    command_wait_s: float = COMMAND_WAIT_S,
    sessions: Sessions | None = None,
    changes: Changes | None = None,
) -> None:
    """Add the pages above to ``app``, bound to ``runtime`` (its fleet, as it is at each request,
    its store, bus and clock)."""
    app[SESSIONS] = sessions = sessions or Sessions(lambda: runtime.fleet)
    app[CHANGES] = changes = changes or Changes(runtime.store.kv)
    app.on_shutdown.append(changes.close)
    _environment(app)

    def fleet() -> Fleet:
        if runtime.fleet is None:  # (no fleet: no tokens, so no session got this far)
            raise web.HTTPSeeOther("/login")
        return runtime.fleet

    def render(
        request: web.Request,
        template: str,
        context: Mapping[str, Any],
        *,
        status: int = 200,
        session: Session | None = None,
    ) -> web.Response:
        ctx = {
            "session": session,
            "page": template.removesuffix(".html"),
            "page_title": template.removesuffix(".html").capitalize(),
            "live": None,
            "fragment": request.query.get("fragment") == "main",
            **context,
        }
        response = aiohttp_jinja2.render_template(template, request, ctx, status=status, app_key=_JINJA)
        response.headers.update(
            {
                "Content-Security-Policy": CSP,
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin",
            }
        )
        return response

    def message(
        request: web.Request, status: int, heading: str, text: str, session: Session | None, back: str = "/"
    ) -> web.Response:
        return render(
            request,
            "message.html",
            {"heading": heading, "message": text, "kind": "error", "back": back, "page_title": heading},
            status=status,
            session=session,
        )

    def signed_in(request: web.Request) -> Session:
        """The request's session, or the way to the sign-in page (raised)."""
        session = sessions.session_of(request)
        if session is not None:
            return session
        if request.headers.get("Sec-Fetch-Site") == "cross-site" and request.method == "GET":
            # a link from elsewhere (chat) comes without the SameSite=Strict cookie: reload from here
            raise web.HTTPOk(
                text=app[_JINJA].get_template("refresh.html").render(),
                content_type="text/html",
                headers={"Cache-Control": "no-store", "Content-Security-Policy": CSP},
            )
        if request.method == "GET":  # back to this page, as a whole page
            page = str(
                request.rel_url.with_query([(k, v) for k, v in request.query.items() if k != "fragment"])
            )
        else:  # a form's POST: back to the run it was on
            page = request.path.rsplit("/", 1)[0]
        raise web.HTTPSeeOther(f"/login?{urlencode({'next': safe_next(page)})}")

    def query_without_fragment(request: web.Request) -> dict[str, str]:
        return {k: v for k, v in request.query.items() if k != "fragment"}

    # -- pages ----------------------------------------------------------------------------------

    async def runs_page(request: web.Request) -> web.Response:
        session = signed_in(request)
        query = query_without_fragment(request)
        f = fleet()
        context: dict[str, Any] = {
            "states": [s.value for s in RunState],
            "kinds": KINDS,
            "windows": sorted(f.windows),
            "targets": [t.name for t in f.targets],
            "form": {k: query.get(k) for k in ("state", "kind", "window", "wave", "target")},
            "filtered": any(query.get(k) for k in ("state", "kind", "window", "wave", "target")),
            "live": "runs",
            "now": runtime.clock.now(),
            "page_title": "Runs",
            "view": None,
            "error": None,
        }

        def filter_url(**changes: Any) -> str:
            base = {k: v for k, v in query.items() if v and k != "page"}
            if "page" in changes:
                base["page"] = str(changes.pop("page"))
            base.update({k: str(v) for k, v in changes.items()})
            return "/" + (f"?{urlencode(base)}" if base else "")

        context["filter_url"] = filter_url
        try:
            filters = runs_query(f, query)
        except BadQuery as exc:
            context["error"] = {"field": exc.field, "message": exc.message}
            return render(request, "runs.html", context, status=400, session=session)
        context["view"] = await runs_view(runtime.store, f, runtime.clock.now(), **filters)
        return render(request, "runs.html", context, session=session)

    async def run_page(
        request: web.Request, *, session: Session | None = None, error: str | None = None, status: int = 200
    ) -> web.Response:
        session = session or signed_in(request)
        run_id = request.match_info["id"]
        detail = await run_view(runtime.store, fleet(), runtime.clock.now(), run_id)
        if detail is None:
            return message(request, 404, "No such run", f"There is no run {run_id[:40]!r}.", session)
        flash = {"kind": "error", "text": error} if error else await done_flash(request, detail)
        context = {
            "detail": detail,
            "timeline": _bars(detail.stages),
            "actions": allowed_actions(fleet(), session.principal, detail),
            "flash": flash,
            "live": "run",
            "page_title": f"Run {detail.run.id}",
        }
        return render(request, "run.html", context, status=status, session=session)

    async def done_flash(request: web.Request, detail: RunDetail) -> dict[str, str] | None:
        """The reply of the command ``?done=<id>`` named (one about this run), as a flash."""
        done = request.query.get("done")
        if not done or len(done) > 64 or not done.isalnum():
            return None
        entry = await runtime.store.audit.get(done)
        if entry is None:
            return {
                "kind": "info",
                "text": "Your command is still being carried out; its reply will show in the audit below.",
            }
        if entry.get("run") not in (None, detail.run.id):  # another run's command: not this page's
            return None
        outcome = str(entry.get("outcome", "error"))
        return {
            "kind": outcome if outcome in ("ok", "refused", "invalid") else "error",
            "text": str(entry.get("reply") or outcome),
        }

    looks = looks_of(app, runtime)

    async def fleet_page(request: web.Request) -> web.Response:
        session = signed_in(request)
        ask = live_flag(request.query.get("live")) is True  # anything but a yes reads the ledger only
        f = fleet()
        view = await fleet_view(runtime.store, f, runtime.clock.now(), await looks.get(f) if ask else None)
        context = {"view": view, "live": "fleet", "page_title": "Fleet", "asked_vendors": ask}
        return render(request, "fleet.html", context, session=session)

    async def calendar_page(request: web.Request) -> web.Response:
        session = signed_in(request)
        query = query_without_fragment(request)
        context: dict[str, Any] = {
            "form": {"days": query.get("days"), "tz": query.get("tz")},
            "view": None,
            "error": None,
            "live": "calendar",
            "page_title": "Calendar",
        }
        try:
            options = calendar_query(query)
        except BadQuery as exc:
            context["error"] = {"field": exc.field, "message": exc.message}
            return render(request, "calendar.html", context, status=400, session=session)
        context["view"] = await calendar_view(runtime.store, fleet(), runtime.clock.now(), **options)
        return render(request, "calendar.html", context, session=session)

    async def approvals_page(request: web.Request) -> web.Response:
        session = signed_in(request)
        view = await approvals_view(runtime.store, fleet(), runtime.clock.now())
        return render(
            request,
            "approvals.html",
            {"view": view, "live": "approvals", "page_title": "Approvals"},
            session=session,
        )

    async def stream(request: web.Request) -> web.StreamResponse:
        if sessions.session_of(request) is None:
            raise web.HTTPUnauthorized(text="sign in first", headers={"Cache-Control": "no-store"})
        return await changes.respond(request)

    # -- sign-in --------------------------------------------------------------------------------

    def login_form(request: web.Request, next_: str, error: str | None, status: int) -> web.Response:
        csrf, nonce = sessions.login_csrf(request)
        context = {"next": next_, "error": error, "csrf": csrf, "page_title": "Sign in"}
        response = render(request, "login.html", context, status=status)
        if nonce is not None:
            sessions.set_login_nonce(response, request, nonce)
        return response

    async def login_page(request: web.Request) -> web.Response:
        next_ = safe_next(request.query.get("next"))
        if sessions.session_of(request) is not None:
            raise web.HTTPSeeOther(next_)
        return login_form(request, next_, None, 200)

    async def login_post(request: web.Request) -> web.Response:
        form = await read_form(request)
        next_ = safe_next(form.get("next"))
        if not sessions.login_csrf_ok(request, form.get("csrf")):
            log.info("dashboard sign-in refused", reason="csrf")
            return login_form(
                request, next_, "The sign-in form expired (or cookies are off): please try again.", 403
            )
        try:
            principal, cookie = sessions.sign_in(form.get("token", "").strip())
        except Unauthenticated:
            log.info("dashboard sign-in refused", reason="token")
            return login_form(request, next_, "That token is not one of this fleet's.", 401)
        log.info("dashboard sign-in", principal=principal.name, role=principal.role)
        response = web.HTTPSeeOther(next_)
        sessions.set_session(response, request, cookie)
        raise response

    async def logout(request: web.Request) -> web.Response:
        session = sessions.session_of(request)
        if session is not None:
            form = await read_form(request)
            if not sessions.csrf_ok(session, form.get("csrf")):
                return message(request, 403, "Refused", "The form's CSRF token is missing or wrong.", session)
        response = web.HTTPSeeOther("/login")
        sessions.clear_session(response)
        raise response

    async def read_form(request: web.Request) -> dict[str, str]:
        raw = await read_body(request, limits)
        try:
            pairs = parse_qsl(
                raw.decode("utf-8"), keep_blank_values=True, max_num_fields=_FORM_FIELDS, strict_parsing=False
            )
        except (UnicodeDecodeError, ValueError):
            raise web.HTTPBadRequest(text="a form of at most a few UTF-8 fields") from None
        return dict(pairs)

    # -- the controls ---------------------------------------------------------------------------

    async def control(request: web.Request) -> web.Response:
        session = signed_in(request)
        run_id, action = request.match_info["id"], request.match_info["action"]
        form = await read_form(request)
        if not sessions.csrf_ok(session, form.get("csrf")):
            log.info("dashboard command refused", reason="csrf", principal=session.principal.name)
            return message(
                request,
                403,
                "Refused",
                "The form's CSRF token is missing or wrong: reload the page and try again.",
                session,
                back=f"/runs/{quote(run_id)}",
            )
        if action not in ACTIONS or not RUN_ID.fullmatch(run_id):
            return message(request, 404, "Not found", "No such action or run.", session)
        detail = await run_view(runtime.store, fleet(), runtime.clock.now(), run_id)
        if detail is None:
            return message(request, 404, "No such run", f"There is no run {run_id!r}.", session)
        nonce = form.get("nonce", "")
        name = session.principal.name
        sub = Submission(
            edge="dashboard",
            principal=name,
            user=name,
            text=_command_text(action, detail, form),
            action=action,
            run=run_id,
            key=nonce if NONCE.fullmatch(nonce) else None,
        )
        try:
            done = await submit(sub, runtime.bus, runtime.store.audit, runtime.clock.now(), command_wait_s)
        except OverLimit:
            return await run_page(request, session=session, error="That text is too long.", status=400)
        except BadCommand as exc:
            return await run_page(request, session=session, error=exc.message, status=400)
        raise web.HTTPSeeOther(f"/runs/{run_id}?{urlencode({'done': done.id})}")

    app.router.add_get("/", runs_page)
    app.router.add_get("/runs/{id}", run_page)
    app.router.add_post("/runs/{id}/{action}", control)
    app.router.add_get("/fleet", fleet_page)
    app.router.add_get("/calendar", calendar_page)
    app.router.add_get("/approvals", approvals_page)
    app.router.add_get("/dashboard/stream", stream)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login_post)
    app.router.add_post("/logout", logout)
    app.router.add_static("/static/", _STATIC, append_version=False)


def _command_text(action: str, detail: RunDetail, form: Mapping[str, str]) -> str:
    """The chat command of a run page's form (its free text's runs of spaces made one)."""
    field = {"approve": "comment", "deny": "reason"}.get(action)
    free = " ".join(form.get(field, "").split()) if field else None
    return command_text(action, detail.run.id, target=detail.run.target, free=free)
