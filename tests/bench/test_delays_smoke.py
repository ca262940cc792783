"""``python -m bench.delays`` at a tiny size: every delayed event arrives, none before it is due,
and the last line is the promised JSON object (its shape, never its speeds)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_delays_last_line_is_the_json_object():
    done = subprocess.run(
        [sys.executable, "-m", "bench.delays", "--n", "5"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["n"] == 5 and set(result) == {"n", "nats", "sqlite"}
    for bus in ("nats", "sqlite"):
        f = result[bus]
        assert set(f) == {"min", "median", "p95", "max"}
        assert 0 <= f["min"] <= f["median"] <= f["p95"] <= f["max"], "delivered early, or out of order"
