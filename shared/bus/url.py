"""Bus/store URLs: parse and validate, then open the matching backend.

What an operator can get wrong is refused here as a ConfigError naming it, before any backend
opens: an unknown scheme or option, a lease that is not a positive finite number, a SQLite path
that is a directory, not a SQLite file or not writable, a NATS server that cannot be reached.

A NATS URL may list several servers of one cluster, ``nats://a:4222,b:4222,c:4222`` (port 4222 when
left out); clients connect to any and fail over to the others. ``replicas`` (1–5, default 1) is the
replica count of the streams, consumers and KV buckets the bus and store create: 3 on a 3-node
cluster survives a node's loss; 1 suits a single server (JetStream refuses more replicas than nodes).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from shared.bus.base import Bus
from shared.errors import ConfigError

__all__ = [
    "DEFAULT_URL",
    "BusUrl",
    "check_sqlite_path",
    "open_bus",
    "parse_bus_url",
    "servers_of",
    "wait_reachable",
]

DEFAULT_URL = "sqlite:///.upshift/upshift.db"
_KNOWN = {"sqlite": {"lease"}, "nats": {"lease", "namespace", "replicas"}}
#: JetStream's own bound on a stream's replicas.
_MAX_REPLICAS = 5
#: The first bytes of every SQLite 3 database file.
_SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True)
class BusUrl:
    scheme: str
    #: sqlite: the file path; nats: ``nats://host:port``, or ``nats://h1:p1,h2:p2,…`` (itself a bus URL).
    location: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def lease(self) -> float | None:
        return float(self.options["lease"]) if "lease" in self.options else None

    @property
    def servers(self) -> list[str]:
        """nats: every server of ``location`` (``nats://host:port`` each); sqlite: none."""
        return servers_of(self.location) if self.scheme == "nats" else []

    @property
    def replicas(self) -> int:
        return int(self.options.get("replicas", "1"))


def parse_bus_url(url: str) -> BusUrl:
    """Validate ``url``; raises ConfigError naming what is wrong (never a traceback for a typo)."""
    # A server list may repeat the scheme (nats://a:1,nats://b:2, as nats tools spell it).
    parts = urlsplit(url.replace(",nats://", ",") if url.startswith("nats://") else url)
    if parts.scheme not in _KNOWN:
        raise ConfigError("bus url", f"{url!r}: scheme must be sqlite:// or nats://")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(options) - _KNOWN[parts.scheme]
    if unknown:
        raise ConfigError("bus url", f"unknown option(s) {sorted(unknown)} for {parts.scheme}://")
    if "lease" in options:
        try:
            lease = float(options["lease"])
        except ValueError:
            lease = math.nan
        if not (math.isfinite(lease) and lease > 0):  # nan/inf: a lease that never ends
            raise ConfigError("bus url", "lease must be a positive, finite number of seconds")
    if parts.scheme == "sqlite":
        # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy spells them.
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if parts.netloc or not path:
            raise ConfigError("bus url", f"{url!r}: expected sqlite:///path/to/file.db")
        return BusUrl("sqlite", str(Path(path)), options)
    if "replicas" in options:
        raw = options["replicas"]
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= _MAX_REPLICAS):
            raise ConfigError("bus url", f"replicas must be a whole number from 1 to {_MAX_REPLICAS}")
        options["replicas"] = str(int(raw))
    if parts.path not in ("", "/"):
        raise ConfigError("bus url", f"{url!r}: expected nats://host:port[,host:port…]")
    servers = [_nats_server(url, item) for item in parts.netloc.split(",")]
    return BusUrl("nats", "nats://" + ",".join(s.removeprefix("nats://") for s in servers), options)


def servers_of(location: str) -> list[str]:
    """``nats://a:1,b:2`` (a BusUrl's location) → ``["nats://a:1", "nats://b:2"]``."""
    return ["nats://" + item.removeprefix("nats://") for item in location.split(",") if item]


def _nats_server(url: str, item: str) -> str:
    """``nats://host:port`` for one comma-separated item of a NATS URL's server list."""
    parts = urlsplit(f"nats://{item}")
    try:
        host, port = parts.hostname, parts.port or 4222
    except ValueError:
        raise ConfigError("bus url", f"{url!r}: port must be a number from 1 to 65535") from None
    if not host:
        raise ConfigError("bus url", f"{url!r}: expected nats://host:port[,host:port…]")
    return f"nats://{host}:{port}"


def check_sqlite_path(path: str) -> None:
    """ConfigError unless ``path`` can be a SQLite bus: not a directory, a SQLite (or empty) file or
    none yet, in a directory that exists or can be made, writable."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError("bus url", f"{path}: is a directory, not a SQLite file")
    if p.exists():
        try:
            with p.open("rb") as f:
                head = f.read(len(_SQLITE_MAGIC))
        except OSError as exc:
            raise ConfigError("bus url", f"{path}: cannot read: {exc.strerror}") from None
        if head and head != _SQLITE_MAGIC:
            raise ConfigError("bus url", f"{path}: exists and is not a SQLite database")
        if not os.access(p, os.R_OK | os.W_OK):
            raise ConfigError("bus url", f"{path}: not writable")
        return
    parent = p.parent
    while not parent.exists():  # the bus makes the missing directories
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError("bus url", f"{path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError("bus url", f"{path}: cannot create it, {parent} is not writable")


async def wait_reachable(url: str, within: float) -> None:
    """Return once a bus server of ``url`` (NATS: any one of its list) accepts a TCP connection;
    ConfigError naming them and the last error if none did within ``within`` seconds. SQLite:
    nothing to reach."""
    parsed = parse_bus_url(url)
    if parsed.scheme != "nats":
        return
    deadline = time.monotonic() + within
    while True:
        why = ""
        for server in parsed.servers:
            parts = urlsplit(server)
            left = deadline - time.monotonic()
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(parts.hostname or "", parts.port or 4222),
                    max(left / len(parsed.servers), 0.1),
                )
            except (OSError, TimeoutError) as exc:
                why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        if time.monotonic() + 0.25 >= deadline:
            raise ConfigError(
                "bus url", f"cannot reach {parsed.location} within {within:g}s: {why}"
            ) from None
        await asyncio.sleep(0.25)


def open_bus(url: str) -> Bus:
    """A started-later Bus for ``url`` (call ``await bus.start()``)."""
    parsed = parse_bus_url(url)
    if parsed.scheme == "sqlite":
        from shared.bus.sqlite import SqliteBus

        check_sqlite_path(parsed.location)
        return SqliteBus(parsed.location, lease=parsed.lease or 30.0)
    from shared.bus.nats import NatsBus

    return NatsBus(
        parsed.location,
        namespace=parsed.options.get("namespace", "upshift"),
        ack_wait=parsed.lease or 30.0,
        replicas=parsed.replicas,
    )
