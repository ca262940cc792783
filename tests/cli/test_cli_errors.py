"""`upshift serve` / `upshift worker` refuse what the operator got wrong — a port in use, a bus
URL or file that cannot be one, a NATS server that is not there, a fleet file that is not UTF-8 —
in one line and exit 2, never a traceback, never a hang. Run as a user runs them (subprocesses)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from shared.bus import parse_bus_url
from shared.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
FLEET = """\
clouds: {huawei: {region: ap-southeast-1, project_id: p1}}
targets:
  - {name: cce-1, kind: cce, cluster_id: c-1}
"""


def upshift(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real command; the timeout only guards against a hang (the defect being tested)."""
    return subprocess.run(
        [sys.executable, "-m", "shared.ops.cli", *args],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def refused(r: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    errors = [line for line in r.stderr.splitlines() if line.startswith("upshift: error: ")]
    assert len(errors) == 1, r.stderr[-3000:]
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_serve_on_a_port_in_use_says_so_in_one_line(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = upshift("serve", "--bus", f"sqlite:///{tmp_path}/u.db", "--port", str(port))
    refused(r, "--port", f"127.0.0.1:{port}")


@pytest.mark.parametrize("command", ["serve", "worker"])
@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_bytes(b"this is not a database, it is a note\n" * 10), "not a SQLite database"),
        (lambda p: None, "is not a directory"),  # its parent is a file (below)
    ],
    ids=["directory", "not-sqlite", "parent-is-a-file"],
)
def test_a_sqlite_bus_that_cannot_be_one_is_refused(tmp_path: Path, command, make, needle):
    target = tmp_path / "bus.db"
    if needle == "is not a directory":
        (tmp_path / "file").write_text("x")
        target = tmp_path / "file" / "bus.db"
    make(target)
    r = upshift(command, "--bus", f"sqlite:///{target}", *(["--port", "0"] if command == "serve" else []))
    refused(r, str(target), needle)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs a read-only /proc")
def test_a_sqlite_bus_in_a_read_only_place_is_refused():
    # (root may write anywhere a mode bit forbids; no one writes /proc)
    r = upshift("worker", "--bus", "sqlite:////proc/upshift-bus.db")
    refused(r, "/proc/upshift-bus.db")


@pytest.mark.parametrize(
    "url", ["", "   ", "sqlite:///x.db?lease=nan", "sqlite:///x.db?lease=inf", "nats://h?lease=-inf"]
)
def test_a_bad_bus_url_is_refused_not_defaulted(tmp_path: Path, url):
    r = upshift("worker", "--bus", url)
    refused(r, "bus url")
    assert not (ROOT / "x.db").exists()


@pytest.mark.parametrize("lease", ["nan", "NaN", "inf", "-inf", "infinity", "0", "-1", "x"])
def test_lease_must_be_positive_and_finite(lease):
    with pytest.raises(ConfigError, match="lease"):
        parse_bus_url(f"sqlite:///x.db?lease={lease}")
    assert parse_bus_url("sqlite:///x.db?lease=0.5").lease == 0.5


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_nats_server_that_is_not_there_is_given_up_on_in_one_line(command):
    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        port_args = ["--port", "0"] if command == "serve" else []
        r = upshift(command, "--bus", f"nats://127.0.0.1:{port}", "--connect-timeout", "1", *port_args)
    refused(r, f"nats://127.0.0.1:{port}", "within 1s")
    assert "nats: encountered error" not in r.stderr


def test_serve_with_a_fleet_file_that_is_not_utf8(tmp_path: Path):
    fleet = tmp_path / "fleet.yaml"
    fleet.write_bytes(FLEET.encode() + b"  - {name: caf\xe9, kind: cce, cluster_id: c-2}\n")
    r = upshift("serve", "--fleet", str(fleet), "--bus", f"sqlite:///{tmp_path}/u.db", "--port", "0")
    refused(r, f"{fleet}:4", "not UTF-8")
