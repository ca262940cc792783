"""A deployed function's cold path imports only what its first event needs (issue 13, cold start).

One subprocess does what functions-framework does with ``--source shared/runtime/framework.py
--target echo``: imports ``functions_framework.aio`` (the baseline: flask, starlette, … are the
framework's, not ours), builds the ASGI app, then answers one binary-mode CloudEvent through it
(the bus and store opened, the echo published). What that added to ``sys.modules`` must hold no
terminal UI, no HTTP server or client, no metrics exposition, no simulator, dashboard, ops or cloud
clients: each of those was once on this path (``bench.coldstart`` measures the time; this pins the
imports, so a regression fails here without a timing assertion). Nor greenlet, which structlog
loads only for its deprecated thread-local context (``shared.log`` hides it).

The catalog's models are made at import by every process; their annotations are evaluated by the
interpreter, not strings pydantic compiles one by one (no ``from __future__ import annotations``
in ``events/catalog.py``): the last test pins that too.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from events.catalog import CATALOG
from shared.runtime.manifest import DEFAULT_MANIFEST

ROOT = DEFAULT_MANIFEST.parent

#: Top-level packages (or dotted prefixes) a deployed echo must not load beyond functions-framework's own.
HEAVY = (
    "rich",  # structlog imports it for console tracebacks unless stderr is no TTY (shared.log)
    "pygments",
    "jinja2",
    "aiohttp",  # shared.runtime.metrics serves /metrics with it; the bus backends import metrics
    "prometheus_client",  # made on first record (shared.runtime.metrics.metrics)
    "simulator",
    "shared.dashboard",
    "shared.ops",
    "shared.clouds",
    "shared.engine",
    "click",
    "nats",
    "greenlet",  # structlog imports it for structlog.threadlocal unless hidden (shared.log)
)

_PROBE = """
import asyncio, gc, json, sys
import functions_framework.aio
from functions_framework.aio import create_asgi_app
baseline = set(sys.modules)
app = create_asgi_app(target="echo", source="shared/runtime/framework.py", signature_type="cloudevent")
frozen = gc.get_freeze_count()
body = json.dumps({"message": "cold", "reply": True}).encode()
headers = [(b"content-type", b"application/json"), (b"ce-specversion", b"1.0"),
           (b"ce-type", b"dev.upshift.echo"), (b"ce-source", b"tests/cold"), (b"ce-id", b"cold-1")]
scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
         "scheme": "http", "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "",
         "headers": headers, "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1)}
pending = [{"type": "http.request", "body": body, "more_body": False}]
sent = []
async def receive():
    return pending.pop(0) if pending else {"type": "http.disconnect"}
async def send(message):
    sent.append(message)
asyncio.run(app(scope, receive, send))
status = next(m["status"] for m in sent if m["type"] == "http.response.start")
added = sorted(set(sys.modules) - baseline)
print(json.dumps({"status": status, "frozen": frozen, "added": added}))
"""


@pytest.fixture(scope="module")
def cold(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One cold start, shared by the tests below (a subprocess costs seconds)."""
    tmp = tmp_path_factory.mktemp("cold")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "UPSHIFT_BUS": f"sqlite:///{tmp}/cold.db"}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,  # stderr a pipe, as under a deployment: JSON logs
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _heavy(added: list[str]) -> list[str]:
    return [m for m in added if any(m == h or m.startswith(h + ".") for h in HEAVY)]


def test_a_deployed_functions_first_event_loads_nothing_heavy(cold: dict[str, object]) -> None:
    assert cold["status"] == 200, "the echo was not answered: the probe measured nothing"
    added = cold["added"]
    assert isinstance(added, list)
    # it did load the path (a probe that loaded nothing would pass the check below vacuously)
    assert {"functions.echo", "shared.bus.sqlite", "shared.log", "structlog"} <= set(added)
    assert _heavy(added) == []
    others = [m for m in added if m.startswith("functions.") and m != "functions.echo"]
    assert others == [], "another function's module was loaded"


def test_the_built_target_is_frozen_out_of_the_collector(cold: dict[str, object]) -> None:
    """framework.__getattr__ freezes what building the target made (gc.freeze, before the fork)."""
    assert isinstance(cold["frozen"], int) and cold["frozen"] > 10_000


def test_the_catalog_models_are_made_from_evaluated_annotations() -> None:
    """String annotations (``from __future__ import annotations``) cost a compile and an eval per
    field when pydantic makes each of the catalog's models, at every import (see events/catalog.py)."""
    annotations = [
        (f"{spec.model.__name__}.{name}", annotation)
        for spec in CATALOG.values()
        for name, annotation in vars(spec.model).get("__annotations__", {}).items()
    ]
    assert len(annotations) > 50, "the models' own fields were not found: the check below is vacuous"
    assert [name for name, annotation in annotations if isinstance(annotation, str)] == []
