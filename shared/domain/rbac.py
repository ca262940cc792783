"""Who is who in chat: the fleet file's ``rbac:`` grants, mapping identities to roles.

```yaml
rbac:
  - name: sre-leads
    role: approver
    slack: ["T0SRE/U024BE7LH"]          # team id / user id, as Slack sends them
    mattermost: ["8ifkc4bxw3gq8pbt3xtzbc6qnr"]
  - name: oncall
    role: operator
    slack: ["T0SRE/U0ONCALL1"]
    kinds: [ncloud-kafka, cce]          # limits: only these kinds …
    targets: ["cce-*", "kafka-*"]       # … these targets (globs) …
    windows: [sat-night]                # … and these windows
  - {name: stackstorm, role: operator, tokens: [chatops-bot]}   # a bot's bearer token (auth.tokens)
  - {name: laptop, role: admin, cli: [alice]}                     # `upshift` commands as an OS user
```

Identities are the platforms' immutable ids, never display names. A grant's limits narrow where
its role holds; an identity in several grants holds each grant's role within that grant's limits.

Contract (pure, no I/O):

* **Identity** (:func:`identity_of`) comes from the event's ``via`` extension, which only trusted
  edges set (``slack``, ``mattermost``, ``cli``; ``token:<name>`` from the authenticated ingress
  and API) — never from the ``platform`` the command's data claims. Anything else is no identity
  (refused). A bot acting for someone (``token:…``) is the bot; the user it names is recorded
  in ``on_behalf_of`` only.
* **Roles**: the grants listing the identity; a grant's limits (``kinds``, ``targets`` globs,
  ``windows``; an empty list: no limit) say which targets its role holds on; on a target, the
  highest role of the grants covering it counts. A token listed in no grant holds its own
  ``auth.tokens`` role, unlimited.
* **Authorization** (:func:`authorize`): a command touching no target needs the role in some
  grant; one touching targets needs it on *every* target (a scope matching nothing: as touching
  none). Refusals are :class:`~shared.domain.access.Denied` saying who the caller is, the role
  needed, the first target out of reach and whom to ask (``chat.contact``).
* :func:`rbac_problems` is what the fleet loader refuses of the block as a whole.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from events.catalog import ChatCommand, Kind
from shared.domain.access import ROLES, Denied, Role, at_least

if TYPE_CHECKING:  # the fleet's models import this module; at run time only values pass
    from shared.domain.fleet import Fleet, Target

__all__ = [
    "SLACK_ID",
    "Grant",
    "Identity",
    "approver_groups",
    "authorize",
    "grants_of",
    "identity_of",
    "rbac_problems",
    "role_on",
]

#: A Slack identity in a grant: ``<team id>/<user id>``.
SLACK_ID = re.compile(r"^T[A-Z0-9]+/[UW][A-Z0-9]+$")


class Grant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9\-_.]{0,62}$")
    role: Role
    #: Slack identities as ``<team id>/<user id>`` (``T0SRE/U024BE7LH``).
    slack: list[str] = Field(default=[], json_schema_extra={"items": {"pattern": SLACK_ID.pattern}})
    #: Mattermost user ids.
    mattermost: list[str] = []
    #: Names of ``auth.tokens`` entries (bots, scripts, the HTTP API).
    tokens: list[str] = []
    #: OS user names running ``upshift`` commands on a host with the bus.
    cli: list[str] = []
    kinds: list[Kind] = []
    #: globs on target names
    targets: list[str] = []
    windows: list[str] = []

    @field_validator("slack")
    @classmethod
    def _slack(cls, v: list[str]) -> list[str]:
        bad = next((s for s in v if not SLACK_ID.match(s)), None)
        if bad is not None:
            raise ValueError(
                f"{bad[:80]!r} is not a Slack identity <team id>/<user id> (like T0SRE/U024BE7LH)"
            )
        return v

    def holds_on(self, target: Target) -> bool:
        """Whether this grant's role holds on ``target`` (within its limits)."""
        return (
            (not self.kinds or target.kind in self.kinds)
            and (not self.targets or any(fnmatch.fnmatchcase(target.name, g) for g in self.targets))
            and (not self.windows or target.window in self.windows)
        )


