"""Which targets take a release, and why the others do not (``upshift plan`` prints it).

:func:`decide` is THE decision: ``plan_upgrades`` acts on it and ``upshift plan`` prints it, so
the dry run cannot drift from what the pipeline does. Checks, in order (the first that refuses
is the reason given):

1. ``product`` — the target follows another product;
2. ``frozen`` — a matching policy freezes it;
3. ``bad-version`` — the version does not parse for the target's kind;
4. ``skip`` — a matching policy lists the version;
5. ``track`` — the version is off a matching policy's track;
6. ``not-newer`` — not newer than what the target runs (no downgrades, no re-runs);
7. ``soak`` — younger than the longest ``min_release_age`` of the matching policies
   (temporary: ``soak_until`` says when it would pass).

Every policy whose ``match`` fits a target applies, and the strictest wins: frozen if any is,
every track must hold, skip lists add up, the longest soak counts.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from events.catalog import Kind
from shared.domain.approvals import Approval
from shared.domain.versions import BadVersion, compare, on_track, parse_version
from shared.domain.windows import next_open, window_at

if TYPE_CHECKING:
    from shared.domain.fleet import Fleet, Policy, Target

__all__ = ["REFUSALS", "Decision", "Release", "approval_rule", "decide", "matching_policies", "plan_releases"]

#: Decision codes that refuse a release for good (``soak`` only delays it).
REFUSALS = ("product", "frozen", "bad-version", "skip", "track", "not-newer", "superseded", "no-window")


@dataclass(frozen=True, slots=True)
class Release:
    product: str
    version: str
    released_at: datetime


@dataclass(frozen=True, slots=True)
class Decision:
    """What happens to one target for one release."""

    target: str
    kind: Kind
    product: str
    version: str
    take: bool
    code: str
    reason: str
    from_version: str | None
    window: str | None
    wave: int
    soak_until: datetime | None = None


def matching_policies(fleet: Fleet, target: Target) -> list[Policy]:
    """The fleet policies whose ``match`` fits ``target`` (kind, name glob, product, labels)."""
    out = []
    for p in fleet.policies:
        m = p.match
        if m.kind is not None and m.kind != target.kind:
            continue
        if m.name is not None and not fnmatch.fnmatchcase(target.name, m.name):
            continue
        if m.product is not None and m.product != target.product_key:
            continue
        if any(target.labels.get(k) != v for k, v in m.labels.items()):
            continue
        out.append(p)
    return out


def approval_rule(fleet: Fleet, target: Target) -> Approval | None:
    """The approval a target's runs need, or None: the first matching policy's ``approval``, else
    its wave's (``waves.approval``); a rule with ``required: false`` is none."""
    rule = next((p.approval for p in matching_policies(fleet, target) if p.approval is not None), None)
    if rule is None:
        rule = fleet.waves.approval.get(target.wave)
    return rule if rule is not None and rule.required else None


def _same(kind: str, a: str, b: str) -> bool:
    try:
        return compare(kind, a, b) == 0
    except BadVersion:
        return a == b


def _decide_one(
    fleet: Fleet, target: Target, release: Release, now: datetime, current: str | None
) -> Decision:
    def out(take: bool, code: str, reason: str, soak_until: datetime | None = None) -> Decision:
        return Decision(
            target.name,
            target.kind,
            release.product,
            release.version,
            take,
            code,
            reason,
            current,
            target.window,
            target.wave,
            soak_until,
        )

    if target.product_key != release.product:
        return out(False, "product", f"follows {target.product_key}, not {release.product}")
    policies = matching_policies(fleet, target)
    if any(p.frozen for p in policies):
        return out(False, "frozen", "frozen by policy")
    try:
        parse_version(target.kind, release.version)
    except BadVersion as exc:
        return out(False, "bad-version", str(exc))
    for p in policies:
        if any(_same(target.kind, release.version, s) for s in p.skip):
            return out(False, "skip", f"{release.version} is on the policy's skip list")
    for p in policies:
        if not on_track(target.kind, release.version, p.track):
            return out(False, "track", f"off the policy track {p.track}")
    if current is not None:
        try:
            newer = compare(target.kind, release.version, current) > 0
        except BadVersion:
            newer = True  # an unreadable current version: the vendor refuses a real downgrade
        if not newer:
            return out(False, "not-newer", f"not newer than the running {current}")
    soak = max((p.min_release_age for p in policies), default=timedelta(0))
    if soak and now < release.released_at + soak:
        until = release.released_at + soak
        return out(False, "soak", f"soaking until {until.isoformat()} (min_release_age {soak})", until)
    if current is None:
        return out(True, "planned", "takes it (current version unknown)")
    return out(True, "planned", f"takes it: {current} -> {release.version}")


