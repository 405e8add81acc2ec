"""MisaClient's retries, rate limit and circuit breaker against the real simulator process.

Waits are kept small and assertions lean on request counts (the simulator's
``/_sim/stats``) and ordering; wall-clock bounds are one-sided and generous.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from misa_sync.misa_client import (
    MisaBusinessError,
    MisaCircuitOpenError,
    MisaClient,
    MisaTokenError,
    MisaTransientError,
)
from misa_sync.resilience import CircuitBreaker, CircuitState, RetryPolicy, TokenBucket
from misa_sync.settings import MisaSyncSettings
from tests.fixtures.misa_simulator import MisaSimulator, start_misa_simulator

#: Quick retries so a test with several of them stays short.
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay_s=0.01, max_delay_s=5.0)


def make_client(sim: MisaSimulator, **kwargs: Any) -> MisaClient:
    kwargs.setdefault("retry", FAST_RETRY)
    kwargs.setdefault("rate_limiter", TokenBucket(0, 1))
    kwargs.setdefault("circuit_breaker", CircuitBreaker(100, 1.0))
    return MisaClient(sim.base_url, sim.app_id, sim.access_code, sim.org_company_code, **kwargs)


@pytest.fixture
async def sim_http(misa_sim: MisaSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=misa_sim.base_url, timeout=10) as http:
        yield http


async def calls(http: httpx.AsyncClient) -> dict[str, int]:
    counts: dict[str, int] = (await http.get("/_sim/stats")).json()["calls"]
    return counts


async def arm(http: httpx.AsyncClient, mode: str, count: int = 1, **extra: Any) -> None:
    response = await http.post("/_sim/faults", json={"mode": mode, "count": count, **extra})
    assert response.status_code == 200, response.text


def customer(code: str = "KH000001") -> dict[str, Any]:
    return {
        "account_object_id": str(uuid.uuid5(uuid.NAMESPACE_URL, code)),
        "account_object_code": code,
        "account_object_name": "Khách hàng thử",
        "account_object_type": 1,
        "is_customer": True,
        "is_vendor": False,
        "is_employee": False,
    }


def call_events(logs: list[dict[str, Any]], operation: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == "misa.call" and e["operation"] == operation]


# -- retries -----------------------------------------------------------------------------


async def test_http_500_is_retried_then_succeeds(
    misa_sim: MisaSimulator, sim_http: httpx.AsyncClient
) -> None:
    async with make_client(misa_sim) as client:
        await client.connect()
        await arm(sim_http, "http_500", count=2)
        with structlog.testing.capture_logs() as logs:
            items, sync_time = await client.get_dictionary(0, 10)

    assert items == [] and sync_time
    assert await calls(sim_http) == {"connect": 1, "get_dictionary": 3}
    events = call_events(logs, "get_dictionary")
    assert [(e["attempt"], e["outcome"], e["status"]) for e in events] == [
        (1, "transient", 500),
        (2, "transient", 500),
        (3, "ok", 200),
    ]
    assert all(isinstance(e["duration_ms"], int) for e in events)
    assert [e["attempt"] for e in logs if e["event"] == "misa.retry"] == [1, 2]


async def test_attempts_per_call_are_bounded(
    misa_sim: MisaSimulator, sim_http: httpx.AsyncClient
) -> None:
    async with make_client(misa_sim, retry=RetryPolicy(3, 0.01, 1.0)) as client:
        await client.connect()
        await arm(sim_http, "http_500", count=10)
        with pytest.raises(MisaTransientError) as caught:
            await client.save_account_objects([customer()])

    assert caught.value.status_code == 500
    assert (await calls(sim_http))["save_dictionary"] == 3


async def test_connect_is_retried_too(misa_sim: MisaSimulator, sim_http: httpx.AsyncClient) -> None:
    await arm(sim_http, "http_500", count=1)
    async with make_client(misa_sim) as client:
        await client.connect()
    assert await calls(sim_http) == {"connect": 2}


async def test_timeout_is_retried_and_the_save_stays_single(
    misa_sim: MisaSimulator, sim_http: httpx.AsyncClient
) -> None:
    await sim_http.post("/_sim/config", json={"timeout_delay_s": 2})
    async with make_client(misa_sim, timeout_s=0.3) as client:
        await client.connect()
        await arm(sim_http, "timeout", count=1)
        [saved] = await client.save_account_objects([customer()])

    assert saved["account_object_code"] == "KH000001"
    assert (await calls(sim_http))["save_dictionary"] == 2
    # The timed-out save was applied; its retry upserted the same id.
    items = (await sim_http.get("/_sim/account-objects")).json()["items"]
    assert [o["account_object_code"] for o in items] == ["KH000001"]


async def test_lost_connections_are_retried_then_reported(misa_sim: MisaSimulator) -> None:
    retry = RetryPolicy(3, 0.01, 1.0)
    async with MisaClient("http://127.0.0.1:9", "a", "b", "c", retry=retry) as client:
        with structlog.testing.capture_logs() as logs, pytest.raises(MisaTransientError) as caught:
            await client.connect()
    assert caught.value.code == "ConnectionError"
    assert [e["attempt"] for e in call_events(logs, "connect")] == [1, 2, 3]


async def test_rate_limit_waits_for_retry_after_seconds(
    misa_sim: MisaSimulator, sim_http: httpx.AsyncClient
) -> None:
    async with make_client(misa_sim) as client:
        await client.connect()
        await arm(sim_http, "rate_limit", count=1, retry_after_s=1)
        started = time.monotonic()
        with structlog.testing.capture_logs() as logs:
            await client.get_dictionary(0, 10)
        elapsed = time.monotonic() - started

    assert elapsed >= 0.9  # the back-off alone would have been ~10 ms
    assert [e["delay_s"] for e in logs if e["event"] == "misa.retry"] == [1.0]
    assert (await calls(sim_http))["get_dictionary"] == 2


async def test_rate_limit_waits_for_retry_after_as_an_http_date(
    misa_sim: MisaSimulator, sim_http: httpx.AsyncClient
) -> None:
    async with make_client(misa_sim) as client:
        await client.connect()
        # Whole seconds, rounded up by the simulator: the date lands 1 to 2 s from now.
        await arm(sim_http, "rate_limit", count=1, retry_after_s=1, retry_after_http_date=True)
        started = time.monotonic()
        await client.get_dictionary(0, 10)
        elapsed = time.monotonic() - started

    assert elapsed >= 0.9
    assert (await calls(sim_http))["get_dictionary"] == 2


async def test_a_retry_after_beyond_the_cap_goes_back_to_the_caller(
    misa_sim: MisaSimulator, sim_http: httpx.AsyncClient
) -> None:
    async with make_client(misa_sim, retry=RetryPolicy(4, 0.01, 2.0)) as client:
        await client.connect()
        await arm(sim_http, "rate_limit", count=1, retry_after_s=120)
        started = time.monotonic()
        with pytest.raises(MisaTransientError) as caught:
            await client.get_dictionary(0, 10)

    assert time.monotonic() - started < 5
    assert caught.value.status_code == 429 and caught.value.retry_after == 120
    assert (await calls(sim_http))["get_dictionary"] == 1


async def test_expired_token_is_renewed_once_and_the_call_succeeds(
    misa_sim: MisaSimulator, sim_http: httpx.AsyncClient
) -> None:
    async with make_client(misa_sim) as client:
        await client.connect()
        await arm(sim_http, "expired_token", count=1)
        await client.save_account_objects([customer()])
    assert await calls(sim_http) == {"connect": 2, "save_dictionary": 2}


async def test_a_second_token_rejection_is_an_error_not_a_loop(
    misa_sim: MisaSimulator, sim_http: httpx.AsyncClient
) -> None:
    async with make_client(misa_sim, retry=RetryPolicy(5, 0.01, 1.0)) as client:
        await client.connect()
        await arm(sim_http, "expired_token", count=10)
        with pytest.raises(MisaTokenError) as caught:
            await client.get_dictionary(0, 10)
        assert client.circuit.state is CircuitState.CLOSED  # MISA answered: it is up

    assert caught.value.code == "ExpiredToken"
    assert await calls(sim_http) == {"connect": 2, "get_dictionary": 2}


async def test_business_errors_are_never_retried(
    misa_sim: MisaSimulator, sim_http: httpx.AsyncClient
) -> None:
    async with make_client(misa_sim) as client:
        with pytest.raises(MisaBusinessError) as caught:
            await client.save_account_objects([{**customer(), "account_object_id": "nope"}])
    assert caught.value.code == "InvalidParam"
    assert (await calls(sim_http))["save_dictionary"] == 1


# -- circuit breaker ---------------------------------------------------------------------


async def test_circuit_opens_fails_fast_half_opens_and_closes(
    misa_sim: MisaSimulator, sim_http: httpx.AsyncClient
) -> None:
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=0.5)
    async with make_client(
        misa_sim, retry=RetryPolicy(max_attempts=1), circuit_breaker=breaker
    ) as client:
        await client.connect()
        await arm(sim_http, "http_500", count=3)
        for _ in range(3):
            with pytest.raises(MisaTransientError) as failed:
                await client.get_dictionary(0, 10)
            assert not isinstance(failed.value, MisaCircuitOpenError)

        snapshot = client.circuit
        assert snapshot.state is CircuitState.OPEN and snapshot.failures == 3
        assert snapshot.opened_at is not None

        # Open: refused without a request reaching MISA.
        for _ in range(5):
            with pytest.raises(MisaCircuitOpenError) as refused:
                await client.save_account_objects([customer()])
            assert refused.value.code == "CircuitOpen"
            assert refused.value.retry_after is not None and refused.value.retry_after <= 0.5
            assert refused.value.retry_at >= snapshot.opened_at
        assert await calls(sim_http) == {"connect": 1, "get_dictionary": 3}

        await asyncio.sleep(0.6)
        await client.save_account_objects([customer()])  # the probe, and it works

        assert client.circuit.state is CircuitState.CLOSED
        assert client.circuit.failures == 0
    assert (await calls(sim_http))["save_dictionary"] == 1


async def test_a_failing_probe_opens_the_circuit_again(
    misa_sim: MisaSimulator, sim_http: httpx.AsyncClient
) -> None:
    breaker = CircuitBreaker(failure_threshold=2, cooldown_s=0.3)
    async with make_client(
        misa_sim, retry=RetryPolicy(max_attempts=1), circuit_breaker=breaker
    ) as client:
        await client.connect()
        await arm(sim_http, "http_500", count=3)
        for _ in range(2):
            with pytest.raises(MisaTransientError):
                await client.get_dictionary(0, 10)
        await asyncio.sleep(0.4)

        with pytest.raises(MisaTransientError) as probe:
            await client.get_dictionary(0, 10)
        assert not isinstance(probe.value, MisaCircuitOpenError)  # it did reach MISA
        assert client.circuit.state is CircuitState.OPEN
        with pytest.raises(MisaCircuitOpenError):
            await client.get_dictionary(0, 10)
        assert (await calls(sim_http))["get_dictionary"] == 3

        await asyncio.sleep(0.4)
        await client.get_dictionary(0, 10)
        assert client.circuit.state is CircuitState.CLOSED


async def test_only_one_probe_while_half_open(
    misa_sim: MisaSimulator, sim_http: httpx.AsyncClient
) -> None:
    await sim_http.post("/_sim/config", json={"timeout_delay_s": 0.5})
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=0.2)
    async with make_client(
        misa_sim, retry=RetryPolicy(max_attempts=1), circuit_breaker=breaker, timeout_s=5
    ) as client:
        await client.connect()
        await arm(sim_http, "http_500", count=1)
        with pytest.raises(MisaTransientError):
            await client.get_dictionary(0, 10)
        await asyncio.sleep(0.3)

        # The probe is slow (held 0.5 s); a call meanwhile must not become a second probe.
        await arm(sim_http, "timeout", count=1)
        probe = asyncio.create_task(client.get_dictionary(0, 10))
        await asyncio.sleep(0.1)
        assert client.circuit.state is CircuitState.HALF_OPEN
        with pytest.raises(MisaCircuitOpenError):
            await client.get_dictionary(0, 10)
        await probe

    assert client.circuit.state is CircuitState.CLOSED
    assert (await calls(sim_http))["get_dictionary"] == 2


async def test_the_circuit_bounds_retries_within_a_call(
    misa_sim: MisaSimulator, sim_http: httpx.AsyncClient
) -> None:
    breaker = CircuitBreaker(failure_threshold=2, cooldown_s=30)
    async with make_client(
        misa_sim, retry=RetryPolicy(10, 0.01, 1.0), circuit_breaker=breaker
    ) as client:
        await client.connect()
        await arm(sim_http, "http_500", count=10)
        with pytest.raises(MisaCircuitOpenError) as caught:
            await client.get_dictionary(0, 10)

    # The worker can treat it as "retry later", at the time the circuit may close.
    assert isinstance(caught.value, MisaTransientError)
    assert caught.value.retry_after is not None and 29 < caught.value.retry_after <= 30
    assert (await calls(sim_http))["get_dictionary"] == 2


async def test_an_outage_then_recovery_with_state_kept_across_the_restart(
    tmp_path: Path,
) -> None:
    state_file = tmp_path / "misa.json"
    sim = start_misa_simulator(state_file)
    breaker = CircuitBreaker(failure_threshold=2, cooldown_s=0.3)
    client = make_client(
        sim, retry=RetryPolicy(max_attempts=1), circuit_breaker=breaker, timeout_s=2
    )
    try:
        async with client:
            await client.save_account_objects([customer("KH000001")])
            sim.stop()  # MISA is down

            for _ in range(2):
                with pytest.raises(MisaTransientError) as down:
                    await client.get_dictionary(0, 10)
                assert down.value.code == "ConnectionError"
            with pytest.raises(MisaCircuitOpenError):
                await client.get_dictionary(0, 10)

            sim = start_misa_simulator(state_file, port=sim.port)  # back, same address
            await asyncio.sleep(0.4)
            items, _sync_time = await client.get_dictionary(0, 10)

            assert client.circuit.state is CircuitState.CLOSED
            assert [o["account_object_code"] for o in items if o["is_customer"]] == ["KH000001"]
            # The token issued before the restart still works: no new connect.
            stats = httpx.get(f"{sim.base_url}/_sim/stats", timeout=10).json()["calls"]
            assert stats == {"get_dictionary": 1}
    finally:
        sim.stop()


# -- client-side rate limit --------------------------------------------------------------


async def test_the_rate_limit_spaces_a_burst_of_concurrent_calls(
    misa_sim: MisaSimulator, sim_http: httpx.AsyncClient
) -> None:
    bucket = TokenBucket(rate_per_s=2.0, burst=2)
    async with make_client(misa_sim, rate_limiter=bucket) as client:
        await client.connect()  # spends one token
        await asyncio.sleep(0.6)  # back to a full bucket
        started = time.monotonic()
        with structlog.testing.capture_logs() as logs:
            tasks = [asyncio.create_task(client.get_dictionary(0, 10)) for _ in range(6)]
            await asyncio.sleep(0.3)
            seen_early = (await calls(sim_http)).get("get_dictionary", 0)
            await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started

    # Two go at once (the burst); the other four follow at 2/s: 0.5, 1.0, 1.5, 2.0 s.
    assert 2 <= seen_early <= 4
    assert (await calls(sim_http))["get_dictionary"] == 6
    assert elapsed >= 1.5
    waits = sorted(e["rate_limit_wait_ms"] for e in call_events(logs, "get_dictionary"))
    assert waits[:2] == [0, 0] and all(w > 0 for w in waits[2:])
    assert len(set(waits[2:])) == 4  # each waiter got its own slot


async def test_the_rate_limit_is_shared_by_every_call_of_the_client(
    misa_sim: MisaSimulator,
) -> None:
    bucket = TokenBucket(rate_per_s=4.0, burst=1)
    async with make_client(misa_sim, rate_limiter=bucket) as client:
        started = time.monotonic()
        await asyncio.gather(
            client.get_dictionary(0, 10),  # connects first: 2 tokens
            client.save_account_objects([customer("KH000001")]),
            client.save_account_objects([customer("KH000002")]),
        )
        elapsed = time.monotonic() - started
    # Four requests at 4/s with a burst of 1: at least three quarter-second gaps.
    assert elapsed >= 0.6


# -- settings ----------------------------------------------------------------------------


def test_client_from_settings_uses_the_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISA_SYNC_MISA_RATE_LIMIT_PER_S", "7.5")
    monkeypatch.setenv("MISA_SYNC_MISA_CIRCUIT_FAILURE_THRESHOLD", "9")
    settings = MisaSyncSettings(
        misa_retry_max_attempts=6, misa_rate_limit_burst=3, misa_circuit_cooldown_s=12
    )
    client = MisaClient.from_settings(settings)

    assert (client.rate_limiter.rate_per_s, client.rate_limiter.burst) == (7.5, 3)
    assert client.circuit_breaker.failure_threshold == 9
    assert client.circuit_breaker.cooldown_s == 12
    assert client.circuit.state is CircuitState.CLOSED
    assert "ims-local-access-code" not in repr(client)
