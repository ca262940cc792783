"""``upshift demo``: the whole pipeline on the built-in simulator and the embedded bus.

Zero setup: the simulator starts in-process on a free loopback port with a bundled fleet (at
least one target of each of the five kinds, a canary wave and a second wave); the embedded
runtime runs every function of ``serverless.yml`` on a fresh SQLite file, with domain time sped
up (``--speed``) and started just inside a Saturday-night maintenance window; releases are
announced through the real ``POST /hooks/release`` edge; progress is shown live. It exits 0
only when every target reached its new version *according to the simulator*.

``--approvals``: the canary wave (wave 0) waits for approval. The demo fleet gets a Slack app
(``chat.slack``, its signing secret random and only in this process's environment), an
``rbac`` grant ``demo-approvers`` and a ``notify`` webhook, all pointing at a loopback stand-in
for Slack (:mod:`shared.ops.demo_approver`) that plays the approver: it clicks Approve on each
request it is posted, as Slack would send that click, signed, to the running server's
``/hooks/chat/slack/interactive``. The summary then carries per target ``wave``,
``approved_by`` and ``audit`` (its run's audit entries), ``approvals`` (requests, clicks sent,
replies posted back) and ``problems``; it is ok only if, besides every target upgraded, every
canary was approved through that edge (its audit entry: via ``slack``, ``upshift.approve``).
``--approvals=manual`` (with ``--dashboard``): the same fleet, but nobody in the loopback Slack
clicks — the canaries wait for a person to approve them on the dashboard (or with the API); ok
only if every canary was approved by someone (an ``approve`` audit entry, outcome ok). With
``--dashboard`` the canary wave's rule names no grant: anyone whose role is approver or above
may approve (the Slack approver's grant, the dashboard's admin token).

``--dashboard``: the demo's server (up from the start, on ``--port`` or a free loopback port)
also serves the dashboard; the fleet gets two more ``auth.tokens``, ``demo-admin`` (admin) and
``demo-viewer`` (viewer), their values random and only in this process's environment
(:data:`DEMO_ADMIN_TOKEN_ENV`, :data:`DEMO_VIEWER_TOKEN_ENV`). As soon as the server listens
the demo prints one line, ``dashboard: <url>  token (admin): <token>  token (viewer): <token>``
(on stderr with ``--json``), so a browser can watch the rollout live; after it, the summary is
printed (with ``--json``: the JSON, then one line ``{"dashboard": url, "token": ..., "viewer_token":
...}``) and the server stays up until SIGINT (Ctrl-C) or SIGTERM, which also end a rollout still
running (its summary then says what had not finished).

:func:`build_demo_fleet` (the fleet YAML and the simulator's objects, one per target) and
:func:`run_demo` (one whole run, its summary returned) are also what ``bench/`` and the
end-to-end tests drive; :func:`run_demo`'s ``serving``, ``hold`` and ``stop`` are how
a caller watches the rollout on the server while it runs and keeps the server up after it. Being an operator surface, this module may import ``simulator``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import aiohttp
import click
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from simulator.core import SimCredentials, SimTarget

if TYPE_CHECKING:
    from shared.ops.demo_approver import Approver
    from shared.runtime.host import Runtime

__all__ = [
    "DEMO_ADMIN_TOKEN_ENV",
    "DEMO_ENV",
    "DEMO_FAULTS",
    "DEMO_RECONCILE",
    "DEMO_TOKEN_ENV",
    "DEMO_VIEWER_TOKEN_ENV",
    "DemoFleet",
    "build_demo_fleet",
    "demo",
    "run_demo",
    "window_start",
]

WINDOW_TZ = "Asia/Seoul"
#: (kind, from, to, simulated job seconds, extra) — versions the simulator knows how to reach.
_KINDS: list[tuple[str, str, str, float, dict[str, Any]]] = [
    ("ncloud-kafka", "2823006", "3503006", 1500, {"brokers": 3}),
    ("cce", "v1.28", "v1.29", 2400, {}),
    ("autopilot", "v1.28", "v1.29", 2400, {}),
    ("starrocks", "3.2.11", "3.3.5", 1200, {}),
    (
        "oceanbase",
        "4.2.1.8-108000022024072217",
        "4.2.5.0-100000052024102022",
        1800,
        {"operatingSystem": "el7"},
    ),
]
#: The env vars the demo fleet names, and which simulator credential each carries.
DEMO_ENV = {
    "UPSHIFT_DEMO_HW_AK": "hw_ak",
    "UPSHIFT_DEMO_HW_SK": "hw_sk",
    "UPSHIFT_DEMO_OCP_USER": "ocp_user",
    "UPSHIFT_DEMO_OCP_PASSWORD": "ocp_password",
    "UPSHIFT_DEMO_NCP_AK": "ncp_ak",
    "UPSHIFT_DEMO_NCP_SK": "ncp_sk",
}

#: The env var of the demo fleet's ingress token (role operator, may publish version.released).
DEMO_TOKEN_ENV = "UPSHIFT_DEMO_TOKEN"
#: ``--dashboard``: the env vars of its sign-in tokens, ``demo-admin`` (admin) and ``demo-viewer``.
DEMO_ADMIN_TOKEN_ENV = "UPSHIFT_DEMO_ADMIN_TOKEN"
DEMO_VIEWER_TOKEN_ENV = "UPSHIFT_DEMO_VIEWER_TOKEN"
#: ``--dashboard``'s canary rule: one approval by anyone whose role is approver or above.
_OPEN_APPROVAL = "{0: {min_approvals: 1}}"


def _token() -> str:
    return secrets.token_urlsafe(24)


@dataclass
class DemoFleet:
    fleet_yaml: str
    sim_targets: list[SimTarget]
    releases: list[dict[str, str]]
    #: the value for :data:`DEMO_TOKEN_ENV`: the bearer token that announces the releases
    token: str = dataclasses.field(default_factory=_token)
    #: ``--dashboard``: the values for :data:`DEMO_ADMIN_TOKEN_ENV` and :data:`DEMO_VIEWER_TOKEN_ENV`
    admin_token: str = dataclasses.field(default_factory=_token)
    viewer_token: str = dataclasses.field(default_factory=_token)


def window_start(now: datetime) -> datetime:
    """The most recent Saturday 02:00 in Seoul: the demo's domain time starts just inside it."""
    local = now.astimezone(ZoneInfo(WINDOW_TZ))
    sat = local - timedelta(days=(local.weekday() - 5) % 7)
    start = sat.replace(hour=2, minute=0, second=0, microsecond=0)
    if start > local:
        start -= timedelta(days=7)
    return start.astimezone(UTC)


