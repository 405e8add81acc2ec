"""MisaClient against the real simulator process: tokens, error classes, save and find."""

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
    customer_to_account_object,
)
from tests.fixtures.misa_simulator import MisaSimulator


def make_client(sim: MisaSimulator, **kwargs: Any) -> MisaClient:
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


def ims_customer(**overrides: Any) -> dict[str, Any]:
    customer = {
        "id": str(uuid.uuid4()),
        "customer_code": "KH000001",
        "full_name": "Nguyễn Thị Lan",
        "phone": "+84901234567",
        "email": "lan@example.vn",
        "address": "12 Lý Thường Kiệt",
        "company_name": "Công ty TNHH Hoa Sen",
        "tax_code": "0101234567",
        "contact_name": None,
        "misa_code": None,
        "credit_days": 30,
        "note": "Giao giờ hành chính",
        "status": "active",
    }
    return customer | overrides


def account_object(**overrides: Any) -> dict[str, Any]:
    customer = ims_customer(**overrides)
    return customer_to_account_object(
        customer, account_object_id=account_object_id_for(customer["id"])
    )


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
    async with MisaClient("http://127.0.0.1:9", "a", "b", "c", timeout_s=2) as client:
        with pytest.raises(MisaTransientError) as caught:
            await client.connect()
    assert caught.value.code == "ConnectionError"


async def test_expired_token_fault_is_absorbed(
    client: MisaClient, sim_http: httpx.AsyncClient
) -> None:
    await arm(sim_http, "expired_token")
    saved = await client.save_account_objects([account_object()])
    assert [s["account_object_code"] for s in saved] == ["KH000001"]


async def test_wrong_credentials_are_a_business_error(misa_sim: MisaSimulator) -> None:
    async with MisaClient(
        misa_sim.base_url, "not-our-app", misa_sim.access_code, misa_sim.org_company_code
    ) as client:
        with pytest.raises(MisaBusinessError) as caught:
            await client.get_dictionary(0, 10)
    assert caught.value.code == "InvalidAppID"


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
    customer = ims_customer()
    obj = customer_to_account_object(customer, account_object_id=account_object_id_for("c-1"))
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
    text = repr(logs)
    for secret in ("+84901234567", "lan@example.vn", "0101234567", "ims-local-access-code"):
        assert secret not in text


# -- mapping -----------------------------------------------------------------------------


def test_account_object_id_is_a_stable_uuid5_per_customer() -> None:
    first = account_object_id_for("3f2b6c1e-0000-4000-8000-000000000001")
    assert first == account_object_id_for("3f2b6c1e-0000-4000-8000-000000000001")
    assert first != account_object_id_for("3f2b6c1e-0000-4000-8000-000000000002")
    assert uuid.UUID(first).version == 5


def test_company_customer_maps_to_an_organisation_account_object() -> None:
    customer = ims_customer(
        province_name="Thành phố Hà Nội",
        ward_name="Phường Hoàn Kiếm",
        delivery_addresses=[
            {"address": "Kho 1", "is_default": False},
            {"address": "Kho 2", "is_default": True},
        ],
        invoice_profiles=[{"buyer_name": "Kế toán Lan", "email": "ketoan@example.vn"}],
    )

    obj = customer_to_account_object(customer, account_object_id="id-1", branch_id="branch-1")

    assert obj == {
        "dictionary_type": 1,
        "account_object_id": "id-1",
        "account_object_code": "KH000001",
        "account_object_name": "Công ty TNHH Hoa Sen",
        "account_object_type": 0,
        "is_customer": True,
        "is_vendor": False,
        "is_employee": False,
        "inactive": False,
        "company_tax_code": "0101234567",
        "address": "12 Lý Thường Kiệt",
        "country": "Việt Nam",
        "tel": "+84901234567",
        "email_address": "lan@example.vn",
        "contact_name": "Nguyễn Thị Lan",
        "due_time": 30,
        "description": "Giao giờ hành chính",
        "receive_account": "131",
        "pay_account": "331",
        "state": 1,
        "province_or_city": "Thành phố Hà Nội",
        "ward_or_commune": "Phường Hoàn Kiếm",
        "shipping_address": "Kho 2",
        "einvoice_contact_name": "Kế toán Lan",
        "einvoice_contact_email": "ketoan@example.vn",
        "branch_id": "branch-1",
    }


def test_person_without_company_maps_to_an_individual() -> None:
    customer = ims_customer(
        company_name=None,
        tax_code="",
        contact_name="Chị Lan (người liên hệ)",
        misa_code="KH-MISA-9",
        status="inactive",
        credit_days=None,
        email=None,
    )

    obj = customer_to_account_object(customer, account_object_id="id-2")

    assert obj["account_object_type"] == 1
    assert obj["account_object_name"] == "Nguyễn Thị Lan"
    assert obj["account_object_code"] == "KH-MISA-9"  # an existing MISA code wins
    assert obj["contact_name"] == "Chị Lan (người liên hệ)"
    assert obj["inactive"] is True
    assert obj["company_tax_code"] is None and obj["email_address"] is None
    assert obj["due_time"] is None
    assert "branch_id" not in obj and "shipping_address" not in obj


@pytest.mark.parametrize(
    "overrides",
    [
        {"customer_code": None, "misa_code": None},
        {"customer_code": "  ", "misa_code": ""},
        {"full_name": None, "company_name": None},
    ],
)
def test_mapping_refuses_a_customer_without_code_or_name(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        customer_to_account_object(ims_customer(**overrides), account_object_id="id")
