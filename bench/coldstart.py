"""Cold start: process start to the first event handled, an Upshift function against a bare one.

    python -m bench.coldstart [--reps 7] [--function echo]

Both run the same way, as deployed (``functions-framework --asgi --signature-type cloudevent``):

* **function**: ``--source shared/runtime/framework.py --target echo`` (the manifest's target,
  with ``UPSHIFT_BUS`` a fresh SQLite file per start: its first event opens the bus and the store
  and publishes the echo before it answers, as it must);
* **bare**: a module generated in a temp dir, one ``@functions_framework.aio.cloud_event``
  function that does nothing.

Both start from cached bytecode, as a deployed image does: the children may write ``.pyc``
files (``PYTHONDONTWRITEBYTECODE`` is dropped from their environment), and one start of each,
not counted, writes them before the repetitions.

Each repetition starts the process, then POSTs one binary-mode CloudEvent (``dev.upshift.echo``,
``{"message": "cold", "reply": true}``) every 5 ms until one answers 2xx; the figure is the
time from spawning the process to that answer. The two alternate, ``--reps`` times each; the
medians are reported. Goal (issue 13): function ≤ 1.5× bare. Beside the wall times, the CPU
seconds each start had used when it answered (its processes, from ``/proc``, in clock ticks:
10 ms), which other load on the machine disturbs less. Last line: one JSON object ``{"function_s", "bare_s", "ratio",
"function_cpu_s", "bare_cpu_s", "cpu_ratio"}`` (plus the repetitions).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simulator.natsd import free_port

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
BARE = '''"""A bare functions_framework.aio CloudEvent function (the cold-start baseline)."""

import functions_framework.aio


@functions_framework.aio.cloud_event
async def bare(cloud_event):
    return None
'''
HEADERS = {
    "Content-Type": "application/json",
    "ce-specversion": "1.0",
    "ce-type": "dev.upshift.echo",
    "ce-source": "bench/coldstart",
}
BODY = json.dumps({"message": "cold", "reply": True}).encode()


def _post(port: int, n: int) -> int | None:
    """The status of one CloudEvent POST, None when nothing listens yet."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/", body=BODY, headers={**HEADERS, "ce-id": f"cold-{os.getpid()}-{n}"})
        return conn.getresponse().status
    except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
        return None
    finally:
        conn.close()


def _tree_cpu(pid: int) -> float:
    """CPU seconds used so far by process ``pid`` and its descendants (Linux ``/proc``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        children = [
            int(c) for t in Path(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()
        ]
    except OSError:
        return 0.0  # gone meanwhile: a worker that exited is not part of this start
    utime, stime = stat.rsplit(")", 1)[1].split()[11:13]  # fields 14 and 15, after "(comm)"
    return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK") + sum(_tree_cpu(c) for c in children)


def one_start(source: str, target: str, env: dict[str, str], log: Path) -> tuple[float, float]:
    """Seconds from spawning functions-framework to the first 2xx answer to a CloudEvent, and
    the CPU seconds its processes (gunicorn's master and worker) had used by then."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "functions_framework", "--asgi", "--signature-type", "cloudevent",
        "--source", source, "--target", target, "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    with open(log, "ab") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        n = 0
        while True:
            status = _post(port, n)
            n += 1
            if status is not None:
                if not 200 <= status < 300:
                    raise SystemExit(f"{target} answered {status}; see {log}")
                wall = time.perf_counter() - t0
                cpu = _tree_cpu(proc.pid)
                break
            if proc.poll() is not None:
                raise SystemExit(f"{target} exited with {proc.returncode}; see {log}")
            if time.perf_counter() - t0 > 120:
                raise SystemExit(f"{target} did not answer in 120 s; see {log}")
            time.sleep(0.005)
    finally:
        proc.terminate()
        proc.wait(10)
    return wall, cpu


def main(reps: int, function: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="upshift-coldstart-") as tmp:
        work = Path(tmp)
        (work / "bare.py").write_text(BARE)
        # any value of PYTHONDONTWRITEBYTECODE ("0" too) stops .pyc writing: without it, a module
        # edited since its .pyc was written would be compiled again at every start
        base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        base["PYTHONPATH"] = str(ROOT)
        fn_s: list[tuple[float, float]] = []
        bare_s: list[tuple[float, float]] = []
        # not counted: writes the bytecode caches of both (see the module docstring)
        one_start(
            "shared/runtime/framework.py",
            function,
            {**base, "UPSHIFT_BUS": f"sqlite:///{work}/warm.db"},
            work / "function.log",
        )
        one_start(str(work / "bare.py"), "bare", base, work / "bare.log")
        for i in range(reps):
            fn_env = {**base, "UPSHIFT_BUS": f"sqlite:///{work}/bus{i}.db"}
            fn_s.append(one_start("shared/runtime/framework.py", function, fn_env, work / "function.log"))
            bare_s.append(one_start(str(work / "bare.py"), "bare", base, work / "bare.log"))
    f, b = statistics.median(w for w, _ in fn_s), statistics.median(w for w, _ in bare_s)
    fc, bc = statistics.median(c for _, c in fn_s), statistics.median(c for _, c in bare_s)
    return {
        "function_s": round(f, 3),
        "bare_s": round(b, 3),
        "ratio": round(f / b, 3),
        "function_cpu_s": round(fc, 3),
        "bare_cpu_s": round(bc, 3),
        "cpu_ratio": round(fc / bc, 3),
        "function": function,
        "reps": reps,
        "function_runs_s": [round(w, 3) for w, _ in fn_s],
        "bare_runs_s": [round(w, 3) for w, _ in bare_s],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--function", default="echo", help="the manifest function to deploy")
    args = parser.parse_args()
    print(json.dumps(main(args.reps, args.function)))
