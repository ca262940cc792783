"""``python -m bench.bus`` at a tiny n: every variant measures every shape, the last line is the
promised JSON object (its shape, not its speeds: benchmarks are run by hand)."""

from __future__ import annotations

import json
import subprocess
import sys

VARIANTS = ("sqlite", "bare_sqlite", "nats", "bare_nats", "faststream")
SHAPES = {"publish", "consume_emit", "both"}


def test_bench_bus_last_line_is_the_json_object():
    done = subprocess.run(
        [sys.executable, "-m", "bench.bus", "--n", "20", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert set(result) == {"n", *VARIANTS}
    assert result["n"] == 20
    for variant in VARIANTS:
        assert set(result[variant]) == SHAPES
        assert all(isinstance(v, float) and v > 0 for v in result[variant].values())
    assert any(line.startswith("goal nats bus >= 0.5x bare nats-py") for line in lines)


def test_bench_bus_profile_names_where_the_time_goes():
    done = subprocess.run(
        [sys.executable, "-m", "bench.bus", "--profile", "sqlite", "--n", "20"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "-- by own time" in lines and "-- by cumulative time" in lines
    cumulative = lines[lines.index("-- by cumulative time") + 1 :]
    assert any("shared/bus/sqlite.py" in line for line in cumulative)
