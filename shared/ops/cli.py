"""The ``upshift`` command line: the operator's entry point (``upshift = shared.ops.cli:main``;
``python -m shared.ops.cli`` is the same).

Here: the ``events`` group (list, schema, validate the catalog) and the two bus hosts — ``serve``
(HTTP ingress + every function + the clock, one process) and ``worker`` (a subset of the
functions, no HTTP; run N for scale-out). The other commands live beside their subsystem in
``shared/ops/`` (audit, chat, demo, fleet, inventory, plan, status) or ``simulator/`` (simulate)
and join the group at import. Heavy imports (aiohttp, the runtime, the vendor clients) are made
inside the command that needs them, so ``upshift --help`` stays quick.

Errors in what the user gave (a config file, a URL, an argument) print one line naming the
file/field and exit 2 — never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from shared.errors import ConfigError

if TYPE_CHECKING:
    from shared.clock import Clock
    from shared.runtime.host import Runtime

__all__ = ["cli", "main"]

#: A command function being decorated (click's own bound for its option decorators).
_F = TypeVar("_F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-json/--log-pretty", default=None, help="Log format (default: JSON unless stderr is a TTY)."
)
def cli(log_json: bool | None) -> None:
    """Upshift keeps fleets of managed clusters and databases up to date, safely."""
    from shared.log import configure

    configure(json=log_json)


# -- events ------------------------------------------------------------------------------------


@cli.group()
def events() -> None:
    """The event catalog: list types, print schemas, validate files."""


@events.command("list")
def events_list() -> None:
    """Every event type with a one-line description."""
    from events.catalog import CATALOG

    width = max(len(t) for t in CATALOG)
    for type_, spec in CATALOG.items():
        click.echo(f"{type_:<{width}}  {spec.description}")


@events.command("schema")
@click.argument("type_", metavar="TYPE")
def events_schema(type_: str) -> None:
    """The JSON Schema of TYPE (the whole CloudEvent, typed data included)."""
    from events.catalog import CATALOG
    from events.schema import render

    if type_ not in CATALOG:
        raise click.BadParameter(
            f"unknown event type {type_!r}; see `upshift events list`", param_hint="TYPE"
        )
    click.echo(render(type_), nl=False)


@events.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
def events_validate(files: tuple[Path, ...]) -> None:
    """Validate CloudEvent JSON files (structured mode). Exit 1 naming the field on failure."""
    from events.codec import BadEvent, from_json

    failed = False
    for f in files:
        try:
            event = from_json(f.read_bytes(), strict=True)
        except OSError as exc:
            click.echo(f"{f}: cannot read: {exc.strerror}", err=True)
            failed = True
        except BadEvent as exc:
            click.echo(f"{f}: {exc.field or '(event)'}: {exc.message}", err=True)
            failed = True
        else:
            click.echo(f"{f}: ok ({event.type})")
    if failed:
        sys.exit(1)


# -- runtimes ----------------------------------------------------------------------------------

_bus_option = click.option(
    "--bus",
    "bus_url",
    envvar="UPSHIFT_BUS",
    default=None,
    show_envvar=True,
    help="sqlite:///path.db (default ./.upshift/upshift.db) or nats://host:port",
)
_manifest_option = click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    envvar="UPSHIFT_MANIFEST",
    help="serverless.yml to load (default: the one shipped with Upshift).",
)


_fleet_option = click.option(
    "--fleet",
    "fleet_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    envvar="UPSHIFT_FLEET",
    show_envvar=True,
    help="Fleet config (YAML): clouds, windows, targets, policies.",
)


def _clock_options(f: _F) -> _F:
    """Rehearsals and tests: run domain time faster, from a chosen instant (same in every process)."""
    f = click.option("--speed", default=1.0, type=click.FloatRange(min=0, min_open=True), hidden=True)(f)
    f = click.option(
        "--domain-start",
        type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"]),
        default=None,
        hidden=True,
    )(f)
    return click.option(
        "--domain-anchor", type=float, default=None, hidden=True, help="real epoch seconds at --domain-start"
    )(f)


def _clock(speed: float, domain_start: datetime | None, domain_anchor: float | None) -> Clock:
    from datetime import UTC

    from shared.clock import Clock

    start = (
        None
        if domain_start is None
        else (domain_start if domain_start.tzinfo else domain_start.replace(tzinfo=UTC))
    )
    return Clock(speed, start, anchor=domain_anchor)


def _open_runtime(
    bus_url: str | None,
    manifest: Path | None,
    fleet_path: Path | None = None,
    only: tuple[str, ...] = (),
    clock: Clock | None = None,
) -> Runtime:
    from shared.bus import DEFAULT_URL, open_bus
    from shared.runtime.host import Runtime
    from shared.runtime.manifest import DEFAULT_MANIFEST, load_manifest
    from shared.store import open_store

    # (`--bus ""` is a mistake to name, not a request for the default)
    url = DEFAULT_URL if bus_url is None else bus_url
    bus, store = open_bus(url), open_store(url)  # both validate the URL first
    m = load_manifest(manifest or DEFAULT_MANIFEST)
    unknown = set(only) - set(m.functions)
    if unknown:
        raise ConfigError("--only", f"no such function(s): {', '.join(sorted(unknown))}")
    fleet = clouds = None
    if fleet_path is not None:
        from shared.clouds.registry import CloudClients
        from shared.domain.fleet import load_fleet

        fleet = load_fleet(fleet_path)
        clouds = CloudClients.from_fleet(fleet)
    return Runtime(m, bus, store, clock=clock, fleet=fleet, clouds=clouds, only=list(only) or None)


#: How long ``serve``/``worker`` wait for the bus at start before giving up (exit 2).
_connect_option = click.option(
    "--connect-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds to wait for the bus server at start before giving up.",
)


async def _start_runtime(runtime: Runtime, bus_url: str, within: float) -> None:
    """Start ``runtime``; a bus that cannot be reached or opened is a ConfigError (one line, exit 2)."""
    import sqlite3

    from shared.bus.url import wait_reachable

    await wait_reachable(bus_url, within)
    try:
        await asyncio.wait_for(runtime.start(), within)
    except TimeoutError:
        await _quietly_stop(runtime)
        raise ConfigError("bus url", f"{_bare(bus_url)}: not ready within {within:g}s") from None
    except (sqlite3.Error, OSError) as exc:
        await _quietly_stop(runtime)
        raise ConfigError("bus url", f"{_bare(bus_url)}: cannot open: {exc}") from None


async def _quietly_stop(runtime: Runtime) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(runtime.stop(), 10)


def _bare(url: str) -> str:
    return url.split("?")[0]


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


@cli.command()
@_bus_option
@_manifest_option
@_fleet_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@_connect_option
@_clock_options
def serve(
    bus_url: str | None,
    manifest: Path | None,
    fleet_path: Path | None,
    host: str,
    port: int,
    connect_timeout: float,
    speed: float,
    domain_start: datetime | None,
    domain_anchor: float | None,
) -> None:
    """HTTP ingress (POST /events, /hooks/…, GET /healthz) + every function + the clock, one process."""
    from aiohttp import web

    from shared.runtime.server import app_runner, build_app

    runtime = _open_runtime(bus_url, manifest, fleet_path, clock=_clock(speed, domain_start, domain_anchor))

    async def main() -> None:
        await _start_runtime(runtime, runtime.bus.url, connect_timeout)
        runner = app_runner(build_app(runtime))  # on SIGTERM a stuck request gets seconds, not 60
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:  # in use, not ours to bind, no such address
            await runner.cleanup()
            await _quietly_stop(runtime)
            raise ConfigError("--port", f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        bound = runner.addresses[0][1] if runner.addresses else port  # --port 0: the one bound
        click.echo(
            f"upshift serving on http://{host}:{bound} (bus {runtime.bus.url.split('?')[0]})", err=True
        )
        try:
            await _until_signalled()
        finally:
            await runner.cleanup()
            await runtime.stop()

    asyncio.run(main())


@cli.command()
@_bus_option
@_manifest_option
@_fleet_option
@click.option("--only", multiple=True, help="Run only these functions (repeatable).")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve this process's GET /metrics (Prometheus) on this port (0: any free one).",
)
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="Address of --metrics-port.")
@_connect_option
@_clock_options
def worker(
    bus_url: str | None,
    manifest: Path | None,
    fleet_path: Path | None,
    only: tuple[str, ...],
    metrics_port: int | None,
    metrics_host: str,
    connect_timeout: float,
    speed: float,
    domain_start: datetime | None,
    domain_anchor: float | None,
) -> None:
    """The functions only (no HTTP but --metrics-port), consuming from the bus; run N for scale-out."""
    runtime = _open_runtime(
        bus_url, manifest, fleet_path, only, clock=_clock(speed, domain_start, domain_anchor)
    )

    async def main() -> None:
        from aiohttp import web

        from shared.runtime.metrics import serve_metrics

        await _start_runtime(runtime, runtime.bus.url, connect_timeout)
        runner: web.AppRunner | None = None
        if metrics_port is not None:
            try:
                runner = await serve_metrics(runtime, metrics_host, metrics_port)
            except OSError as exc:  # in use, not ours to bind, no such address
                await _quietly_stop(runtime)
                raise ConfigError(
                    "--metrics-port", f"cannot listen on {metrics_host}:{metrics_port}: {exc.strerror or exc}"
                ) from None
            bound = runner.addresses[0][1] if runner.addresses else metrics_port
            click.echo(f"upshift worker metrics on http://{metrics_host}:{bound}/metrics", err=True)
        click.echo(
            f"upshift worker: {', '.join(sorted(runtime.functions))} on {runtime.bus.url.split('?')[0]}",
            err=True,
        )
        try:
            await _until_signalled()
        finally:
            if runner is not None:
                await runner.cleanup()
            await runtime.stop()

    asyncio.run(main())


def _add_subsystem_commands() -> None:
    """Commands that live beside their subsystem (simulator, planning, ledger, demo) join here.

    Imported, not guarded: a broken module must fail loudly, not make its command vanish.
    """
    from shared.ops.audit import audit
    from shared.ops.chat import chat
    from shared.ops.demo import demo
    from shared.ops.fleet import fleet
    from shared.ops.inventory import inventory
    from shared.ops.plan import plan
    from shared.ops.status import status
    from simulator.cli import simulate

    for command in (audit, chat, demo, fleet, inventory, plan, simulate, status):
        cli.add_command(command)


_add_subsystem_commands()


def main(argv: list[str] | None = None) -> None:
    """The console script: the ``cli`` group, with a ``ConfigError`` printed as one line, exit 2."""
    try:
        cli.main(args=argv, prog_name="upshift", standalone_mode=True)
    except ConfigError as exc:
        click.echo(f"upshift: error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
