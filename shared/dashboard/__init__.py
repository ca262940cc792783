"""The web surface of ``upshift serve``: the operator dashboard and its JSON API (issue 12).

* :mod:`shared.dashboard.views` — the read models every page and every ``GET /api/…`` route
  shows (pydantic models built from the store, the fleet and the domain clock's ``now``);
* :mod:`shared.dashboard.api` — the JSON API routes (``/api/runs``, ``/api/runs/{id}``,
  ``/api/fleet``, ``/api/calendar``, ``/api/approvals``, the pause/resume POSTs) and
  ``GET /api/openapi.json``;
* :mod:`shared.dashboard.openapi` — the OpenAPI 3.1 document, generated from the views' models;
* :mod:`shared.dashboard.pages`, :mod:`shared.dashboard.session`, :mod:`shared.dashboard.sse`,
  ``templates/`` and ``static/`` — the server-rendered HTML pages, their sign-in session and
  live updates (every asset vendored here, no CDN); :mod:`shared.dashboard.marks` — the cheap
  change mark of the store those live updates poll.

Nothing here calls a vendor: a page or an API read costs store reads only.
"""

__all__: list[str] = []
