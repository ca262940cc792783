"""``upshift fleet``: the fleet file, checked and described without starting anything.

* ``upshift fleet check FILE`` — every error of the file, one line each (``file:line: field:
  message``), exit 2; exit 0 and a one-line summary when it loads.
* ``upshift fleet schema`` — the fleet file's JSON Schema, from the same pydantic models that load
  it, for editors to check the file as it is typed. Put this first line in a fleet file
  (yaml-language-server, as the VS Code / Neovim YAML plugins use)::

      # yaml-language-server: $schema=./fleet.schema.json

  after ``upshift fleet schema > fleet.schema.json``. What only loading can tell (an RRULE that
  never occurs, a window no target defines, ids of the wrong form) is ``fleet check``'s to say.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import click

__all__ = ["fleet", "fleet_schema"]


@click.group("fleet")
def fleet() -> None:
    """The fleet file: check it, print its JSON Schema."""


@fleet.command("check")
@click.argument("file", type=click.Path(path_type=Path))
def fleet_check(file: Path) -> None:
    """Validate FILE without starting anything: every error with file:line and field (exit 2)."""
    from shared.domain.fleet import Fleet
    from shared.yamlconf import yaml_model_errors

    if file.is_dir():
        click.echo(f"{file}: is a directory, not a fleet file", err=True)
        raise SystemExit(2)
    loaded, errors = yaml_model_errors(file, Fleet)
    if loaded is None:
        for err in errors:
            click.echo(str(err), err=True)
        click.echo(f"{file}: {len(errors)} error{'s' if len(errors) != 1 else ''}", err=True)
        raise SystemExit(2)
    kinds = Counter(t.kind for t in loaded.targets)
    click.echo(
        f"{file}: ok — {len(loaded.targets)} target{'s' if len(loaded.targets) != 1 else ''} "
        f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}), "
        f"{len(loaded.windows)} window{'s' if len(loaded.windows) != 1 else ''}, "
        f"{len(loaded.policies)} polic{'ies' if len(loaded.policies) != 1 else 'y'}"
    )


def fleet_schema() -> dict[str, object]:
    """The fleet file's JSON Schema (draft 2020-12), as pydantic derives it from :class:`Fleet`."""
    from shared.domain.fleet import Fleet

    schema = Fleet.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "title": "Upshift fleet file",
    }


@fleet.command("schema")
def fleet_schema_command() -> None:
    """Print the fleet file's JSON Schema (for editors: see `upshift fleet check`)."""
    click.echo(json.dumps(fleet_schema(), indent=2, sort_keys=False))
