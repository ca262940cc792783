"""Auth failures, token refresh, throttling, retries that end, transport faults, no secrets leaked."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import structlog

from shared.clouds.errors import AuthError, ThrottledError, TransientCloudError
from shared.clouds.huawei import CceClient, TaurusDbClient
from shared.clouds.huawei.auth import AkSkAuth
from shared.clouds.huawei.signer import Signer
from shared.clouds.retry import RetryPolicy, with_retry
from shared.clouds.sessions import close_sessions
from shared.errors import ConfigError
from simulator.huawei import huawei_sim

from .conftest import CCE_ID, CREDS, SR_ID, config

pytestmark = pytest.mark.usefixtures("hw_env")


@pytest.fixture(autouse=True)
async def _sessions():
    yield
    await close_sessions()


async def test_bad_secret_key_is_auth_error(sim, monkeypatch) -> None:
    monkeypatch.setenv("HW_SK", "not-the-right-secret-key")
    with pytest.raises(AuthError) as info:
        await CceClient(config(sim.url)).get_cluster(CCE_ID)
    assert info.value.code == "APIGW.0301" and info.value.status == 401
    assert sim.state.stats.auth_failures["cce"] == 1  # not retried


async def test_skewed_clock_is_refused(sim) -> None:
    class Skewed(Signer):
        def sign(self, method, url, headers, body, *, now=None):
            super().sign(method, url, headers, body, now=datetime.now(UTC) - timedelta(minutes=16))

    from pydantic import SecretStr

    auth = AkSkAuth(Skewed(CREDS.hw_ak, SecretStr(CREDS.hw_sk)), CREDS.hw_project_id)
    with pytest.raises(AuthError, match="15 minutes"):
        await CceClient(config(sim.url), auth=auth).get_cluster(CCE_ID)


async def test_missing_authorization_header(sim) -> None:
    class NoAuth:
        async def apply(self, method, url, headers, body):
            return None

        def invalidate(self) -> bool:
            return False

    with pytest.raises(AuthError, match="missing"):
        await CceClient(config(sim.url), auth=NoAuth()).get_cluster(CCE_ID)


async def test_unset_credential_names_the_variable(sim, monkeypatch) -> None:
    monkeypatch.delenv("HW_SK")
    with pytest.raises(ConfigError, match="HW_SK"):
        CceClient(config(sim.url))


async def test_token_auth_cached_and_refreshed_once_on_401(sim) -> None:
    client = CceClient(config(sim.url, auth="token"))
    await client.get_cluster(CCE_ID)
    await client.get_cluster(CCE_ID)
    assert client.auth.fetches == 1
    huawei_sim(sim.state).tokens.clear()  # every issued token becomes invalid
    assert (await client.get_cluster(CCE_ID)).version
    assert client.auth.fetches == 2


async def test_token_auth_wrong_password(sim, monkeypatch) -> None:
    monkeypatch.setenv("HW_IAM_PASSWORD", "wrong-password-123")
    with pytest.raises(AuthError) as info:
        await CceClient(config(sim.url, auth="token")).get_cluster(CCE_ID)
    assert "wrong-password-123" not in str(info.value) + repr(info.value)


async def test_throttled_retry_after_is_honoured(sim) -> None:
    sim.state.faults.update({"cce": {"error_rates": {"429": 1.0}, "retry_after": 3}})
    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)
        sim.state.faults.clear()  # the vendor recovers while we wait

    client = CceClient(config(sim.url))
    result = await with_retry(
        lambda: client._send("GET", client._cluster(CCE_ID), endpoint_key="c"),
        RetryPolicy(base=0.01, cap=0.05),
        sleep=fake_sleep,
    )
    assert result.status == 200 and slept == [3.0]


async def test_throttled_error_shape(sim) -> None:
    sim.state.faults.update({"cce": {"error_rates": {"429": 1.0}, "retry_after": 2}})
    client = CceClient(config(sim.url))
    with pytest.raises(ThrottledError) as info:
        await client._send("GET", client._cluster(CCE_ID), endpoint_key="c")
    assert info.value.code == "APIGW.0308" and info.value.retry_after == 2.0


async def test_retries_stop_at_the_deadline(sim) -> None:
    sim.state.faults.update({"taurusdb": {"error_rates": {"503": 1.0}, "retry_after": 4}})
    now = [0.0]
    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)
        now[0] += delay

    client = TaurusDbClient(config(sim.url))
    policy = RetryPolicy(attempts=100, base=0.1, cap=1, deadline=10)
    with pytest.raises(TransientCloudError) as info:
        await with_retry(
            lambda: client._send(
                "GET", f"/v3/{CREDS.hw_project_id}/jobs", endpoint_key="j", params={"id": "x"}
            ),
            policy,
            sleep=fake_sleep,
            clock=lambda: now[0],
        )
    assert info.value.status == 503 and not info.value.maybe_applied
    assert slept == [4.0, 4.0] and now[0] <= 10


async def test_reset_and_commit_then_drop(sim) -> None:
    client = TaurusDbClient(config(sim.url))
    sim.state.faults.update({"taurusdb": {"drop_after_commit_rate": 1.0}})
    with pytest.raises(TransientCloudError) as info:
        await client.upgrade_starrocks(SR_ID)
    # applied server side, so the non-idempotent call was not repeated
    assert info.value.maybe_applied and sim.state.stats.calls["taurusdb.upgrade"][SR_ID] == 1
    sim.state.faults.update({"taurusdb": {"reset_rate": 1.0}})
    with pytest.raises(TransientCloudError) as info:
        await client.get_starrocks_instance(SR_ID, SR_ID)
    assert info.value.code == "transport"


async def test_connect_error_is_not_applied() -> None:
    client = CceClient(config("http://127.0.0.1:9"))
    with pytest.raises(TransientCloudError) as info:
        await client._send("GET", "/x", endpoint_key="c")
    assert info.value.maybe_applied is False


async def test_no_secret_in_repr_or_logs(sim, monkeypatch, log_buf) -> None:
    out = log_buf
    try:
        client = CceClient(config(sim.url, auth="token"))
        await client.get_cluster(CCE_ID)
        sim.state.faults.update({"cce": {"error_rates": {"500": 1.0}}})
        with pytest.raises(TransientCloudError) as info:
            await client.get_cluster(CCE_ID)
        token = client.auth._token.get_secret_value()
        aksk = TaurusDbClient(config(sim.url))
        text = out.getvalue() + repr(client) + repr(client.auth) + repr(aksk) + repr(aksk.auth)
        text += str(info.value) + repr(info.value) + json.dumps(client.config.model_dump())
        for secret in (CREDS.hw_sk, CREDS.hw_iam_password, token):
            assert secret not in text
        assert "cloud.retry" in out.getvalue()
    finally:
        structlog.reset_defaults()


@pytest.mark.parametrize("breakage", ["other path", "wrong secret key", "unsigned body"])
async def test_a_broken_signer_is_refused_with_the_gateways_401(sim, monkeypatch, breakage) -> None:
    """Our signer, broken on purpose, against the simulator's own verification over HTTP: the
    request is refused with APIG's documented 401 (APIGW.0301), nothing reaches the service."""
    from pydantic import SecretStr
    from yarl import URL

    from shared.clouds.huawei import signer as signer_module

    original = signer_module.Signer.sign

    def broken(self, method, url, headers, body, *, now=None):
        if breakage == "other path":
            original(
                self,
                method,
                URL.build(scheme=url.scheme, host=url.host, port=url.port, path="/other"),
                headers,
                body,
            )
        elif breakage == "wrong secret key":
            original(
                signer_module.Signer(self.access_key, SecretStr("not-" + CREDS.hw_sk)),
                method,
                url,
                headers,
                body,
            )
        else:
            original(self, method, url, headers, b"")  # the body sent is not the body signed

    monkeypatch.setattr(signer_module.Signer, "sign", broken)
    client = CceClient(config(sim.url))
    with pytest.raises(AuthError) as info:
        if breakage == "unsigned body":
            await client.precheck(CCE_ID, cluster_version="v1.28.5-r0", target_version="v1.29")
        else:
            await client.get_cluster(CCE_ID)
    assert (info.value.status, info.value.code) == (401, "APIGW.0301")
    assert info.value.message == "Incorrect IAM authentication information: verify aksk signature fail"
    assert info.value.request_id  # the gateway's X-Request-Id
    assert sim.state.stats.auth_failures["cce"] == 1
    assert not sim.state.stats.calls  # no handler ran
    monkeypatch.setattr(signer_module.Signer, "sign", original)
    assert (await client.get_cluster(CCE_ID)).version == "v1.28.5-r0"  # the real signer passes
