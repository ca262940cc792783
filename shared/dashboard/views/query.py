"""Query parsing shared by the API and the pages: a query string's parameters → the views' filters, or :class:`BadQuery` naming the parameter."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from shared.dashboard.views.models import (
    DEFAULT_DAYS,
    DEFAULT_PER_PAGE,
    MAX_DAYS,
    MAX_PER_PAGE,
)
from shared.domain.commands import KINDS, TARGET_NAME
from shared.domain.fleet import Fleet
from shared.domain.windows import timezone_problem
from shared.store.ledger import RunState

__all__ = ["BadQuery", "calendar_query", "runs_query"]

# --- query parsing ----------------------------------------------------------------------------


class BadQuery(ValueError):
    """A query parameter refused: ``field`` names it, ``message`` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


_STATES = tuple(s.value for s in RunState)


def _whole(query: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    top = f" to {high}" if high is not None else " or more"
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise BadQuery(name, f"{name} must be a whole number from {low}{top}")
    value = int(raw)
    if value < low or (high is not None and value > high):
        raise BadQuery(name, f"{name} must be a whole number from {low}{top}")
    return value


def _unknown(query: Mapping[str, str], known: Iterable[str]) -> None:
    extra = sorted(set(query) - set(known))
    if extra:
        names = ", ".join(extra)
        raise BadQuery(names, f"unknown parameter(s): {names}")


def runs_query(fleet: Fleet, query: Mapping[str, str]) -> dict[str, Any]:
    """The keyword filters of :func:`runs_view` from a query string's parameters (``state``,
    ``kind``, ``window`` — one of the fleet's —, ``wave``, ``target``, ``page``, ``per_page``
    ≤ :data:`MAX_PER_PAGE`); an empty value is no filter. :class:`BadQuery` naming the parameter."""
    _unknown(query, ("state", "kind", "window", "wave", "target", "page", "per_page"))
    out: dict[str, Any] = {}
    state, kind, window, target = (query.get(k) or None for k in ("state", "kind", "window", "target"))
    if state is not None:
        if state not in _STATES:
            raise BadQuery("state", f"unknown state {state[:40]!r} (states: {', '.join(_STATES)})")
        out["state"] = RunState(state)
    if kind is not None:
        if kind not in KINDS:
            raise BadQuery("kind", f"unknown kind {kind[:40]!r} (kinds: {', '.join(KINDS)})")
        out["kind"] = kind
    if window is not None:
        if window not in fleet.windows:
            known = ", ".join(sorted(fleet.windows)) or "none defined"
            raise BadQuery("window", f"unknown window {window[:40]!r} (windows: {known})")
        out["window"] = window
    if target is not None:
        if not TARGET_NAME.match(target):
            raise BadQuery("target", f"{target[:40]!r} is not a target name")
        out["target"] = target
    if query.get("wave"):
        out["wave"] = _whole(query, "wave", 0, 0, None)
    out["page"] = _whole(query, "page", 1, 1, None)
    out["per_page"] = _whole(query, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
    return out


def calendar_query(query: Mapping[str, str]) -> dict[str, Any]:
    """The keyword arguments of :func:`calendar_view` from ``days`` (1…:data:`MAX_DAYS`) and
    ``tz`` (an IANA time zone); :class:`BadQuery` naming the parameter."""
    _unknown(query, ("days", "tz"))
    out: dict[str, Any] = {"days": _whole(query, "days", DEFAULT_DAYS, 1, MAX_DAYS)}
    tz = query.get("tz") or None
    if tz is not None:
        problem = timezone_problem(tz) if len(tz) <= 64 else f"unknown IANA timezone {tz[:40]!r}…"
        if problem is not None:
            raise BadQuery("tz", problem)
        out["tz"] = tz
    return out