#: The simulator settles in about its list lag (1 s with --faults), not in a real vendor's minutes:
#: a lost answer is looked at after 3 s, and again 1.5 s later, before anything is called again.
DEMO_RECONCILE = {"settle_s": 3.0, "look_gap_s": 1.5}


def build_demo_fleet(
    n: int,
    sim_url: str,
    project_id: str,
    *,
    concurrency: int = 50,
    window: str = "duration: 8h, cutoff: 45m",
    bake: str = "10m",
    client: dict[str, Any] | None = None,
    approvals: str | None = None,
    dashboard: bool = False,
) -> DemoFleet:
    """``n`` targets cycling through the five kinds; the first of each kind is a wave-0 canary.

    ``client`` (``{"retry": {...}, "limits": {...}}``) is given to every cloud's client config,
    over :data:`DEMO_RECONCILE`. ``approvals`` (the demo's loopback Slack, ``127.0.0.1:<port>``):
    the canary wave waits for one approval by the demo's approver, who clicks through Slack's
    interactivity edge (:mod:`shared.ops.demo_approver`). ``dashboard``: two more tokens, an
    admin and a viewer, and the canary rule names no grant (the admin may approve too).
    """
    if n < 1:
        raise click.BadParameter("must be at least 1", param_hint="--targets")
    from shared.ops.demo_approver import APPROVAL, fleet_lines

    settings = {"reconcile": DEMO_RECONCILE, **(client or {})}
    extra = "".join(f", {k}: {json.dumps(v)}" for k, v in settings.items())
    lines = [
        "clouds:",
        f"  huawei: {{region: ap-southeast-1, project_id: {project_id}, ak_env: UPSHIFT_DEMO_HW_AK, sk_env: UPSHIFT_DEMO_HW_SK{extra},",
        f"           endpoints: {{cce: '{sim_url}', autopilot: '{sim_url}', taurusdb: '{sim_url}', iam: '{sim_url}'}}}}",
        f"  oceanbase: {{url: '{sim_url}', user_env: UPSHIFT_DEMO_OCP_USER, password_env: UPSHIFT_DEMO_OCP_PASSWORD{extra}}}",
        f"  ncloud: {{region: KR, endpoint: '{sim_url}', access_key_env: UPSHIFT_DEMO_NCP_AK, secret_key_env: UPSHIFT_DEMO_NCP_SK{extra}}}",
        "windows:",
        f"  sat-night: {{rrule: 'FREQ=WEEKLY;BYDAY=SA;BYHOUR=2;BYMINUTE=0;BYSECOND=0', timezone: {WINDOW_TZ},",
        f"              {window}, concurrency: {concurrency}}}",
        f"waves: {{bake: {bake}{f', approval: {_OPEN_APPROVAL if dashboard else APPROVAL}' if approvals else ''}}}",
        *(fleet_lines(approvals) if approvals else []),
        "auth:",
        "  tokens:",
        f"    - {{name: demo, token_env: {DEMO_TOKEN_ENV}, role: operator, publish: [version.released]}}",
        *(
            [
                f"    - {{name: demo-admin, token_env: {DEMO_ADMIN_TOKEN_ENV}, role: admin}}",
                f"    - {{name: demo-viewer, token_env: {DEMO_VIEWER_TOKEN_ENV}, role: viewer}}",
            ]
            if dashboard
            else []
        ),
        "targets:",
    ]
    sims: list[SimTarget] = []
    for i in range(n):
        kind, old, new, secs, sim_defaults = _KINDS[i % len(_KINDS)]
        name = f"{kind.split('-')[-1]}-{i // len(_KINDS) + 1:03d}"
        wave = 0 if i < len(_KINDS) else 1
        vid = f"{i + 1:04d}"
        fields: dict[str, object] = {
            "name": name,
            "kind": kind,
            "window": "sat-night",
            "wave": wave,
            "version": old,
        }
        if kind in ("cce", "autopilot"):
            vid = f"7378a198-4b2c-11ef-9a5e-{i + 1:012d}"
            fields["cluster_id"] = vid
        elif kind == "starrocks":
            # the simulator knows the node by its StarRocks id (in17), its TaurusDB instance id (in07)
            # beside it; both are 32 letters/digits and the suffix, as the TaurusDB pages state them
            vid = f"{i + 1:032x}in17"
            fields |= {"instance_id": f"{i + 1:032x}in07", "starrocks_instance_id": vid}
        elif kind == "oceanbase":
            vid = str(100 + i)
            fields |= {"cluster_id": vid, "operating_system": "el7"}
        else:
            vid = str(3_432_000 + i)
            fields |= {"cluster": int(vid), "config_group": 160, "kafka": {"config_groups": {new: 170}}}
        lines.append("  - " + json.dumps(fields))
        sim_extra = dict(sim_defaults)
        if kind == "ncloud-kafka":
            sim_extra["configGroupNo"] = 160  # the simulator's group of 2823006; 170 is its 3503006 one
        if kind == "starrocks":
            sim_extra["instance_id"] = fields["instance_id"]
        sims.append(
            SimTarget(
                name=name, kind=kind, id=vid, version=old, versions=[new], job_seconds=secs, extra=sim_extra
            )
        )
    from shared.domain.fleet import DEFAULT_PRODUCT

    releases = [
        {"product": DEFAULT_PRODUCT[k], "version": new} for k, _, new, _, _ in _KINDS[: min(n, len(_KINDS))]
    ]
    return DemoFleet("\n".join(lines) + "\n", sims, releases)


