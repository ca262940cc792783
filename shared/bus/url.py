"""Bus/store URLs: parse and validate, then open the matching backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from shared.bus.base import Bus
from shared.errors import ConfigError

__all__ = ["DEFAULT_URL", "BusUrl", "open_bus", "parse_bus_url"]

DEFAULT_URL = "sqlite:///.upshift/upshift.db"
_KNOWN = {"sqlite": {"lease"}, "nats": {"lease", "namespace"}}


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
            if float(options["lease"]) <= 0:
                raise ValueError
        except ValueError:
            raise ConfigError("bus url", "lease must be a positive number of seconds") from None
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


def open_bus(url: str) -> Bus:
    """A started-later Bus for ``url`` (call ``await bus.start()``)."""
    parsed = parse_bus_url(url)
    if parsed.scheme == "sqlite":
        from shared.bus.sqlite import SqliteBus

        return SqliteBus(parsed.location, lease=parsed.lease or 30.0)
    from shared.bus.nats import NatsBus

    return NatsBus(
        parsed.location,
        namespace=parsed.options.get("namespace", "upshift"),
        ack_wait=parsed.lease or 30.0,
    )
