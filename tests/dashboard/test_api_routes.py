"""The dashboard's JSON API over the real aiohttp app (``build_app`` + the Harness's Runtime).

Runs come from the real ``plan_upgrades``/``start_upgrades``; commands (pause, resume) go through
the real ``chat_command``. Every route: auth (401 with ``WWW-Authenticate`` without a token or
with a wrong one), its filters and pages, 404s, bad values → 400 naming the field. The OpenAPI
document lists every ``/api`` route of the app, its schemas are valid JSON Schema 2020-12, and
the app's real answers validate against the schemas it documents for them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator, FormatChecker

from shared.dashboard.views import RunDetail, RunsPage
from shared.engine.control import control_state
from shared.runtime.server import build_app
from tests.dashboard._fleet import FUNCTIONS, START, TOKENS, bearer, fleet, planned
from tests.functions._planning import Harness, bus_url

READS = ["/api/runs", "/api/runs/{id}", "/api/fleet", "/api/calendar", "/api/approvals", "/api/audit"]


@pytest.fixture(params=["sqlite", "nats"])
def backend(request: pytest.FixtureRequest, tmp_path) -> str:
    return bus_url(request, tmp_path)


@pytest.fixture
def sqlite(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/u.db"


@pytest.fixture(autouse=True)
def _tokens(monkeypatch: pytest.MonkeyPatch, log_buf) -> Any:
    for env, value, _ in TOKENS.values():
        monkeypatch.setenv(env, value)
    yield
    for _, value, _ in TOKENS.values():
        assert value not in log_buf.getvalue(), "a token's value in a log line"


class App:
    def __init__(self, h: Harness, client: TestClient, ids: dict[str, str]) -> None:
        self.h, self.client, self.ids = h, client, ids

    async def get(self, path: str, token: str | None = "board", **params: str) -> tuple[int, Any]:
        headers = bearer(token) if token else {}
        async with self.client.get(path, headers=headers, params=params) as r:
            text = await r.text()
            assert "Traceback" not in text
            return r.status, json.loads(text)

    async def post(
        self, path: str, token: str | None = "ops", body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        sent = {**(bearer(token) if token else {}), **(headers or {})}
        async with self.client.post(path, headers=sent, json=body) as r:
            text = await r.text()
            assert "Traceback" not in text
            return r.status, json.loads(text)


class serving:
    """``async with serving(url) as app``: the Harness, the planned scenario, the app on loopback."""

    def __init__(self, url: str) -> None:
        self.h = Harness(url, fleet(), START, functions=FUNCTIONS)

    async def __aenter__(self) -> App:
        await self.h.__aenter__()
        ids = await planned(self.h)
        self.client = TestClient(TestServer(build_app(self.h.runtime, command_wait_s=30)))
        await self.client.start_server()
        return App(self.h, self.client, ids)

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()
        await self.h.__aexit__(*exc)


def refusal(status: int, payload: Any, expected: int, field: str) -> None:
    assert status == expected, payload
    assert payload["field"] == field and payload["error"], payload


async def test_every_route_needs_a_token_but_the_document(sqlite):
    async with serving(sqlite) as app:
        rid = app.ids["canary"]
        paths = [p.replace("{id}", rid) for p in READS]
        for path in paths:
            for headers in (
                {},
                {"Authorization": "Bearer not-a-token-of-ours"},
                {"Authorization": "Basic eDp5"},
            ):
                async with app.client.get(path, headers=headers) as r:
                    payload = await r.json()
                    assert r.status == 401, (path, payload)
                    assert payload["field"] == "Authorization" and r.headers["WWW-Authenticate"].startswith(
                        "Bearer"
                    )
        for action in ("pause", "resume"):
            status, payload = await app.post(f"/api/runs/{rid}/{action}", token=None)
            refusal(status, payload, 401, "Authorization")
        assert (await control_state(app.h.store.kv))["pauses"] == {}, "nothing done unauthenticated"
        async with app.client.get("/api/openapi.json") as r:
            assert r.status == 200 and (await r.json())["openapi"] == "3.1.0"
        # every role may read, the viewer too
        for token in TOKENS:
            for path in paths:
                status, _ = await app.get(path, token=token)
                assert status == 200, (token, path)


async def test_runs_filters_pages_and_bad_values(backend):
    async with serving(backend) as app:
        status, body = await app.get("/api/runs")
        assert status == 200
        page = RunsPage.model_validate(body)
        assert page.total == 4 and page.counts["running"] == 1 and page.counts["awaiting_approval"] == 1
        assert page.items[0].target == "sr-1"
        assert body["items"][0]["started_at"] == "2026-06-09T12:00:00Z"

        _, body = await app.get("/api/runs", state="planned", window="night")
        assert sorted(r["target"] for r in body["items"]) == ["prod-a", "prod-b"] and body["total"] == 2
        assert body["counts"]["awaiting_approval"] == 1, "counts over the other filters"
        _, body = await app.get("/api/runs", kind="starrocks")
        assert [r["target"] for r in body["items"]] == ["sr-1"]
        _, body = await app.get("/api/runs", wave="1", target="prod-b")
        assert [r["target"] for r in body["items"]] == ["prod-b"]
        _, one = await app.get("/api/runs", per_page="1", page="2")
        _, all_ = await app.get("/api/runs", per_page="200")
        assert one["pages"] == 4 and one["per_page"] == 1 and one["items"] == all_["items"][1:2]
        _, past = await app.get("/api/runs", page="99")
        assert past["items"] == [] and past["total"] == 4

        for params, field in [
            ({"state": "exploded"}, "state"),
            ({"kind": "vax"}, "kind"),
            ({"window": "noon"}, "window"),
            ({"wave": "-1"}, "wave"),
            ({"target": "NOT A TARGET"}, "target"),
            ({"page": "two"}, "page"),
            ({"page": "0"}, "page"),
            ({"per_page": "201"}, "per_page"),
            ({"per_page": "1e3"}, "per_page"),
            ({"order": "asc"}, "order"),
        ]:
            status, payload = await app.get("/api/runs", **params)
            refusal(status, payload, 400, field)


async def test_run_detail_actions_per_token_404_and_bad_ids(sqlite):
    async with serving(sqlite) as app:
        rid = app.ids["canary"]
        seen = {}
        for token in TOKENS:
            status, body = await app.get(f"/api/runs/{rid}", token=token)
            assert status == 200
            seen[token] = RunDetail.model_validate(body).actions
        assert seen == {
            "board": [],
            "ops": ["pause", "cancel"],
            "lead": ["approve", "deny", "pause", "cancel"],
            "other": ["deny", "pause", "cancel"],
        }
        _, body = await app.get(f"/api/runs/{rid}")
        assert body["approval"]["approvers"] == ["leads"] and body["approval"]["need"] == 1
        assert [s["name"] for s in body["stages"]] == ["precheck", "upgrade", "postcheck"]

        status, payload = await app.get("/api/runs/r000000000000000")
        refusal(status, payload, 404, "id")
        for bad in ("R0123456789ABCDE", "r0123", "canary"):
            status, payload = await app.get(f"/api/runs/{bad}")
            refusal(status, payload, 400, "id")
        status, payload = await app.get(f"/api/runs/{rid}", verbose="1")
        refusal(status, payload, 400, "verbose")


async def test_fleet_calendar_approvals_and_their_parameters(sqlite):
    async with serving(sqlite) as app:
        status, body = await app.get("/api/fleet")
        assert status == 200 and [t["name"] for t in body["targets"]] == [
            "canary",
            "prod-a",
            "prod-b",
            "sr-1",
        ]
        assert body["targets"][0]["next_window"]["opens_at"] == "2026-06-10T00:00:00Z"
        status, body = await app.get("/api/approvals")
        assert status == 200 and [a["run"] for a in body["items"]] == [app.ids["canary"]]
        status, body = await app.get("/api/calendar", days="2", tz="America/New_York")
        assert status == 200 and body["days"] == 2 and body["tz"] == "America/New_York"
        opens = body["windows"][0]["occurrences"][0]["opens"]
        assert opens == {
            "utc": "2026-06-10T00:00:00Z",
            "local": "2026-06-10T02:00:00+02:00",
            "viewer": "2026-06-09T20:00:00-04:00",
        }
        _, default = await app.get("/api/calendar")
        assert default["days"] == 14 and len(default["windows"][0]["occurrences"]) == 14

        for path, params, field in [
            ("/api/calendar", {"days": "0"}, "days"),
            ("/api/calendar", {"days": "32"}, "days"),
            ("/api/calendar", {"days": "a week"}, "days"),
            ("/api/calendar", {"tz": "Europe/Atlantis"}, "tz"),
            ("/api/calendar", {"tz": "/etc/passwd"}, "tz"),
            ("/api/fleet", {"target": "canary"}, "target"),
            ("/api/fleet", {"live": "maybe"}, "live"),
            ("/api/approvals", {"page": "1"}, "page"),
        ]:
            status, payload = await app.get(path, **params)
            refusal(status, payload, 400, field)


async def test_pause_and_resume_a_runs_target_through_chat_command(backend):
    async with serving(backend) as app:
        rid = app.ids["prod-a"]
        status, body = await app.post(f"/api/runs/{rid}/pause", token="board")
        assert status == 403 and body["outcome"] == "refused", body
        assert (await control_state(app.h.store.kv))["pauses"] == {}

        key = {"Idempotency-Key": "pause-prod-a-1"}
        status, body = await app.post(f"/api/runs/{rid}/pause", body={"user": "alice"}, headers=key)
        assert status == 200 and body["outcome"] == "ok", body
        assert body["entry"]["text"] == "pause prod-a" and body["entry"]["actor"] == "token:ops"
        again_status, again = await app.post(f"/api/runs/{rid}/pause", body={"user": "alice"}, headers=key)
        assert again_status == 200 and again["id"] == body["id"], "a retry is the same command"
        pauses = (await control_state(app.h.store.kv))["pauses"]
        assert list(pauses) == ["prod-a"]

        _, detail = await app.get(f"/api/runs/{rid}", token="ops")
        assert (
            detail["paused_by"] == "prod-a"
            and "resume" in detail["actions"]
            and "pause" not in detail["actions"]
        )
        _, viewer = await app.get(f"/api/runs/{rid}", token="board")
        assert viewer["paused_by"] == "prod-a" and viewer["actions"] == []

        status, body = await app.post(f"/api/runs/{rid}/resume")
        assert status == 200 and body["outcome"] == "ok" and body["entry"]["text"] == "resume prod-a", body
        assert (await control_state(app.h.store.kv))["pauses"] == {}
        status, body = await app.post(f"/api/runs/{rid}/resume")
        assert status == 409 and body["outcome"] == "invalid", "nothing left to resume"

        status, payload = await app.post("/api/runs/r000000000000000/pause")
        refusal(status, payload, 404, "id")
        status, payload = await app.post("/api/runs/not-a-run/resume")
        refusal(status, payload, 400, "id")
        status, payload = await app.post(f"/api/runs/{rid}/pause", body={"reason": "x"})
        refusal(status, payload, 400, "reason")
        status, payload = await app.post(f"/api/runs/{rid}/pause", body=["user"])
        refusal(status, payload, 400, "body")
        _, audit = await app.get("/api/audit", run=rid)
        assert audit["entries"] == [], "pause/resume are of the target's scope, not of the run"
        _, audit = await app.get("/api/audit")
        assert [e["text"] for e in audit["entries"]] == [
            "pause prod-a",
            "pause prod-a",
            "resume prod-a",
            "resume prod-a",
        ]


def _validator(doc: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator({**schema, "components": doc["components"]}, format_checker=FormatChecker())


async def test_the_openapi_document_lists_every_route_and_the_answers_fit_it(sqlite):
    async with serving(sqlite) as app:
        async with app.client.get("/api/openapi.json") as r:
            doc = await r.json()
        assert doc["openapi"] == "3.1.0" and doc["info"]["title"]
        assert doc["components"]["securitySchemes"]["bearer"] == {
            "type": "http",
            "scheme": "bearer",
            "description": "a token of the fleet file's auth.tokens",
        }
        routes = {
            (route.resource.canonical, route.method.lower())
            for route in app.client.app.router.routes()
            if route.resource is not None
            and route.resource.canonical.startswith("/api")
            and route.method != "HEAD"
        }
        documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
        assert routes == documented
        for (path, method), op in ((k, doc["paths"][k[0]][k[1]]) for k in sorted(documented)):
            assert op["responses"] and op["operationId"], (path, method)
            assert op["security"] == ([] if path == "/api/openapi.json" else [{"bearer": []}])
            if path != "/api/openapi.json":
                assert {"401", "200"} <= set(op["responses"]), path
            for p in op["parameters"]:
                Draft202012Validator.check_schema(p["schema"])
                assert p["in"] != "path" or (p["required"] and "{" + p["name"] + "}" in path)
        for schema in doc["components"]["schemas"].values():
            Draft202012Validator.check_schema(schema)
        # every $ref points into the components
        text = json.dumps(doc)
        for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
            assert (
                ref.startswith("#/components/schemas/")
                and ref.rsplit("/", 1)[1] in doc["components"]["schemas"]
            )

        def answer(path: str, method: str, status: int) -> Draft202012Validator:
            schema = doc["paths"][path][method]["responses"][str(status)]["content"]["application/json"][
                "schema"
            ]
            return _validator(doc, schema)

        rid = app.ids["canary"]
        real = {
            "/api/runs": "/api/runs",
            "/api/runs/{id}": f"/api/runs/{rid}",
            "/api/fleet": "/api/fleet",
            "/api/calendar": "/api/calendar",
            "/api/approvals": "/api/approvals",
            "/api/audit": "/api/audit",
        }
        await app.post(f"/api/runs/{app.ids['prod-a']}/pause")  # an audit entry to list
        for documented_path, path in real.items():
            status, body = await app.get(path, **({"tz": "Asia/Seoul"} if "calendar" in path else {}))
            assert status == 200
            answer(documented_path, "get", 200).validate(body)
            assert list(answer(documented_path, "get", 200).iter_errors({"surprise": 1})), (
                "the schema can refuse"
            )
            status, body = await app.get(path, token=None)
            answer(documented_path, "get", 401).validate(body)
        status, body = await app.get("/api/runs", state="nope")
        answer("/api/runs", "get", 400).validate(body)
        status, body = await app.get("/api/runs/r000000000000000")
        answer("/api/runs/{id}", "get", 404).validate(body)
        status, body = await app.post(f"/api/runs/{app.ids['prod-b']}/pause")
        answer("/api/runs/{id}/pause", "post", status).validate(body)
        status, body = await app.post(f"/api/runs/{app.ids['prod-b']}/resume", token="board")
        assert status == 403
        answer("/api/runs/{id}/resume", "post", 403).validate(body)
        # the request bodies documented are the routes' own
        deny = doc["paths"]["/api/runs/{id}/deny"]["post"]["requestBody"]
        assert deny["required"] is True
        body_schema = _validator(doc, deny["content"]["application/json"]["schema"])
        assert not list(body_schema.iter_errors({"reason": "no"}))
        assert list(body_schema.iter_errors({"reasn": "no"})), "unknown fields are refused, as the route does"
        runs_params = {p["name"]: p for p in doc["paths"]["/api/runs"]["get"]["parameters"]}
        assert set(runs_params) == {"state", "kind", "window", "wave", "target", "page", "per_page"}
        assert runs_params["per_page"]["schema"]["maximum"] == 200
        assert "awaiting_approval" in runs_params["state"]["schema"]["enum"]
