"""``python -m bench.rollout`` at a tiny size: the last line is the promised JSON object (its shape
and that every target was upgraded, not its ratios: benchmarks are run by hand), and the line
before it has the details; the realised-duration bound is a real lower bound of the wall time."""

from __future__ import annotations

import json
import subprocess
import sys

LAST_LINE = {
    "targets",
    "bus",
    "upgraded",
    "wall_s",
    "bound_s",
    "ratio",
    "median_status_calls",
    "p95_status_calls",
    "p95_notice_s",
    "peak_rss_mb",
}


def test_bench_rollout_last_line_is_the_json_object():
    done = subprocess.run(
        [sys.executable, "-m", "bench.rollout", "--targets", "5", "--speed", "1000", "--concurrency", "5"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    *_, before, last = done.stdout.strip().splitlines()
    result = json.loads(last)
    assert set(result) == LAST_LINE
    assert result["targets"] == 5 and result["bus"] == "sqlite" and result["upgraded"] == 5
    # the bound is from the jobs' realised durations: nothing can finish faster
    assert 0 < result["bound_s"] <= result["wall_s"] and result["ratio"] >= 1
    assert result["peak_rss_mb"] > 0 and result["median_status_calls"] >= 1
    details = json.loads(before)["details"]
    assert details["problems"] == [] and details["all_terminal"] is True
    assert details["jobs_followed"] == 8  # 5 kinds: kafka 1, cce 2, autopilot 3, starrocks 1, oceanbase 1