# -- the run -----------------------------------------------------------------------------------


async def run_demo(
    *,
    targets: int,
    speed: float,
    faults: bool | dict[str, Any],
    give_up_s: float,
    live: bool,
    console: Console,
    workdir: str,
    concurrency: int = 50,
    window: str = "duration: 8h, cutoff: 45m",
    bake: str = "10m",
    client: dict[str, Any] | None = None,
    job_seconds: dict[str, float] | None = None,
    approvals: bool = False,
    manual_approvals: bool = False,
    dashboard: bool = False,
    port: int = 0,
    serving: Callable[[str, DemoFleet], None] | None = None,
    hold: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    stop: asyncio.Event | None = None,
) -> dict[str, Any]:
    """Run the pipeline on a fresh simulator + embedded bus; the summary (``runs`` included).

    ``faults`` is True for the demo's fault mix or a ``POST /_sim/faults`` document; the other
    knobs shape the fleet (window, bake, concurrency, client limits, simulated job seconds).
    ``approvals``: the canary wave waits for approval, which the demo gives as a Slack user
    clicking Approve (:mod:`shared.ops.demo_approver`) through the server's signed interactivity
    edge; the summary then says, per target, who approved it and how many audit entries its run
    has, and is ok only if every canary was approved that way. ``manual_approvals``: nobody
    clicks in the loopback Slack; ok only if someone approved every canary (the dashboard, the API).

    The server listens on ``127.0.0.1:port`` (0: a free port) from the start; ``serving(url,
    fleet)`` is told its URL and the fleet's tokens as soon as it does. ``dashboard``: the fleet
    has the admin and viewer tokens. ``stop`` set ends the rollout's wait early; ``hold(summary)``
    is awaited once the summary is made, the server still up (``--dashboard`` waits there for a
    signal).
    """
    from aiohttp import web

    from shared.bus import open_bus
    from shared.clock import Clock
    from shared.clouds.registry import CloudClients
    from shared.domain.fleet import parse_fleet
    from shared.ops.demo_approver import Approver
    from shared.runtime.host import Runtime
    from shared.runtime.manifest import load_manifest
    from shared.runtime.server import app_runner, build_app
    from shared.store import open_store
    from simulator.testing import start_simulator

    creds = SimCredentials()
    start = window_start(datetime.now(UTC)) + timedelta(minutes=1)
    clock = Clock(speed, start=start)
    approver: Approver | None = None
    if approvals:
        approver = Approver(
            clock, say=lambda line: console.print(f"[approver] {line}", highlight=False, markup=False)
        )

    def fleet_at(sim_url: str) -> DemoFleet:
        return build_demo_fleet(
            targets,
            sim_url,
            creds.hw_project_id,
            concurrency=concurrency,
            window=window,
            bake=bake,
            client=client,
            approvals=approver.address if approver else None,
            dashboard=dashboard,
        )

    sim_targets = fleet_at("").sim_targets
    for t in sim_targets:
        t.job_seconds = (job_seconds or {}).get(t.kind, t.job_seconds)
    # the simulator moves these objects' versions as upgrades finish: remember where they began
    from_versions = {t.id: t.version for t in sim_targets}
    if approver is not None:
        await approver.start()  # before the fleet: its port is the fleet's response host
    sim = await start_simulator(
        targets=sim_targets, speed=speed, creds=creds, seed=7, start=start.timestamp()
    )
    demo_fleet = fleet_at(sim.url)
    demo_fleet.sim_targets = sim_targets
    if faults:
        sim.state.faults.update(DEMO_FAULTS if faults is True else faults)
    for env, field in DEMO_ENV.items():
        os.environ[env] = getattr(creds, field)  # in-process only: the simulator's demo credentials
    os.environ[DEMO_TOKEN_ENV] = demo_fleet.token
    if dashboard:
        os.environ[DEMO_ADMIN_TOKEN_ENV] = demo_fleet.admin_token
        os.environ[DEMO_VIEWER_TOKEN_ENV] = demo_fleet.viewer_token
    fleet = parse_fleet(demo_fleet.fleet_yaml, "demo fleet")
    url = f"sqlite:///{workdir}/upshift.db"
    runtime = Runtime(
        load_manifest(),
        open_bus(url),
        open_store(url),
        clock=clock,
        fleet=fleet,
        clouds=CloudClients.from_fleet(fleet),
    )
    await runtime.start()
    runner = app_runner(build_app(runtime))
    await runner.setup()
    audits: dict[str, list[dict[str, Any]]] = {}

    def over() -> bool:
        """Nothing more will come: a click was given up, or ``stop`` was set."""
        return bool(approver is not None and approver.failures) or (stop is not None and stop.is_set())

    try:
        try:
            await web.TCPSite(runner, "127.0.0.1", port).start()
        except OSError as exc:
            raise click.ClickException(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
        ingress = f"http://127.0.0.1:{runner.addresses[0][1]}"
        if serving is not None:
            serving(ingress, demo_fleet)
        t0 = time.monotonic()
        if approver is not None and not manual_approvals:
            # unarmed (--approvals=manual), the loopback Slack takes the requests but never clicks
            approver.arm(ingress, t0 + give_up_s)
        async with aiohttp.ClientSession() as http:
            for rel in demo_fleet.releases:
                body = {**rel, "released_at": (start - timedelta(days=30)).isoformat()}
                bearer = {"Authorization": f"Bearer {demo_fleet.token}"}
                async with http.post(f"{ingress}/hooks/release", json=body, headers=bearer) as r:
                    if r.status >= 300:
                        raise click.ClickException(
                            f"release intake refused {rel}: {r.status} {await r.text()}"
                        )
            runs = await _follow(
                runtime,
                len(demo_fleet.sim_targets),
                give_up_s,
                live,
                console,
                stop=over,
                shown=approver.shown if approver else None,
            )
            if approver is not None:
                for entry in await runtime.store.audit.entries():
                    audits.setdefault(str(entry.get("run")), []).append(entry)
            async with http.get(f"{sim.url}/_sim/fleet") as r:
                sim_fleet = await r.json()
            async with http.get(f"{sim.url}/_sim/stats") as r:
                stats = await r.json()
        summary = _summary(demo_fleet, from_versions, runs, sim_fleet, stats, time.monotonic() - t0)
        if approver is not None:
            waves = {t.name: t.wave for t in fleet.targets}
            _approvals(summary, waves, audits, approver, manual=manual_approvals)
        if hold is not None:
            await hold(summary)
    finally:
        if approver is not None:
            await approver.close()
        await runner.cleanup()
        await runtime.stop()
        await sim.runner.cleanup()  # type: ignore[union-attr]
    return summary


#: ``--faults``: per service a few % each of 5xx/429, resets before the handler, answers lost after
#: the job started (dropped, 1 s late: under the clients' 30 s timeout, or a 5xx), new jobs missing
#: from lists and status views for 1 s, and two vendors whose clocks are off (+90 s, -45 s).
_DEMO_SKEW = {"cce": 90.0, "ocp": -45.0}
DEMO_FAULTS = {
    svc: {
        "error_rates": {"500": 0.03, "503": 0.03, "429": 0.03},
        "retry_after": 1,
        "reset_rate": 0.02,
        "drop_after_commit_rate": 0.03,
        "apply_then_slow_rate": 0.03,
        "apply_then_slow_s": 1.0,
        "apply_then_5xx_rate": 0.02,
        "list_lag_s": 1.0,
        "clock_skew_s": _DEMO_SKEW.get(svc, 0.0),
    }
    for svc in ("cce", "autopilot", "taurusdb", "ocp", "ncloud")
}


async def _follow(
    runtime: Runtime,
    n: int,
    give_up_s: float,
    live: bool,
    console: Console,
    *,
    stop: Callable[[], bool] | None = None,
    shown: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Poll the ledger until every target's run is terminal (or ``stop()`` says nothing more will
    come); draw progress meanwhile, telling ``shown`` each run once it has been drawn."""
    from shared.store.ledger import TERMINAL, RunState

    progress = Progress(
        TextColumn("upgrading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )
    task = progress.add_task("targets", total=n)
    deadline = time.monotonic() + give_up_s
    by_target: dict[str, dict[str, Any]] = {}

    def frame() -> Group:
        table = Table(show_header=True, header_style="bold", box=None)
        approvals = any(r.get("approved_by") for r in by_target.values())
        for col in ("target", "kind", "wave", "from → to", "stage", "state"):
            table.add_column(col)
        if approvals:
            table.add_column("approved by")
        for name in sorted(by_target):
            r = by_target[name]
            stage = _current_stage(r)
            table.add_row(
                name,
                r.get("kind", ""),
                str(r.get("wave", "")),
                f"{r.get('from_version')} → {r.get('to_version')}",
                stage,
                _state(r),
                *([", ".join(r.get("approved_by") or [])] if approvals else []),
            )
        return Group(table if n <= 40 else Table(), progress)

    async def poll() -> bool:
        for r in await runtime.store.ledger.runs():
            if r.get("state") == RunState.SUPERSEDED:
                continue
            by_target[r["target"]] = r
        done = sum(1 for r in by_target.values() if r.get("state") in TERMINAL)
        progress.update(task, completed=done)
        return (len(by_target) >= n and done >= n) or (stop is not None and stop())

    if live:
        with Live(frame(), console=console, refresh_per_second=8, transient=False) as view:
            while not await poll():
                if time.monotonic() > deadline:
                    break
                view.update(frame())
                _tell(shown, by_target)
                await asyncio.sleep(0.25)
            view.update(frame())
    else:
        # not a terminal: one line per change, so a CI log still shows the progress
        seen: dict[str, tuple[str, str]] = {}
        approved: set[str] = set()
        t0 = time.monotonic()
        while True:
            finished = await poll()
            for name in sorted(by_target):
                r = by_target[name]
                at = f"[{time.monotonic() - t0:6.1f}s] {name:<16}"
                if r.get("approved_by") and name not in approved:
                    approved.add(name)
                    by = ", ".join(r["approved_by"])
                    console.print(f"{at} {'':<10} approved by {by}", highlight=False, markup=False)
                now = (_current_stage(r), _state(r))
                if seen.get(name) != now:
                    seen[name] = now
                    console.print(f"{at} {now[0]:<10} {now[1]}", highlight=False, markup=False)
            _tell(shown, by_target)
            if finished or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
    return by_target


def _tell(shown: Callable[[dict[str, Any]], None] | None, runs: dict[str, dict[str, Any]]) -> None:
    if shown is not None:
        for run in runs.values():
            shown(run)


def _state(run: dict[str, Any]) -> str:
    """A run's state as the progress shows it: people's words for the approval's."""
    from shared.store.ledger import RunState

    state = str(run.get("state", ""))
    if state == RunState.AWAITING_APPROVAL:
        return "waiting for approval"
    if state == RunState.PLANNED and run.get("approved_by"):
        return "approved, waiting to start"
    return state


def _current_stage(run: dict[str, Any]) -> str:
    stages = list(run.get("stages", {}))
    return stages[-1] if stages else ""


def _summary(
    demo_fleet: DemoFleet,
    from_versions: dict[str, str],
    runs: dict[str, dict[str, Any]],
    sim_fleet: dict[str, Any] | list[dict[str, Any]],
    stats: dict[str, Any],
    wall: float,
) -> dict[str, Any]:
    by_id = {
        t["id"]: t
        for t in (sim_fleet.get("targets", sim_fleet) if isinstance(sim_fleet, dict) else sim_fleet)
    }
    calls = stats.get("calls", {})
    rows = []
    for st in demo_fleet.sim_targets:
        run = runs.get(st.name, {})
        now = by_id.get(st.id, {}).get("version")
        want = st.versions[-1]
        upgrade_calls = sum(n.get(st.id, 0) for ep, n in calls.items() if ep.endswith(".upgrade"))
        rows.append(
            {
                "target": st.name,
                "kind": st.kind,
                "from": from_versions[st.id],
                "to": want,
                "version_now": now,
                "result": "upgraded" if now == want else (run.get("state") or "not started"),
                "stages": list(run.get("stages", {})),
                "upgrade_calls": upgrade_calls,
                "status_calls": int(run.get("status_calls", 0)),
                "duration_s": _run_seconds(run),
                # why a run that did not upgrade stopped, in the vendor's words
                "reason": None if now == want else _reason(run),
            }
        )
    ok = all(r["result"] == "upgraded" for r in rows)
    return {"ok": ok, "targets": rows, "wall_s": round(wall, 2), "runs": runs}


def _approvals(
    summary: dict[str, Any],
    waves: dict[str, int],
    audits: dict[str, list[dict[str, Any]]],
    approver: Approver,
    *,
    manual: bool = False,
) -> None:
    """Add to ``summary`` who approved each target (``approved_by``) and its run's ``audit`` count;
    it stays ok only if every canary (wave 0) was approved by a signed Slack click (``manual``: by
    anyone, an ``approve`` audit entry with outcome ok). What did not happen is said in
    ``problems``, one line each."""
    from functions.notify import APPROVE_ACTION
    from shared.ops.demo_approver import APPROVER

    problems: list[str] = []
    for row in summary["targets"]:
        run = summary["runs"].get(row["target"], {})
        rid = str(run.get("id", ""))
        entries = audits.get(rid, []) if rid else []
        row["wave"] = waves.get(row["target"])
        row["approved_by"] = list(run.get("approved_by") or [])
        row["audit"] = len(entries)
        approved = any(e.get("command") == "approve" and e.get("outcome") == "ok" for e in entries)
        if manual and row["wave"] == 0 and rid and not approved:
            # the one thing missing, said once: the run itself is only waiting for that
            problems.append(
                f"{row['target']}: nobody approved it before the demo stopped "
                "(--approvals=manual: approve it on the dashboard)"
            )
            continue
        if row["result"] != "upgraded" and row["reason"] is None:
            where = f", at {row['stages'][-1]}" if row["stages"] else ""
            problems.append(
                f"{row['target']}: not finished when the demo gave up (--timeout): {_state(run) or 'no run'}{where}"
            )
        if row["wave"] != 0:
            continue
        if manual:
            if not rid:
                problems.append(f"{row['target']}: no run was planned")
            continue
        click = approver.clicks.get(rid)
        edge = [
            e
            for e in entries
            if e.get("via") == "slack" and e.get("action_id") == APPROVE_ACTION and e.get("outcome") == "ok"
        ]
        if not rid:
            problems.append(f"{row['target']}: no run was planned")
        elif click is None:
            problems.append(
                f"{row['target']}: no approval request with an Approve button reached the channel"
            )
        elif click.error:
            problems.append(f"{row['target']}: {click.error}")
        elif not click.done:
            problems.append(f"{row['target']}: the Approve click got no 200 in time")
        elif not edge:
            problems.append(
                f"{row['target']}: the Approve click was answered 200 but no audit entry records it "
                f"as approved via Slack ({len(entries)} entries for run {rid})"
            )
        elif row["approved_by"] != [APPROVER]:
            problems.append(f"{row['target']}: approved by {row['approved_by']}, not by {APPROVER}")
    summary["approvals"] = {
        "requests": len(approver.clicks),
        "clicks": sum(c.attempts for c in approver.clicks.values()),
        "replies": len(approver.replies),
    }
    summary["problems"] = problems
    summary["ok"] = bool(summary["ok"] and not problems)


def _reason(run: dict[str, Any]) -> str | None:
    if run.get("code"):
        return f"{run.get('failed_stage') or '?'}: {run['code']}: {run.get('message', '')}"[:300]
    for name, st in run.get("stages", {}).items():
        if st.get("state") in ("failed", "waiting"):
            return (
                f"{name}: {st.get('code') or st.get('state')}: {st.get('message') or st.get('reason', '')}"[
                    :300
                ]
            )
    return None


def _run_seconds(run: dict[str, Any]) -> float | None:
    """Domain seconds from the first stage's start to the run's end."""
    try:
        starts = [
            datetime.fromisoformat(v["started_at"])
            for v in run.get("stages", {}).values()
            if v.get("started_at")
        ]
        end = datetime.fromisoformat(run["ended_at"])
        return round((end - min(starts)).total_seconds(), 1)
    except (KeyError, TypeError, ValueError):
        return None


def _table(summary: dict[str, Any]) -> Table:
    approvals = "approvals" in summary
    upgraded = all(r["result"] == "upgraded" for r in summary["targets"])
    what = "every target upgraded" if upgraded else "NOT every target upgraded"
    if approvals:
        what += ", canaries approved in Slack" if not summary["problems"] else ", NOT every canary approved"
    table = Table(title=f"upshift demo — {what} in {summary['wall_s']} s")
    cols = ["target", "kind", "from → to", "stages", "vendor calls", "duration (domain)", "result"]
    for col in cols:
        table.add_column(col)
    if approvals:
        table.add_column("approved by", overflow="fold")
        table.add_column("audit")
    failed = [r for r in summary["targets"] if r.get("reason")]
    for r in summary["targets"]:
        dur = "" if r["duration_s"] is None else str(timedelta(seconds=int(r["duration_s"])))
        style = "green" if r["result"] == "upgraded" else "red"
        table.add_row(
            r["target"],
            r["kind"],
            f"{r['from']} → {r['to']}",
            " → ".join(r["stages"]),
            f"{r['upgrade_calls']} upgrade / {r['status_calls']} status",
            dur,
            f"[{style}]{r['result']}[/]",
            *([", ".join(r["approved_by"]) or "—", str(r["audit"])] if approvals else []),
        )
    lines = [f"{r['target']}: {r['reason']}" for r in failed] + list(summary.get("problems", []))
    if lines:
        table.caption = escape("\n".join(lines))
    return table


@click.command()
@click.option(
    "--targets",
    "n",
    default=10,
    show_default=True,
    type=click.IntRange(1, 5000),
    help="Fleet size (cycles through the five kinds).",
)
@click.option(
    "--speed",
    default=600.0,
    show_default=True,
    type=click.FloatRange(1, 100_000),
    help="Domain seconds per real second.",
)
@click.option(
    "--faults", is_flag=True, help="Turn on the simulator's faults: 5xx, 429, resets, dropped responses."
)
@click.option(
    "--approvals",
    type=click.Choice(["slack", "manual"]),
    is_flag=False,
    flag_value="slack",
    default=None,
    help="The canary wave waits for approval; the demo approves it as a Slack user clicking "
    "Approve, through the server's signed interactivity edge. --approvals=manual (with "
    "--dashboard): nobody clicks, approve the canaries on the dashboard.",
)
@click.option(
    "--dashboard",
    is_flag=True,
    help="Print the dashboard's URL and sign-in tokens as soon as the server listens, and keep "
    "the server up after the rollout until Ctrl-C or SIGTERM.",
)
@click.option(
    "--port",
    default=0,
    type=click.IntRange(0, 65535),
    help="The loopback port of the demo's server (default: a free one).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (no live view).")
@click.option(
    "--timeout",
    default=300.0,
    show_default=True,
    type=click.FloatRange(1),
    help="Give up after this many real seconds.",
)
def demo(
    n: int,
    speed: float,
    faults: bool,
    approvals: str | None,
    dashboard: bool,
    port: int,
    as_json: bool,
    timeout: float,
) -> None:
    """The whole pipeline on the built-in simulator and the embedded bus: no accounts, no servers."""
    from shared.log import configure

    if approvals == "manual" and not dashboard:
        raise click.BadParameter("manual approvals need --dashboard to approve on", param_hint="--approvals")
    # the live view owns the terminal; function logs would tear it, so only errors go to a file
    with tempfile.TemporaryDirectory(prefix="upshift-demo-") as workdir:
        log_path = os.path.join(workdir, "upshift.log")
        with open(log_path, "w") as log_file:
            configure(json=True, stream=log_file, level=40)
            console = Console(stderr=as_json)
            if not console.is_terminal:
                # CI logs: don't fold the table (two more columns with --approvals)
                console.width = max(console.width, 150 if approvals else 120)
            kwargs: dict[str, Any] = dict(
                targets=n,
                speed=speed,
                faults=faults,
                give_up_s=timeout,
                live=not as_json and console.is_terminal,
                console=console,
                workdir=workdir,
                approvals=approvals is not None,
                manual_approvals=approvals == "manual",
                port=port,
            )
            if dashboard:
                summary = asyncio.run(_dashboard(kwargs, console, as_json))
            else:
                summary = asyncio.run(run_demo(**kwargs))
                _print_summary(summary, console, as_json)
    sys.exit(0 if summary["ok"] else 1)


def _print_summary(summary: dict[str, Any], console: Console, as_json: bool) -> None:
    shown = {k: v for k, v in summary.items() if k != "runs"}
    if as_json:
        click.echo(json.dumps(shown, indent=2))
    else:
        console.print(_table(shown))


async def _dashboard(kwargs: dict[str, Any], console: Console, as_json: bool) -> dict[str, Any]:
    """``--dashboard``: :func:`run_demo` telling where the dashboard is, the server kept up after
    the rollout; SIGINT or SIGTERM end the rollout's wait and the server."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    where: dict[str, str] = {}

    def serving(url: str, fleet: DemoFleet) -> None:
        where.update(dashboard=f"{url}/", token=fleet.admin_token, viewer_token=fleet.viewer_token)
        console.print(
            f"dashboard: {where['dashboard']}  token (admin): {fleet.admin_token}  "
            f"token (viewer): {fleet.viewer_token}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )

    async def hold(summary: dict[str, Any]) -> None:
        _print_summary(summary, console, as_json)
        if as_json:
            click.echo(json.dumps(where))
        if not stop.is_set():
            console.print(
                f"the rollout is over; the dashboard stays up at {where['dashboard']} until Ctrl-C",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
            await stop.wait()

    try:
        return await run_demo(**kwargs, dashboard=True, serving=serving, hold=hold, stop=stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
