"""Simulated IAM: ``POST /v3/auth/tokens`` (password identity, project scope) -> ``X-Subject-Token``
(cloud-apis.md, "Token auth": 201, the token in the response header, valid 24 h). The body must
name the ``password`` method; errors are IAM's ``{"error": {"code", "message", "title"}}``."""

from __future__ import annotations

import secrets
import time

from aiohttp import web

from simulator.core import SimState, json_error, route
from simulator.huawei._common import fault_body, huawei_sim, iso, read_json

__all__ = ["register"]


def _unauthorized(message: str) -> web.Response:
    return json_error(401, {"error": {"code": 401, "message": message, "title": "Unauthorized"}})


def register(app: web.Application, state: SimState) -> None:
    sim = huawei_sim(state)
    state.error_bodies["iam"] = fault_body(
        lambda status, code, msg: {"error": {"code": status, "message": msg, "title": code}}
    )

    async def issue(request: web.Request) -> web.Response:
        doc = await read_json(request) or {}
        try:
            auth = doc["auth"]
            if "password" not in auth["identity"]["methods"]:
                raise KeyError("methods")
            user = auth["identity"]["password"]["user"]
            name, password, domain = user["name"], user["password"], user["domain"]["name"]
            project = auth["scope"]["project"]["id"]
        except (KeyError, TypeError):
            return json_error(
                400,
                {"error": {"code": 400, "message": "The request body is invalid.", "title": "Bad Request"}},
            )
        creds = state.creds
        if (name, password, domain) != (creds.hw_iam_user, creds.hw_iam_password, creds.hw_iam_domain):
            state.stats.auth_failures["iam"] += 1
            return _unauthorized("The username or password is wrong.")
        if project != creds.hw_project_id:
            state.stats.auth_failures["iam"] += 1
            return _unauthorized("The project does not exist or is not accessible.")
        token = "MII" + secrets.token_urlsafe(48)
        now = time.time()
        sim.tokens[token] = now + sim.token_ttl
        state.count("iam.tokens", name)
        body = {
            "token": {
                "methods": ["password"],
                "expires_at": iso(now + sim.token_ttl),
                "issued_at": iso(now),
                "project": {"id": project, "name": "sim-project"},
                "user": {"name": name, "domain": {"name": domain}},
            }
        }
        return web.json_response(body, status=201, headers={"X-Subject-Token": token})

    route(app, state, "iam", "POST", "/v3/auth/tokens", issue, op="iam.tokens")