Platform = Literal["slack", "mattermost", "token", "cli"]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who sent a command: ``id`` is ``<platform>:<key>`` (``slack:T0SRE/U024BE7LH``,
    ``mattermost:<user id>``, ``token:<token name>``, ``cli:<os user>``)."""

    id: str
    platform: Platform
    #: a user name for messages (never used to decide anything)
    display: str | None = None
    #: the user a bot or script says it acts for (recorded, never trusted)
    on_behalf_of: str | None = None

    @property
    def key(self) -> str:
        """The id without its platform (what a grant lists)."""
        return self.id.partition(":")[2]

    def describe(self) -> str:
        """``slack user U024BE7LH (alice) of team T0SRE``, ``token 'chatops-bot'``, … for replies."""
        name = f" ({self.display})" if self.display else ""
        match self.platform:
            case "slack":
                team, _, user = self.key.partition("/")
                return f"slack user {user}{name} of team {team}"
            case "mattermost":
                return f"mattermost user {self.key}{name}"
            case "token":
                return f"token {self.key!r}"
            case "cli":
                return f"cli user {self.key!r}"
        raise TypeError(self.platform)


def identity_of(data: ChatCommand, via: str | None) -> Identity | None:
    """The identity a command comes from, read from the trusted ``via`` (the event's extension);
    None when ``via`` is missing or names no trusted edge."""
    match via:
        case "slack":
            if not data.team:
                return None
            return Identity(f"slack:{data.team}/{data.user}", "slack", data.user_name)
        case "mattermost":
            return Identity(f"mattermost:{data.user}", "mattermost", data.user_name)
        case "cli":
            return Identity(f"cli:{data.user}", "cli", data.user_name)
        case str() if via.startswith("token:") and len(via) > len("token:"):
            return Identity(via, "token", data.user_name, on_behalf_of=data.user)
    return None


def _lists(grant: Grant, identity: Identity) -> bool:
    field = {"slack": grant.slack, "mattermost": grant.mattermost, "token": grant.tokens, "cli": grant.cli}
    return identity.key in field[identity.platform]


def grants_of(fleet: Fleet, identity: Identity) -> list[Grant]:
    """The grants listing ``identity``; for a token in none, one unlimited grant of the token's own
    ``auth.tokens`` role (named as the token); empty for an identity Upshift does not know."""
    listed = [g for g in fleet.rbac if _lists(g, identity)]
    if listed or identity.platform != "token":
        return listed
    token = next((t for t in fleet.auth.tokens if t.name == identity.key), None)
    return [] if token is None else [Grant(name=token.name, role=token.role, tokens=[token.name])]


def _highest(roles: Sequence[Role]) -> Role | None:
    return max(roles, key=ROLES.index, default=None)


def role_on(fleet: Fleet, identity: Identity, target: Target) -> Role | None:
    """The highest role ``identity`` holds on ``target`` (None: none of its grants covers it)."""
    return _highest([g.role for g in grants_of(fleet, identity) if g.holds_on(target)])


def authorize(
    fleet: Fleet, identity: Identity, minimum: Role, targets: Sequence[Target] | None
) -> Denied | None:
    """None when ``identity`` may do something needing ``minimum`` on ``targets`` (None: touching
    no target), else why not."""
    grants = grants_of(fleet, identity)
    ask = f"ask {fleet.chat.contact} for access"
    who = identity.describe()
    if not grants:
        return Denied(f"{who} has no Upshift role; {ask}", field="user")
    if not targets:
        best = _highest([g.role for g in grants])
        if best is not None and at_least(best, minimum):
            return None
        return Denied(f"{who} is {best}; this needs {minimum} or above — {ask}", field="role")
    for target in targets:
        role = role_on(fleet, identity, target)
        if role is None or not at_least(role, minimum):
            held = f"is {role} there" if role is not None else "holds no role there"
            return Denied(f"{who} needs {minimum} or above on {target.name} ({held}) — {ask}", field="role")
    return None


def approver_groups(fleet: Fleet, identity: Identity) -> set[str]:
    """The names of the ``rbac:`` grants listing ``identity`` (what ``approval.approvers`` lists)."""
    return {g.name for g in fleet.rbac if _lists(g, identity)}


def rbac_problems(fleet: Fleet) -> Sequence[tuple[tuple[str | int, ...], str, Any]]:
    """What is wrong with the fleet's ``rbac:`` and the approvers it names — (where, message,
    value) each: a grant name given twice, a token not in ``auth.tokens``, an unknown window in a
    grant's limits, an approval's ``approvers`` naming no grant."""
    out: list[tuple[tuple[str | int, ...], str, Any]] = []
    first: dict[str, int] = {}
    tokens = {t.name for t in fleet.auth.tokens}
    for i, g in enumerate(fleet.rbac):
        if g.name in first:
            out.append(
                (("rbac", i, "name"), f"duplicate grant name {g.name!r} (also rbac[{first[g.name]}])", g.name)
            )
        first.setdefault(g.name, i)
        for j, name in enumerate(g.tokens):
            if name not in tokens:
                known = ", ".join(sorted(tokens)) or "none defined"
                out.append((("rbac", i, "tokens", j), f"unknown token {name!r} (auth.tokens: {known})", name))
        for j, name in enumerate(g.windows):
            if name not in fleet.windows:
                known = ", ".join(sorted(fleet.windows)) or "none defined"
                out.append((("rbac", i, "windows", j), f"unknown window {name!r} (windows: {known})", name))
    grants = ", ".join(sorted(first)) or "none defined"
    approvals: list[tuple[tuple[str | int, ...], list[str]]] = [
        (("policies", i, "approval"), p.approval.approvers)
        for i, p in enumerate(fleet.policies)
        if p.approval is not None
    ]
    approvals += [(("waves", "approval", str(n)), a.approvers) for n, a in fleet.waves.approval.items()]
    for where, approvers in approvals:
        for j, name in enumerate(approvers):
            if name not in first:
                out.append(
                    ((*where, "approvers", j), f"unknown rbac grant {name!r} (grants: {grants})", name)
                )
    return out
