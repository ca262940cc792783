"""``upshift simulate``: run the five vendor APIs on one port until interrupted.

Also runnable as ``python -m simulator.cli``. Prints one JSON line with the URL when it is ready.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import uuid

import click

from shared.errors import ConfigError
from simulator.core import SimCredentials, SimTarget
from simulator.fleet import default_fleet, load_fleet
from simulator.testing import start_simulator

__all__ = ["main", "simulate"]

_CRED_HELP = {
    "hw_ak": "Huawei access key",
    "hw_sk": "Huawei secret key",
    "hw_project_id": "Huawei project id",
    "hw_iam_user": "Huawei IAM user (token auth)",
    "hw_iam_password": "Huawei IAM password",
    "hw_iam_domain": "Huawei IAM domain",
    "ocp_user": "OCP Basic user",
    "ocp_password": "OCP Basic password",
    "ocp_ak": "OCP access key",
    "ocp_sk": "OCP secret key",
    "ncp_ak": "NAVER access key",
    "ncp_sk": "NAVER secret key",
}


def _cred_options(func):  # type: ignore[no-untyped-def]
    for name, help_text in reversed(_CRED_HELP.items()):
        func = click.option(
            f"--{name.replace('_', '-')}",
            name,
            envvar=SimCredentials.env_name(name),
            show_envvar=True,
            default=None,
            help=f"{help_text} accepted (default: a fixed test value).",
        )(func)
    return func


def _scaled(count: int) -> list[SimTarget]:
    """``count`` copies of each default target, with fresh ids (for benchmarks)."""
    out: list[SimTarget] = []
    for base in default_fleet():
        for i in range(count):
            # Keep each kind's id format (numeric, UUID, 32 hex + "in17") so clients accept it.
            fresh = uuid.uuid5(uuid.NAMESPACE_URL, f"{base.id}/{i}")
            if base.id.isdigit():
                tid = str(int(base.id) * 10000 + i)
            elif len(base.id) == 36:
                tid = str(fresh)
            else:
                tid = fresh.hex + base.id[32:]
            out.append(
                SimTarget(
                    **{**base.__dict__, "name": f"{base.name}-{i:04d}", "id": tid, "extra": dict(base.extra)}
                )
            )
    return out


async def _serve(
    targets: list[SimTarget],
    *,
    host: str,
    port: int,
    speed: float,
    faults: dict,
    seed: int,
    creds: SimCredentials,
) -> None:
    handle = await start_simulator(
        targets=targets, speed=speed, faults=faults, seed=seed, creds=creds, host=host, port=port
    )
    assert handle.runner is not None
    print(json.dumps({"url": handle.url, "targets": len(targets), "speed": speed}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await handle.runner.cleanup()


@click.command("simulate")
@click.option(
    "--fleet",
    "fleet_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="YAML fleet file (default: three targets of each kind).",
)
@click.option(
    "--scale",
    type=click.IntRange(min=1),
    default=None,
    help="Instead of a file: N copies of each default target.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8642, show_default=True, help="Port (0 = any free port)."
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Simulated seconds per real second (60 = a minute per second).",
)
@click.option(
    "--faults",
    default=None,
    help='Faults as JSON, e.g. \'{"ocp": {"error_rates": {"503": 0.1}, "retry_after": 3}}\'; change later with POST /_sim/faults.',
)
@click.option("--latency-ms", type=float, default=None, help="Shortcut: latency for every service.")
@click.option("--error-rate", type=float, default=None, help="Shortcut: 503 rate for every service.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fault RNG.")
@_cred_options
def simulate(fleet_file, scale, host, port, speed, faults, latency_ms, error_rate, seed, **cred_flags):  # type: ignore[no-untyped-def]
    """Run a simulator of the five vendor upgrade APIs (Huawei IAM/TaurusDB/CCE/Autopilot, OceanBase
    OCP, NAVER Kafka) on one HTTP port. Auth is verified as each vendor does; jobs progress on a
    sped-up clock. Control: GET /_sim/stats, GET|POST|DELETE /_sim/faults, GET /_sim/fleet,
    POST /_sim/targets/{id}, POST /_sim/clock."""
    try:
        if fleet_file and scale:
            raise click.UsageError("give --fleet or --scale, not both")
        targets = load_fleet(fleet_file) if fleet_file else _scaled(scale) if scale else default_fleet()
        fault_doc = json.loads(faults) if faults else {}
        if not isinstance(fault_doc, dict):
            raise click.BadParameter("must be a JSON object {service: spec}", param_hint="--faults")
        shortcut = {k: v for k, v in (("latency_ms", latency_ms),) if v is not None}
        if error_rate is not None:
            shortcut["error_rates"] = {"503": error_rate}
        if shortcut:
            fault_doc.setdefault("*", {}).update(shortcut)
        creds = SimCredentials.from_env(**cred_flags)
        asyncio.run(
            _serve(targets, host=host, port=port, speed=speed, faults=fault_doc, seed=seed, creds=creds)
        )
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc.msg}", param_hint="--faults") from None
    except ValueError as exc:  # a bad fault spec (pydantic) or duplicate ids
        raise click.ClickException(str(exc)) from None


def main() -> None:
    simulate.main(prog_name="upshift simulate")


if __name__ == "__main__":
    sys.exit(main())
