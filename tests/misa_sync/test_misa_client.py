"""MisaClient against the real simulator process: tokens, error classes, save and find.

Retries, the rate limit and the circuit breaker are off here (one request per call) so
each test sees MISA's answer as it is; tests/misa_sync/test_resilience_client.py covers them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import structlog

from misa_sync.misa_client import (
    MisaBusinessError,
    MisaClient,
    MisaError,
    MisaTokenError,
    MisaTransientError,
    account_object_id_for,
)
from misa_sync.resilience import CircuitBreaker, RetryPolicy, TokenBucket
from tests.fixtures.misa_simulator import MisaSimulator


def make_client(sim: MisaSimulator, **kwargs: Any) -> MisaClient:
    kwargs.setdefault("retry", RetryPolicy(max_attempts=1))
    kwargs.setdefault("rate_limiter", TokenBucket(0, 1))
    kwargs.setdefault("circuit_breaker", CircuitBreaker(1000, 1.0))
    return MisaClient(sim.base_url, sim.app_id, sim.access_code, sim.org_company_code, **kwargs)


@pytest.fixture
async def client(misa_sim: MisaSimulator) -> AsyncIterator[MisaClient]:
    async with make_client(misa_sim) as c:
        yield c


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


def account_object(
    *,
    customer_code: str = "KH000001",
    misa_code: str | None = None,
    tax_code: str = "0101234567",
    contact_name: str = "Nguyễn Thị Lan",
    customer_id: str | None = None,
) -> dict[str, Any]:
    """An account object as the sync sends it (the mapping itself is tested in test_mapping)."""
    return {
        "dictionary_type": 1,
        "account_object_id": account_object_id_for(customer_id or str(uuid.uuid4())),
        "account_object_code": misa_code or customer_code,
        "account_object_name": "Công ty TNHH Hoa Sen",
        "account_object_type": 0,
        "is_customer": True,
        "is_vendor": False,
        "is_employee": False,
        "inactive": False,
        "company_tax_code": tax_code,
        "address": "12 Lý Thường Kiệt",
        "country": "Việt Nam",
        "tel": "+84901234567",
        "email_address": "lan@example.vn",
        "contact_name": contact_name,
        "state": 1,
    }


# -- tokens ------------------------------------------------------------------------------


async def test_connect_caches_the_token(client: MisaClient, sim_http: httpx.AsyncClient) -> None:
    expires_at = await client.connect()
    assert client.token_expires_at == expires_at

    await client.get_dictionary(0, 10)
    await client.get_dictionary(0, 10)

    assert await calls(sim_http) == {"connect": 1, "get_dictionary": 2}


async def test_first_call_connects_by_itself(
    client: MisaClient, sim_http: httpx.AsyncClient
) -> None:
    assert client.token_expires_at is None
    items, sync_time = await client.get_dictionary(0, 10)
    assert items == [] and sync_time
    assert (await calls(sim_http))["connect"] == 1


async def test_reconnects_once_on_expired_token(
    client: MisaClient, sim_http: httpx.AsyncClient
) -> None:
    await client.connect()
    await arm(sim_http, "expired_token", count=1)

    await client.get_dictionary(0, 10)

    assert await calls(sim_http) == {"connect": 2, "get_dictionary": 2}


async def test_reconnects_when_the_token_really_expired(
    client: MisaClient, sim_http: httpx.AsyncClient
) -> None:
    await client.connect()
    await sim_http.post("/_sim/tokens/expire")

    await client.save_account_objects([account_object()])

    assert await calls(sim_http) == {"connect": 2, "save_dictionary": 2}


async def test_reconnects_when_the_simulator_forgot_the_token(
    client: MisaClient, misa_sim: MisaSimulator, sim_http: httpx.AsyncClient
) -> None:
    await client.connect()
    misa_sim.reset()  # every token is now unknown: InvalidToken

    await client.get_dictionary(0, 10)

    assert (await calls(sim_http))["connect"] == 1  # counted since the reset


async def test_token_error_right_after_reconnect_is_not_retried_again(
    client: MisaClient, sim_http: httpx.AsyncClient
) -> None:
    await client.connect()
    await arm(sim_http, "expired_token", count=2)

    with pytest.raises(MisaTokenError) as caught:
        await client.get_dictionary(0, 10)

    assert caught.value.code == "ExpiredToken"
    assert isinstance(caught.value, MisaTransientError)
    assert await calls(sim_http) == {"connect": 2, "get_dictionary": 2}


async def test_renews_a_token_near_its_expiry(
    misa_sim: MisaSimulator, sim_http: httpx.AsyncClient
) -> None:
    await sim_http.post("/_sim/config", json={"token_ttl_s": 120})
    # 120 s left is inside the 300 s renewal margin: every call gets a fresh token.
    async with make_client(misa_sim, token_renew_margin_s=300) as client:
        await client.get_dictionary(0, 10)
        await client.get_dictionary(0, 10)
    assert await calls(sim_http) == {"connect": 2, "get_dictionary": 2}

    async with make_client(misa_sim, token_renew_margin_s=60) as client:
        await client.get_dictionary(0, 10)
        await client.get_dictionary(0, 10)
    assert (await calls(sim_http))["connect"] == 3


# -- error classification ----------------------------------------------------------------


async def test_http_500_is_transient(client: MisaClient, sim_http: httpx.AsyncClient) -> None:
    await arm(sim_http, "http_500")
    with pytest.raises(MisaTransientError) as caught:
        await client.get_dictionary(0, 10)
    assert caught.value.status_code == 500
    assert not isinstance(caught.value, MisaBusinessError)
    await client.get_dictionary(0, 10)  # the fault is spent


async def test_http_500_on_connect_is_transient(
    client: MisaClient, sim_http: httpx.AsyncClient
) -> None:
    await arm(sim_http, "http_500")
    with pytest.raises(MisaTransientError):
        await client.connect()


async def test_rate_limit_is_transient_with_retry_after(
    client: MisaClient, sim_http: httpx.AsyncClient
) -> None:
    await client.connect()
    await arm(sim_http, "rate_limit", retry_after_s=7)

    with pytest.raises(MisaTransientError) as caught:
        await client.save_account_objects([account_object()])

    assert caught.value.status_code == 429
    assert caught.value.retry_after == 7
    assert (await sim_http.get("/_sim/account-objects")).json()["items"] == []


async def test_timeout_is_transient(misa_sim: MisaSimulator, sim_http: httpx.AsyncClient) -> None:
    await sim_http.post("/_sim/config", json={"timeout_delay_s": 1})
    async with make_client(misa_sim, timeout_s=0.2) as client:
        await client.connect()
        await arm(sim_http, "timeout")
        with pytest.raises(MisaTransientError) as caught:
            await client.get_dictionary(0, 10)
    assert caught.value.code == "Timeout"


async def test_connection_refused_is_transient(misa_sim: MisaSimulator) -> None:
    async with MisaClient(
        "http://127.0.0.1:9", "a", "b", "c", timeout_s=2, retry=RetryPolicy(max_attempts=1)
    ) as client:
        with pytest.raises(MisaTransientError) as caught:
            await client.connect()
    assert caught.value.code == "ConnectionError"


async def test_expired_token_fault_is_absorbed(
    client: MisaClient, sim_http: httpx.AsyncClient
) -> None:
    await arm(sim_http, "expired_token")
    saved = await client.save_account_objects([account_object()])
    assert [s["account_object_code"] for s in saved] == ["KH000001"]


async def test_wrong_credentials_are_a_business_error(
    misa_sim: MisaSimulator, sim_http: httpx.AsyncClient
) -> None:
    # Default policy (retries on): a refused credential is still asked only once.
    async with MisaClient(
        misa_sim.base_url, "not-our-app", misa_sim.access_code, misa_sim.org_company_code
    ) as client:
        with pytest.raises(MisaBusinessError) as caught:
            await client.get_dictionary(0, 10)
    assert caught.value.code == "InvalidAppID"
    assert await calls(sim_http) == {"connect": 1}


async def test_refused_duplicate_code_is_a_business_error(
    client: MisaClient, sim_http: httpx.AsyncClient
) -> None:
    await sim_http.post("/_sim/config", json={"duplicate_code_mode": "invalid_param"})
    await sim_http.post("/_sim/account-objects", json={"account_object_code": "KH000001"})

    with pytest.raises(MisaBusinessError) as caught:
        await client.save_account_objects([account_object()])

    assert caught.value.code == "InvalidParam"
    assert isinstance(caught.value, MisaError)
    assert not isinstance(caught.value, MisaTransientError)


# -- save and find -----------------------------------------------------------------------


async def test_save_then_find_by_code(client: MisaClient) -> None:
    obj = account_object(customer_code="KH000042")

    [saved] = await client.save_account_objects([obj])
    found = await client.find_customer_by_code("KH000042")

    assert saved["account_object_id"] == obj["account_object_id"]
    assert found is not None
    assert found["account_object_id"] == obj["account_object_id"]
    assert found["account_object_name"] == "Công ty TNHH Hoa Sen"
    assert found["company_tax_code"] == "0101234567"
    assert await client.find_customer_by_code(" kh000042 ") == found
    assert await client.find_customer_by_code("KH999999") is None


async def test_saving_twice_is_idempotent(client: MisaClient, sim_http: httpx.AsyncClient) -> None:
    obj = account_object(customer_id="c-1")
    await client.save_account_objects([obj])
    await client.save_account_objects([obj | {"tel": "+84900000000"}])

    items = (await sim_http.get("/_sim/account-objects")).json()["items"]
    assert len(items) == 1 and items[0]["tel"] == "+84900000000"


async def test_find_pages_through_and_skips_non_customers(
    client: MisaClient, misa_sim: MisaSimulator
) -> None:
    misa_sim.reset(seed=True)  # a vendor NCC00001 and an employee NV00001
    objects = [account_object(customer_code=f"KH{i:06d}") for i in range(7)]
    await client.save_account_objects(objects)

    last = await client.find_customer_by_code("KH000006", page_size=3)

    assert last is not None and last["account_object_id"] == objects[6]["account_object_id"]
    assert await client.find_customer_by_code("NCC00001", page_size=3) is None
    items, sync_time = await client.get_dictionary(0, 100)
    assert len(items) == 9 and sync_time


async def test_upserted_existing_code_answers_misa_own_id(
    client: MisaClient, sim_http: httpx.AsyncClient
) -> None:
    existing = await sim_http.post("/_sim/account-objects", json={"account_object_code": "KH0007"})
    existing_id = existing.json()["account_object_id"]

    [saved] = await client.save_account_objects([account_object(misa_code="KH0007")])

    assert saved["account_object_id"] == existing_id
    assert saved["account_object_code"] == "KH0007"


async def test_save_nothing_makes_no_call(client: MisaClient, sim_http: httpx.AsyncClient) -> None:
    assert await client.save_account_objects([]) == []
    assert await calls(sim_http) == {}


async def test_the_other_path_prefix_works_too(misa_sim: MisaSimulator) -> None:
    async with make_client(misa_sim, sync_prefix="/api/sync/actopen") as client:
        await client.save_account_objects([account_object()])
        assert await client.find_customer_by_code("KH000001") is not None


async def test_personal_data_never_reaches_the_logs(client: MisaClient) -> None:
    obj = account_object(contact_name="Trần Văn Bình")
    with structlog.testing.capture_logs() as logs:
        await client.save_account_objects([obj])
        await client.find_customer_by_code("KH000001")
        with pytest.raises(MisaError):
            await client.save_account_objects([{**obj, "account_object_id": "not-a-uuid"}])

    assert logs, "the client logs its calls"
    outcomes = [(e["operation"], e["outcome"]) for e in logs if e["event"] == "misa.call"]
    assert ("save_dictionary", "ok") in outcomes
    assert ("save_dictionary", "business_error") in outcomes
    for entry in (e for e in logs if e["event"] == "misa.call"):
        assert {"status", "attempt", "duration_ms", "error_code"} <= entry.keys()
    text = repr(logs)
    for secret in (
        "+84901234567",
        "lan@example.vn",
        "0101234567",
        "ims-local-access-code",
        "Trần Văn Bình",
        "Hoa Sen",
    ):
        assert secret not in text


# -- duplicate account_object_code, as the client sees each simulator mode ---------------


async def set_duplicate_mode(http: httpx.AsyncClient, mode: str) -> None:
    response = await http.post("/_sim/config", json={"duplicate_code_mode": mode})
    assert response.json()["duplicate_code_mode"] == mode


async def seed_existing(http: httpx.AsyncClient, code: str) -> str:
    """A customer already in MISA under ``code``, named "Đã có"; answers its id."""
    response = await http.post(
        "/_sim/account-objects", json={"account_object_code": code, "account_object_name": "Đã có"}
    )
    object_id: str = response.json()["account_object_id"]
    return object_id


async def test_duplicate_code_upsert_updates_the_existing_object(
    client: MisaClient, sim_http: httpx.AsyncClient
) -> None:
    await set_duplicate_mode(sim_http, "upsert")
    existing_id = await seed_existing(sim_http, "KH000001")

    [saved] = await client.save_account_objects([account_object()])

    assert saved["account_object_id"] == existing_id
    customers = await client.find_customers(codes=["KH000001"])
    assert [(c["account_object_id"], c["account_object_name"]) for c in customers] == [
        (existing_id, "Công ty TNHH Hoa Sen")
    ]


async def test_duplicate_code_invalid_param_is_a_business_error_not_retried(
    misa_sim: MisaSimulator, sim_http: httpx.AsyncClient
) -> None:
    await set_duplicate_mode(sim_http, "invalid_param")
    existing_id = await seed_existing(sim_http, "KH000001")

    # Retries on: a business error must still be sent only once.
    async with make_client(misa_sim, retry=RetryPolicy(max_attempts=5, base_delay_s=0.01)) as c:
        with pytest.raises(MisaBusinessError) as caught:
            await c.save_account_objects([account_object()])

    assert caught.value.code == "InvalidParam"
    assert (await calls(sim_http))["save_dictionary"] == 1
    items = (await sim_http.get("/_sim/account-objects")).json()["items"]
    assert [(o["account_object_id"], o["account_object_name"]) for o in items] == [
        (existing_id, "Đã có")
    ]


async def test_duplicate_code_duplicate_leaves_two_objects_with_the_code(
    client: MisaClient, sim_http: httpx.AsyncClient
) -> None:
    await set_duplicate_mode(sim_http, "duplicate")
    existing_id = await seed_existing(sim_http, "KH000001")
    obj = account_object()

    [saved] = await client.save_account_objects([obj])

    assert saved["account_object_id"] == obj["account_object_id"]
    items, _sync_time = await client.get_dictionary(0, 100)
    same_code = [o["account_object_id"] for o in items if o["account_object_code"] == "KH000001"]
    assert sorted(same_code) == sorted([existing_id, obj["account_object_id"]])
    assert len(await client.find_customers(codes=["KH000001"])) == 2


# -- paging and incremental reads --------------------------------------------------------


async def test_iter_dictionary_pages_until_a_short_page(
    client: MisaClient, misa_sim: MisaSimulator, sim_http: httpx.AsyncClient
) -> None:
    misa_sim.reset(seed=True)  # a vendor and an employee
    await client.save_account_objects(
        [account_object(customer_code=f"KH{i:06d}") for i in range(4)]
    )

    pages = [page async for page in client.iter_dictionary(page_size=2)]

    assert [(p.skip, len(p.items)) for p in pages] == [(0, 2), (2, 2), (4, 2), (6, 0)]
    assert all(p.last_sync_time for p in pages)
    assert (await calls(sim_http))["get_dictionary"] == 4
    # Vendors and employees come mixed in; the read answers everything, each once.
    read = await client.read_dictionary(page_size=2)
    assert len(read.items) == 6
    assert len({o["account_object_id"] for o in read.items}) == 6
    assert sum(1 for o in read.items if o["is_customer"]) == 4


async def test_page_size_is_clamped_to_misa_maximum(
    client: MisaClient, sim_http: httpx.AsyncClient
) -> None:
    await client.save_account_objects(
        [account_object(customer_code=f"KH{i:06d}") for i in range(101)]
    )
    pages = [page async for page in client.iter_dictionary(page_size=1000)]
    assert [len(p.items) for p in pages] == [100, 1]


async def test_incremental_read_with_last_sync_time(
    client: MisaClient, sim_http: httpx.AsyncClient
) -> None:
    old = "2024-01-01T09:00:00.000000+07:00"
    for code in ("KH-OLD-1", "KH-OLD-2"):
        await sim_http.post(
            "/_sim/account-objects", json={"account_object_code": code, "modified_date": old}
        )
    full = await client.read_dictionary()
    assert {o["account_object_code"] for o in full.items} == {"KH-OLD-1", "KH-OLD-2"}
    assert full.last_sync_time

    [old_one] = [o for o in full.items if o["account_object_code"] == "KH-OLD-1"]
    await client.save_account_objects(
        [{**old_one, "account_object_name": "Đổi tên"}, account_object(customer_code="KH-NEW")]
    )

    changed = await client.read_dictionary(full.last_sync_time)
    assert sorted(o["account_object_code"] for o in changed.items) == ["KH-NEW", "KH-OLD-1"]
    assert changed.last_sync_time and changed.last_sync_time >= full.last_sync_time
    nothing = await client.read_dictionary("2999-01-01 00:00:00")
    assert nothing.items == []


async def test_find_customers_by_code_or_tax_code(
    client: MisaClient, misa_sim: MisaSimulator
) -> None:
    misa_sim.reset(seed=True)  # the vendor NCC00001 has tax code 0100000001
    await client.save_account_objects(
        [
            account_object(customer_code="KH000001", tax_code="0101234567"),
            account_object(customer_code="KH000002", tax_code="0309999999"),
            account_object(customer_code="KH000003", tax_code="0100000001"),
        ]
    )

    found = await client.find_customers(
        codes=[" kh000001 ", "NCC00001"], tax_codes=["0309 999 999", "0100000001"], page_size=2
    )

    assert [o["account_object_code"] for o in found] == ["KH000001", "KH000002", "KH000003"]
    assert await client.find_customers() == []
    assert await client.find_customers(codes=["KH999999"], tax_codes=["  "]) == []


# -- ids -------------------------------------------------------------------------------


def test_account_object_id_is_a_stable_uuid5_per_customer() -> None:
    first = account_object_id_for("3f2b6c1e-0000-4000-8000-000000000001")
    assert first == account_object_id_for("3f2b6c1e-0000-4000-8000-000000000001")
    assert first != account_object_id_for("3f2b6c1e-0000-4000-8000-000000000002")
    assert uuid.UUID(first).version == 5


async def test_calls_are_counted_by_operation_and_outcome(
    client: MisaClient, sim_http: httpx.AsyncClient
) -> None:
    """/metrics: ims_misa_calls_total{operation, outcome} and the circuit's state."""
    from prometheus_client import REGISTRY

    def counted(outcome: str) -> float:
        labels = {"operation": "get_dictionary", "outcome": outcome}
        return REGISTRY.get_sample_value("ims_misa_calls_total", labels) or 0.0

    await client.connect()  # the fault below then hits the call itself
    ok, transient = counted("ok"), counted("transient")
    await arm(sim_http, "http_500")
    with pytest.raises(MisaTransientError):
        await client.get_dictionary(0, 10)
    await client.get_dictionary(0, 10)
    assert (counted("ok"), counted("transient")) == (ok + 1, transient + 1)
    assert REGISTRY.get_sample_value("ims_misa_circuit_open") == 0.0
