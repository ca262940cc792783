"""Deploying one function loads that function's module and nothing of the others (DESIGN §9:
cold start), both as a plain import and through the functions-framework target module; and
track_job, following a job, loads that one stage's module (found through the manifest)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.engine.calls import call_for, stage_handlers
from shared.runtime.manifest import load_manifest, resolve_handler

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = load_manifest(resolve=False)
#: Every function's own module, from the manifest.
OWN = {name: f.handler.rsplit(".", 1)[0] for name, f in MANIFEST.functions.items()}


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith('functions'))))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def others(name: str, loaded: set[str]) -> set[str]:
    return {m for m in loaded if m in OWN.values() and m != OWN[name]}


@pytest.mark.parametrize(
    "name", ["cce_upgrade", "kafka_precheck", "starrocks_upgrade", "advance", "track_job", "plan_upgrades"]
)
def test_importing_one_function_loads_no_other(name: str) -> None:
    loaded = loaded_after(f"import {OWN[name]}")
    assert OWN[name] in loaded
    assert not others(name, loaded), others(name, loaded)


def test_a_functions_framework_target_loads_only_its_function() -> None:
    loaded = loaded_after("import shared.runtime.framework as t\nt.oceanbase_upgrade")
    assert OWN["oceanbase_upgrade"] in loaded
    assert not others("oceanbase_upgrade", loaded), others("oceanbase_upgrade", loaded)


def test_track_job_finds_every_stage_call_of_the_manifest() -> None:
    stage_functions = {
        (f.events[0].event.where["kind"], f.events[0].event.where["stage"]): name
        for name, f in MANIFEST.functions.items()
        if f.handler.startswith("functions.stages.")
    }
    for (kind, stage), name in stage_functions.items():
        call = call_for(kind, stage)
        assert call is not None and (call.kind, call.stage) == (kind, stage), name
    assert call_for("cce", "no_such_stage") is None and call_for("nope", "upgrade") is None


def test_track_job_loads_only_the_stage_module_of_its_job() -> None:
    code = (
        "import functions.track_job\n"
        "from shared.engine.calls import call_for\n"
        "assert call_for('oceanbase', 'upgrade') is not None"
    )
    loaded = loaded_after(code)
    assert OWN["track_job"] in loaded and OWN["oceanbase_upgrade"] in loaded
    assert not others("track_job", loaded - {OWN["oceanbase_upgrade"]}), others("track_job", loaded)


def test_every_stage_functions_where_names_its_own_call() -> None:
    """The harness runs the functions as serverless.yml wires them; this pins that wiring: a
    stage function's ``where`` is exactly its own module's CALL (a wrong ``where:`` fails here)."""
    for name, f in MANIFEST.functions.items():
        if not f.handler.startswith("functions.stages."):
            continue
        [trigger] = f.events
        assert trigger.event is not None, name
        call = resolve_handler(f"{OWN[name]}.CALL")
        assert trigger.event.where == {"kind": call.kind, "stage": call.stage}, name
        assert stage_handlers()[(call.kind, call.stage)] == (name, f.handler)