def decide(
    fleet: Fleet, release: Release, now: datetime, current: Mapping[str, str | None]
) -> list[Decision]:
    """One decision per fleet target for ``release`` at ``now``; ``current`` maps target → running version."""
    return [_decide_one(fleet, t, release, now, current.get(t.name)) for t in fleet.targets]


# -- the dry run ---------------------------------------------------------------------------------


def _newest_first(kind: str, decisions: list[Decision]) -> list[Decision]:
    def key(d: Decision) -> Any:
        return parse_version(kind, d.version).key

    return sorted(decisions, key=key, reverse=True)


def plan_releases(
    fleet: Fleet,
    releases: list[Release],
    now: datetime,
    current: Mapping[str, str | None] | None = None,
    offered: Mapping[str, list[str] | None] | None = None,
) -> list[dict[str, Any]]:
    """The dry run as plain data: per release, per target, the decision and its window.

    ``current``: each target's running version (default: the fleet file's; ``--live``: what the
    vendors report). ``offered``: the versions a vendor says a target may move to (``--live``;
    CCE/Autopilot ``upgradeinfo``): a release it does not offer is refused (``not-offered``). Several releases of one product: a target that would take more than one
    takes the newest (latest wins, as in ``plan_upgrades``); the others say ``superseded``.
    """
    if current is None:
        current = {t.name: t.version for t in fleet.targets}
    per = {(r.product, r.version): decide(fleet, r, now, current) for r in releases}
    winners: dict[str, Decision] = {}
    by_target: dict[str, list[Decision]] = {}
    for ds in per.values():
        for d in ds:
            if d.take:
                by_target.setdefault(d.target, []).append(d)
    for name, ds in by_target.items():
        winners[name] = _newest_first(ds[0].kind, ds)[0]
    out = []
    for r in releases:
        rows = []
        for d in per[(r.product, r.version)]:
            if d.take and winners[d.target].version != d.version:
                w = winners[d.target]
                d = Decision(
                    **{**asdict(d), "take": False, "code": "superseded", "reason": f"{w.version} is newer"}
                )
            elif d.take and not _offered(d, (offered or {}).get(d.target)):
                may = ", ".join((offered or {}).get(d.target) or []) or "none"
                d = Decision(
                    **{
                        **asdict(d),
                        "take": False,
                        "code": "not-offered",
                        "reason": f"the vendor offers {may}",
                    }
                )
            rows.append(_with_window(fleet, d, now))
        out.append(
            {
                "product": r.product,
                "version": r.version,
                "released_at": r.released_at.isoformat(),
                "targets": rows,
            }
        )
    return out


def _offered(d: Decision, versions: list[str] | None) -> bool:
    """Is ``d.version`` among (or the line of one of) the versions the vendor offers? Only CCE and
    Autopilot name versions a cluster may move to; elsewhere, or unknown, anything is offered."""
    if versions is None or d.kind not in ("cce", "autopilot"):
        return True
    for v in versions:
        try:
            if compare(d.kind, v, d.version) == 0 or on_track(d.kind, v, d.version):
                return True
        except BadVersion:
            if v == d.version:
                return True
    return False


def _with_window(fleet: Fleet, d: Decision, now: datetime) -> dict[str, Any]:
    row: dict[str, Any] = asdict(d)
    row["soak_until"] = d.soak_until.isoformat() if d.soak_until else None
    row["opens_at"] = row["opens_at_local"] = None
    if d.window is None:
        if d.take:
            row["reason"] += "; no window: starts at once"
        return row
    window = fleet.windows[d.window]
    # The window it would start in: open now, else the next one (after the soak, if soaking).
    start = max(now, d.soak_until) if d.soak_until else now
    occ = window_at(window, start)
    if occ is None or start >= occ.cutoff_at:
        occ = next_open(window, start)
    if occ is None:
        if d.take:
            row.update(take=False, code="no-window", reason=f"window {d.window!r} never opens")
        return row
    row["opens_at"] = occ.opens_at.isoformat()
    row["opens_at_local"] = occ.opens_at.astimezone(ZoneInfo(window.timezone)).isoformat()
    return row
