"""``upshift plan``: the dry run — which targets would take each release, in which window, and
why the others would not. It prints :func:`shared.domain.plan.plan_releases`, the decision
``plan_upgrades`` acts on, so the dry run cannot drift from what the pipeline does; the command
is here, the decision in the domain.

Read-only: nothing is published or written. ``--live`` plans from the versions the vendors
report (:func:`shared.ops.inventory.live_looks`) instead of the fleet file's, and a release
the vendor does not offer a target is not taken (``not-offered``). A bad ``--release``/``--now`` is a usage error, a
bad fleet file one line naming the field.

Each target that would take a release also shows what stands between it and its run: the approval
its run needs (:func:`shared.domain.plan.approval_rule`: how many of whom, when a request
expires), and the fleet file's freezes covering it that overlap the window occurrence it would
start in (from now, or its opening, to its close; a target without a window: those in force now).
Chat freezes live in the store and are not shown here (``/upshift freezes`` lists them). In JSON,
each target row carries ``approval`` (``{min_approvals, approvers, expires, prevent_self_approval}``
or null) and ``freezes`` (the stored form of :func:`shared.domain.freezes.to_stored`, by start).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from shared.domain.durations import format_duration
from shared.domain.freezes import to_stored, upcoming
from shared.domain.plan import Release, approval_rule, plan_releases
from shared.domain.scopes import covers
from shared.limits import LIMITS

if TYPE_CHECKING:
    from shared.domain.fleet import Fleet

__all__ = ["plan"]


class _BadFleet(click.ClickException):
    """The fleet file is wrong: ``Error: file:line: field: message``, exit 2 like any usage error."""

    exit_code = 2


def _parse_release(value: str, now: datetime) -> Release:
    product, sep, rest = value.partition("=")
    version, _, when = rest.partition("@")
    if not sep or not product.strip() or not version.strip():
        raise ValueError(f"{value[:80]!r} is not PRODUCT=VERSION[@RELEASED_AT]")
    if len(version.strip()) > LIMITS.max_name:
        raise ValueError(
            f"the version of {product.strip()[:64]!r} is longer than {LIMITS.max_name} characters"
        )
    released_at = now
    if when:
        try:
            released_at = _aware(datetime.fromisoformat(when))
        except ValueError:
            raise ValueError(f"{when!r} in {value!r} is not an ISO-8601 time") from None
    return Release(product.strip(), version.strip(), released_at)


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _occurrence(fleet: Fleet, row: dict[str, Any], now: datetime) -> tuple[datetime, datetime]:
    """The span a taking target's run would start in: the rest of its window occurrence (from
    ``opens_at``, not before now), or this instant for a target without a window."""
    if row["window"] is None or row["opens_at"] is None:
        return now, now + timedelta(microseconds=1)
    opens = datetime.fromisoformat(row["opens_at"])
    return max(now, opens), opens + fleet.windows[row["window"]].duration


def _gates(fleet: Fleet, result: list[dict[str, Any]], now: datetime) -> None:
    """Add ``approval`` and ``freezes`` to every target row (null and [] where it takes nothing)."""
    for release in result:
        for row in release["targets"]:
            row["approval"], row["freezes"] = None, []
            if not row["take"]:
                continue
            target = fleet.target(row["target"])
            rule = approval_rule(fleet, target)
            if rule is not None:
                row["approval"] = {
                    "min_approvals": rule.min_approvals,
                    "approvers": list(rule.approvers),
                    "expires": None if rule.expires is None else format_duration(rule.expires),
                    "prevent_self_approval": rule.prevent_self_approval,
                }
            start, end = _occurrence(fleet, row, now)
            row["freezes"] = [
                to_stored(f)
                for f in upcoming(fleet.freezes, start, end)
                if covers(
                    f.scope, target=target.name, kind=target.kind, window=target.window, wave=target.wave
                )
            ]


def _approval_text(approval: dict[str, Any] | None) -> str:
    if approval is None:
        return "-"
    n, who = approval["min_approvals"], approval["approvers"]
    text = f"{n} of {', '.join(who)}" if who else f"{n} approver" + ("s" if n > 1 else "")
    return text + (f" (expires {approval['expires']})" if approval["expires"] else "")


def _table(result: list[dict[str, Any]]) -> str:
    head = ("TARGET", "KIND", "FROM", "DECISION", "WINDOW", "NEXT OPEN (window tz)", "APPROVAL", "WHY")
    lines: list[str] = []
    for r in result:
        lines.append(f"{r['product']} {r['version']} (released {r['released_at']})")
        rows = [head] + [
            (
                t["target"],
                t["kind"],
                t["from_version"] or "?",
                "takes it" if t["take"] else t["code"],
                t["window"] or "-",
                t["opens_at_local"] or "-",
                _approval_text(t.get("approval")),
                t["reason"],
            )
            for t in r["targets"]
        ]
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(head) - 1)]
        for row, t in zip(rows, [None, *r["targets"]], strict=True):
            cells = [str(c).ljust(w) for c, w in zip(row[:-1], widths, strict=True)]
            lines.append("  " + "  ".join(cells) + "  " + str(row[-1]))
            for f in (t or {}).get("freezes", []):
                lines.append(
                    f"    frozen: {f['name']} ({f['scope']}) {f['starts_at']} .. {f['ends_at']}: {f['reason']}"
                )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


@click.command("plan")
@click.option(
    "--fleet", "fleet_path", required=True, type=click.Path(exists=True, dir_okay=False), help="Fleet YAML."
)
@click.option(
    "--release",
    "releases",
    multiple=True,
    required=True,
    metavar="PRODUCT=VERSION[@RELEASED_AT]",
    help="A release to plan, e.g. starrocks=3.3.5 or cce=v1.30@2026-01-05T00:00:00Z (repeatable).",
)
@click.option(
    "--now", "now_text", default=None, metavar="ISO", help="Plan as of this instant (default: now)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--live",
    is_flag=True,
    help="Plan from the versions the vendors report (upshift inventory), not the fleet file's.",
)
def plan(fleet_path: str, releases: tuple[str, ...], now_text: str | None, as_json: bool, live: bool) -> None:
    """Dry run: which targets would take each release, in which window, and why others would not."""
    from shared.domain.fleet import load_fleet
    from shared.errors import ConfigError

    try:
        now = _aware(datetime.fromisoformat(now_text)) if now_text else datetime.now(UTC)
    except ValueError:
        raise click.BadParameter(f"{now_text!r} is not an ISO-8601 time", param_hint="'--now'") from None
    parsed = []
    for value in releases:
        try:
            parsed.append(_parse_release(value, now))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--release'") from None
    try:
        fleet = load_fleet(fleet_path)
    except ConfigError as exc:  # a bad file, like a bad argument, is a usage error: exit 2
        raise _BadFleet(str(exc)) from None
    current = offered = None
    if live:
        from shared.ops.inventory import live_looks

        looks = live_looks(fleet_path)
        # a target whose look failed is planned from the fleet file's version, as without --live
        current = {t.name: looks[t.name].version or t.version for t in fleet.targets}
        offered = {name: live.may_move_to for name, live in looks.items()}
    result = plan_releases(fleet, parsed, now, current, offered)
    _gates(fleet, result, now)
    if as_json:
        click.echo(json.dumps({"now": now.isoformat(), "releases": result}, indent=2))
    else:
        click.echo(_table(result), nl=False)
