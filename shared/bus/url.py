"""Bus/store URLs: parse and validate, then open the matching backend.

What an operator can get wrong is refused here as a ConfigError naming it, before any backend
opens: an unknown scheme or option, a lease that is not a positive finite number, a SQLite path
that is a directory, not a SQLite file or not writable, a NATS server that cannot be reached.
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

__all__ = ["DEFAULT_URL", "BusUrl", "check_sqlite_path", "open_bus", "parse_bus_url", "wait_reachable"]

DEFAULT_URL = "sqlite:///.upshift/upshift.db"
_KNOWN = {"sqlite": {"lease"}, "nats": {"lease", "namespace"}}
#: The first bytes of every SQLite 3 database file.
_SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True)
class BusUrl:
    scheme: str
    #: sqlite: the file path; nats: ``nats://host:port``.
    location: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def lease(self) -> float | None:
        return float(self.options["lease"]) if "lease" in self.options else None


def parse_bus_url(url: str) -> BusUrl:
    """Validate ``url``; raises ConfigError naming what is wrong (never a traceback for a typo)."""
    parts = urlsplit(url)
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
    if not parts.hostname:
        raise ConfigError("bus url", f"{url!r}: expected nats://host:port")
    try:
        port = parts.port or 4222
    except ValueError:
        raise ConfigError("bus url", f"{url!r}: port must be a number") from None
    return BusUrl("nats", f"nats://{parts.hostname}:{port}", options)


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
    """Return once the bus server of ``url`` (NATS) accepts a TCP connection; ConfigError naming
    it and the last error if it did not within ``within`` seconds. SQLite: nothing to reach."""
    parsed = parse_bus_url(url)
    if parsed.scheme != "nats":
        return
    parts = urlsplit(parsed.location)
    host, port = parts.hostname or "", parts.port or 4222
    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), max(left, 0.1))
        except (OSError, TimeoutError) as exc:
            why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            if time.monotonic() + 0.25 >= deadline:
                raise ConfigError(
                    "bus url", f"cannot reach {parsed.location} within {within:g}s: {why}"
                ) from None
            await asyncio.sleep(0.25)
        else:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return


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
    )
