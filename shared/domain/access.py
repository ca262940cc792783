"""Who may do what: the role model of every edge (CloudEvents ingress, release webhook, chat, dashboard).

Pure rules, no I/O: the runtime side that reads tokens and answers 401/403 is
:mod:`shared.runtime.auth`; the fleet file's ``auth:`` block (:class:`shared.domain.fleet.Auth`)
is validated with :func:`check_publish_list` when it loads.

* **Roles** are ordered: ``viewer`` < ``operator`` < ``approver`` < ``admin``
  (:func:`at_least`). A viewer reads; an operator announces releases, runs chat commands and
  pings the pipeline; an approver may also ask for an upgrade outside the release flow; an admin
  may do all of it.
* **Publishable types** (:data:`PUBLISHABLE`) are the few event types anyone outside the pipeline
  may put on the bus, each with the least role that may. Every other type of the catalog is
  **internal** (:data:`INTERNAL`: ``stage.*``, ``job.poll``, ``wave.ready``, ``clock.tick``,
  ``event.deadlettered``, ``upgrade.planned``, ``window.*``, …) and is never accepted from
  outside, whatever the token. :data:`INTERNAL` is derived from the catalog, so a type added to
  the catalog is internal until someone adds it here on purpose.
* A token's ``publish`` list is its **allow-list**: only those types, and only those its role
  reaches. An empty list publishes nothing (a viewer's dashboard token).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from events.catalog import CATALOG, T

__all__ = [
    "INTERNAL",
    "PUBLISHABLE",
    "ROLES",
    "TYPE_PREFIX",
    "Denied",
    "Principal",
    "Role",
    "at_least",
    "authorize_publish",
    "check_publish_list",
    "event_type",
    "may_announce_release",
]

Role = Literal["viewer", "operator", "approver", "admin"]
#: The roles, least first.
ROLES: tuple[Role, ...] = get_args(Role)
#: The prefix of every catalog type; the fleet file may leave it out (``version.released``).
TYPE_PREFIX = "dev.upshift."

#: The event types accepted from outside, and the least role that may publish each.
PUBLISHABLE: Mapping[str, Role] = {
    T.VERSION_RELEASED: "operator",
    T.CHAT_COMMAND: "operator",
    T.ECHO: "operator",
    T.UPGRADE_REQUESTED: "approver",
}
#: Every other catalog type: emitted by the pipeline itself, never accepted from outside.
INTERNAL: frozenset[str] = frozenset(CATALOG) - frozenset(PUBLISHABLE)


def at_least(role: Role, minimum: Role) -> bool:
    """True when ``role`` is ``minimum`` or above it."""
    return ROLES.index(role) >= ROLES.index(minimum)


def event_type(name: str) -> str:
    """A catalog type from its full name or its short form (``version.released``)."""
    return name if name.startswith(TYPE_PREFIX) else TYPE_PREFIX + name


def check_publish_list(role: Role, types: Iterable[str]) -> list[str]:
    """``types`` as full catalog names, or ValueError naming the first one ``role`` may not list:
    unknown to the catalog, internal, or above the role."""
    out: list[str] = []
    for name in types:
        full = event_type(name)
        if full not in CATALOG:
            raise ValueError(f"unknown event type {name!r} (see `upshift events list`)")
        if full in INTERNAL:
            raise ValueError(
                f"{name!r} is an internal event type, never accepted from outside "
                f"(publishable: {', '.join(sorted(PUBLISHABLE))})"
            )
        need = PUBLISHABLE[full]
        if not at_least(role, need):
            raise ValueError(f"role {role!r} may not publish {name!r} (needs {need} or above)")
        if full not in out:
            out.append(full)
    return out


@dataclass(frozen=True)
class Principal:
    """Whoever a request authenticated as: a token's name, role and allow-list (full types)."""

    name: str
    role: Role
    publish: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Denied:
    """Why a principal may not do something (the edge answers 403 with it)."""

    message: str
    field: str = "type"


def authorize_publish(principal: Principal, type_: str) -> Denied | None:
    """None when ``principal`` may publish an event of ``type_``, else why not."""
    if type_ in INTERNAL:
        return Denied(f"{type_} is an internal event type, never accepted from outside")
    if type_ not in principal.publish:
        return Denied(f"token {principal.name!r} may not publish {type_}")
    need = PUBLISHABLE.get(type_)
    if need is None or not at_least(principal.role, need):
        # the fleet loader refuses such an allow-list; a Principal built by hand may still hold one
        return Denied(f"role {principal.role!r} may not publish {type_}")
    return None


def may_announce_release(principal: Principal) -> Denied | None:
    """The release webhook's rule: the token may publish ``version.released``."""
    return authorize_publish(principal, T.VERSION_RELEASED)
