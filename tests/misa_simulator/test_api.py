"""The MISA simulator over real HTTP: MISA's API, its envelope, faults and persistence."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from misa_simulator.settings import DuplicateCodeMode, Settings
from tests.fixtures.misa_simulator import MisaSimulator, start_misa_simulator

VN = timezone(timedelta(hours=7))
CONNECT = "/api/oauth/actopen/connect"
APIR = "/apir/sync/actopen"
API = "/api/sync/actopen"
ENVELOPE_KEYS = {"Success", "ErrorCode", "ErrorMessage", "Data", "CustomData"}


@pytest.fixture
async def http(misa_sim: MisaSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=misa_sim.base_url, timeout=10) as client:
        yield client


def connect_body(sim: MisaSimulator, **overrides: Any) -> dict[str, Any]:
    return {
        "app_id": sim.app_id,
        "access_code": sim.access_code,
        "org_company_code": sim.org_company_code,
        **overrides,
    }


async def token_for(http: httpx.AsyncClient, sim: MisaSimulator) -> str:
    response = await http.post(CONNECT, json=connect_body(sim))
    token: str = data_of(response)["access_token"]
    return token


def data_of(response: httpx.Response) -> Any:
    """Assert a successful envelope and decode its JSON-string Data."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == ENVELOPE_KEYS
    assert body["Success"] is True, body
    assert body["ErrorCode"] is None
    assert body["ErrorMessage"] == ""
    assert isinstance(body["Data"], str)
    return json.loads(body["Data"])


def error_of(response: httpx.Response) -> str:
    """Assert a business error (HTTP 200, Success false) and answer its ErrorCode."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == ENVELOPE_KEYS
    assert body["Success"] is False
    assert body["Data"] is None
    assert isinstance(body["ErrorMessage"], str) and body["ErrorMessage"]
    code: str = body["ErrorCode"]
    return code


def customer(code: str, name: str = "Khách hàng", **extra: Any) -> dict[str, Any]:
    return {
        "dictionary_type": 1,
        "account_object_id": str(uuid.uuid4()),
        "account_object_code": code,
        "account_object_name": name,
        "account_object_type": 1,
        "is_customer": True,
        "is_vendor": False,
        "is_employee": False,
        "state": 1,
        **extra,
    }


async def save(
    http: httpx.AsyncClient,
    token: str,
    items: list[dict[str, Any]],
    prefix: str = APIR,
    *,
    read_timeout: float = 10.0,
) -> httpx.Response:
    return await http.post(
        f"{prefix}/save_dictionary",
        json={"app_id": "ims-local-app", "org_company_code": "ims-local", "dictionary": items},
        headers={"X-MISA-AccessToken": token},
        timeout=read_timeout,
    )


async def get(
    http: httpx.AsyncClient, token: str, prefix: str = APIR, **body: Any
) -> httpx.Response:
    payload = {"data_type": 1, "branch_id": None, "skip": 0, "take": 100, "app_id": "ims-local-app"}
    return await http.post(
        f"{prefix}/get_dictionary",
        json=payload | body,
        headers={"X-MISA-AccessToken": token},
    )


async def stored(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await http.get("/_sim/account-objects")
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


# -- connect -----------------------------------------------------------------------------


async def test_connect_issues_a_12_hour_token_in_a_json_string(
    http: httpx.AsyncClient, misa_sim: MisaSimulator
) -> None:
    before = datetime.now(VN)
    response = await http.post(CONNECT, json=connect_body(misa_sim))

    data = data_of(response)
    assert response.json()["CustomData"] is None
    assert set(data) >= {"access_token", "expired_time", "expired_time_ticks", "tenant_code"}
    assert isinstance(data["access_token"], str) and len(data["access_token"]) > 20
    expires = datetime.fromisoformat(data["expired_time"])
    assert expires.utcoffset() == timedelta(hours=7)
    assert abs(expires - (before + timedelta(hours=12))) < timedelta(seconds=30)
    # .NET ticks of the same +07:00 wall-clock moment.
    from_ticks = datetime(1, 1, 1) + timedelta(microseconds=data["expired_time_ticks"] // 10)
    assert abs(from_ticks - expires.replace(tzinfo=None)) < timedelta(milliseconds=1)


async def test_each_connect_gives_a_new_token(
    http: httpx.AsyncClient, misa_sim: MisaSimulator
) -> None:
    assert await token_for(http, misa_sim) != await token_for(http, misa_sim)


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"app_id": "someone-else"}, "InvalidAppID"),
        ({"app_id": None}, "InvalidAppID"),
        ({"access_code": "wrong"}, "InvalidParam"),
        ({"org_company_code": "other-company"}, "InvalidParam"),
    ],
)
async def test_connect_refuses_wrong_credentials(
    http: httpx.AsyncClient, misa_sim: MisaSimulator, overrides: dict[str, Any], code: str
) -> None:
    response = await http.post(CONNECT, json=connect_body(misa_sim, **overrides))
    assert error_of(response) == code


@pytest.mark.parametrize("prefix", [APIR, API])
async def test_sync_calls_need_a_valid_token(http: httpx.AsyncClient, prefix: str) -> None:
    no_header = await http.post(f"{prefix}/get_dictionary", json={"data_type": 1})
    assert error_of(no_header) == "InvalidToken"
    assert error_of(await get(http, "made-up-token", prefix)) == "InvalidToken"
    assert error_of(await save(http, "made-up-token", [customer("KH1")], prefix)) == "InvalidToken"


async def test_sync_call_with_another_app_id_is_refused(
    http: httpx.AsyncClient, misa_sim: MisaSimulator
) -> None:
    token = await token_for(http, misa_sim)
    assert error_of(await get(http, token, app_id="other-app")) == "InvalidAppID"


# -- save_dictionary / get_dictionary ----------------------------------------------------


@pytest.mark.parametrize("prefix", [APIR, API])
async def test_save_then_get_in_pages(
    http: httpx.AsyncClient, misa_sim: MisaSimulator, prefix: str
) -> None:
    token = await token_for(http, misa_sim)
    items = [customer(f"KH{i:06d}", f"Khách {i}") for i in range(5)]

    saved = data_of(await save(http, token, items, prefix))

    assert [s["account_object_code"] for s in saved] == [i["account_object_code"] for i in items]
    assert all(s["dictionary_type"] == 1 and "modified_date" in s for s in saved)
    pages = []
    for skip in (0, 2, 4, 6):
        response = await get(http, token, prefix, skip=skip, take=2)
        pages.append(data_of(response))
        sync_time = json.loads(response.json()["CustomData"])["LastSyncTime"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", sync_time)
    assert [len(p) for p in pages] == [2, 2, 1, 0]
    codes = [o["account_object_code"] for page in pages for o in page]
    assert codes == [f"KH{i:06d}" for i in range(5)]
    assert {o["account_object_name"] for o in pages[0]} == {"Khách 0", "Khách 1"}


async def test_take_above_100_is_accepted(http: httpx.AsyncClient, misa_sim: MisaSimulator) -> None:
    token = await token_for(http, misa_sim)
    data_of(await save(http, token, [customer(f"KH{i:06d}") for i in range(120)]))
    assert len(data_of(await get(http, token, take=1000))) == 120


async def test_account_objects_mix_customers_vendors_and_employees(
    http: httpx.AsyncClient, misa_sim: MisaSimulator
) -> None:
    misa_sim.reset(seed=True)
    token = await token_for(http, misa_sim)
    data_of(await save(http, token, [customer("KH000001")]))

    objects = data_of(await get(http, token))

    assert any(o["is_vendor"] and not o["is_customer"] for o in objects)
    assert any(o["is_employee"] and not o["is_customer"] for o in objects)
    assert [o["account_object_code"] for o in objects if o["is_customer"]] == ["KH000001"]
    assert all(o["dictionary_type"] == 1 for o in objects)


async def test_other_known_data_types_are_empty_unknown_ones_refused(
    http: httpx.AsyncClient, misa_sim: MisaSimulator
) -> None:
    token = await token_for(http, misa_sim)
    assert data_of(await get(http, token, data_type=2)) == []
    assert error_of(await get(http, token, data_type=99)) == "InvalidParam"


async def test_last_sync_time_returns_only_objects_changed_since(
    http: httpx.AsyncClient, misa_sim: MisaSimulator
) -> None:
    old = {**customer("KH000001"), "modified_date": "2024-01-01T09:00:00.000000+07:00"}
    assert (await http.post("/_sim/account-objects", json=old)).status_code == 201
    token = await token_for(http, misa_sim)
    fresh = customer("KH000002")
    data_of(await save(http, token, [fresh]))

    changed = data_of(await get(http, token, last_sync_time="2025-01-01 00:00:00"))
    assert [o["account_object_code"] for o in changed] == ["KH000002"]
    response = await get(http, token)
    assert len(data_of(response)) == 2

    # The LastSyncTime handed back, passed in again, still catches later changes.
    sync_time = json.loads(response.json()["CustomData"])["LastSyncTime"]
    data_of(await save(http, token, [{**fresh, "account_object_name": "Đổi tên"}]))
    after = data_of(await get(http, token, last_sync_time=sync_time))
    assert [(o["account_object_code"], o["account_object_name"]) for o in after] == [
        ("KH000002", "Đổi tên")
    ]
    assert data_of(await get(http, token, last_sync_time="2999-01-01 00:00:00")) == []


async def test_save_upserts_by_account_object_id(
    http: httpx.AsyncClient, misa_sim: MisaSimulator
) -> None:
    token = await token_for(http, misa_sim)
    first = customer("KH000001", "Tên cũ", tel="0901000001")
    [created] = data_of(await save(http, token, [first]))

    [updated] = data_of(await save(http, token, [{**first, "account_object_name": "Tên mới"}]))

    everything = await stored(http)
    assert len(everything) == 1
    assert updated["account_object_id"] == first["account_object_id"]
    assert updated["account_object_name"] == "Tên mới"
    assert updated["created_date"] == created["created_date"]
    assert "state" not in updated  # an instruction, not data


# -- duplicate account_object_code -------------------------------------------------------


async def _save_duplicate(
    http: httpx.AsyncClient, sim: MisaSimulator, mode: str
) -> tuple[dict[str, Any], dict[str, Any], httpx.Response]:
    response = await http.post("/_sim/config", json={"duplicate_code_mode": mode})
    assert response.json()["duplicate_code_mode"] == mode
    token = await token_for(http, sim)
    original = customer("KH000001", "Đã có trong MISA")
    data_of(await save(http, token, [original]))
    newcomer = customer("KH000001", "Khách mới")
    return original, newcomer, await save(http, token, [newcomer])


async def test_duplicate_code_upsert_updates_the_existing_object(
    http: httpx.AsyncClient, misa_sim: MisaSimulator
) -> None:
    original, _newcomer, response = await _save_duplicate(http, misa_sim, "upsert")

    [saved] = data_of(response)
    assert saved["account_object_id"] == original["account_object_id"]
    assert saved["account_object_name"] == "Khách mới"
    assert [o["account_object_id"] for o in await stored(http)] == [original["account_object_id"]]


async def test_duplicate_code_upsert_is_the_default(
    http: httpx.AsyncClient, misa_sim: MisaSimulator
) -> None:
    assert (await http.get("/_sim/config")).json()["duplicate_code_mode"] == "upsert"


async def test_duplicate_code_invalid_param_refuses_the_whole_batch(
    http: httpx.AsyncClient, misa_sim: MisaSimulator
) -> None:
    original, newcomer, response = await _save_duplicate(http, misa_sim, "invalid_param")
    assert error_of(response) == "InvalidParam"
    assert "KH000001" in response.json()["ErrorMessage"]

    token = await token_for(http, misa_sim)
    batch = [customer("KH000002"), {**newcomer, "account_object_code": "kh000001"}]
    assert error_of(await save(http, token, batch)) == "InvalidParam"
    assert [o["account_object_id"] for o in await stored(http)] == [original["account_object_id"]]


async def test_duplicate_code_duplicate_stores_a_second_object(
    http: httpx.AsyncClient, misa_sim: MisaSimulator
) -> None:
    original, newcomer, response = await _save_duplicate(http, misa_sim, "duplicate")

    [saved] = data_of(response)
    assert saved["account_object_id"] == newcomer["account_object_id"]
    everything = await stored(http)
    assert [o["account_object_code"] for o in everything] == ["KH000001", "KH000001"]
    assert {o["account_object_id"] for o in everything} == {
        original["account_object_id"],
        newcomer["account_object_id"],
    }


# -- faults ------------------------------------------------------------------------------


async def arm(http: httpx.AsyncClient, mode: str, count: int = 1, **extra: Any) -> None:
    response = await http.post("/_sim/faults", json={"mode": mode, "count": count, **extra})
    assert response.status_code == 200, response.text
    assert response.json()["remaining"] == count


async def test_http_500_fault_hits_the_next_n_calls_then_clears(
    http: httpx.AsyncClient, misa_sim: MisaSimulator
) -> None:
    await arm(http, "http_500", count=2)

    first = await http.post(CONNECT, json=connect_body(misa_sim))
    assert (await http.get("/_sim/account-objects")).status_code == 200  # controls unaffected
    second = await get(http, "any-token", API)

    assert first.status_code == second.status_code == 500
    assert first.json()["ErrorCode"] == "Exception"
    await token_for(http, misa_sim)
    assert (await http.get("/_sim/faults")).json() == {
        "mode": None,
        "remaining": 0,
        "retry_after_s": 1,
        "retry_after_http_date": False,
    }


async def test_rate_limit_fault_answers_429_with_retry_after(
    http: httpx.AsyncClient, misa_sim: MisaSimulator
) -> None:
    token = await token_for(http, misa_sim)
    await arm(http, "rate_limit", retry_after_s=7)

    response = await get(http, token)

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.json()["Success"] is False
    data_of(await get(http, token))


async def test_rate_limit_fault_can_send_retry_after_as_an_http_date(
    http: httpx.AsyncClient, misa_sim: MisaSimulator
) -> None:
    token = await token_for(http, misa_sim)
    await arm(http, "rate_limit", retry_after_s=5, retry_after_http_date=True)

    response = await get(http, token)

    assert response.status_code == 429
    when = parsedate_to_datetime(response.headers["Retry-After"])
    # Whole seconds, rounded up: never earlier than asked, never much later.
    wait_s = (when - datetime.now(UTC)).total_seconds()
    assert 4 <= wait_s <= 7
    assert (await http.get("/_sim/faults")).json()["retry_after_http_date"] is True


async def test_expired_token_fault_spares_connect(
    http: httpx.AsyncClient, misa_sim: MisaSimulator
) -> None:
    await arm(http, "expired_token", count=1)

    token = await token_for(http, misa_sim)  # connect carries no token: not affected
    assert error_of(await save(http, token, [customer("KH000001")])) == "ExpiredToken"
    data_of(await save(http, token, [customer("KH000001")]))


async def test_timeout_fault_holds_the_answer_for_the_configured_delay(
    http: httpx.AsyncClient, misa_sim: MisaSimulator
) -> None:
    await http.post("/_sim/config", json={"timeout_delay_s": 0.4})
    token = await token_for(http, misa_sim)
    await arm(http, "timeout", count=2)

    started = time.monotonic()
    data_of(await save(http, token, [customer("KH000001")]))
    assert time.monotonic() - started >= 0.4

    # A caller that gives up early never sees the answer, but the write happened.
    with pytest.raises(httpx.ReadTimeout):
        await save(http, token, [customer("KH000002")], read_timeout=0.1)
    assert {o["account_object_code"] for o in await stored(http)} == {"KH000001", "KH000002"}


async def test_faults_reject_bad_requests(http: httpx.AsyncClient) -> None:
    assert (await http.post("/_sim/faults", json={"mode": "boom", "count": 1})).status_code == 422
    assert (await http.post("/_sim/faults", json={"mode": "timeout", "count": -1})).status_code == (
        422
    )


# -- token expiry ------------------------------------------------------------------------


async def test_token_expires_after_its_lifetime(
    http: httpx.AsyncClient, misa_sim: MisaSimulator
) -> None:
    await http.post("/_sim/config", json={"token_ttl_s": 0.3})
    token = await token_for(http, misa_sim)
    data_of(await get(http, token))

    await asyncio.sleep(0.4)

    assert error_of(await get(http, token)) == "ExpiredToken"
    data_of(await get(http, await token_for(http, misa_sim)))


async def test_sim_can_expire_every_token_at_once(
    http: httpx.AsyncClient, misa_sim: MisaSimulator
) -> None:
    token = await token_for(http, misa_sim)
    assert (await http.post("/_sim/tokens/expire")).json() == {"expired": 1}
    assert error_of(await get(http, token)) == "ExpiredToken"


# -- test controls -----------------------------------------------------------------------


async def test_sim_account_objects_store_as_if_always_there(
    http: httpx.AsyncClient, misa_sim: MisaSimulator
) -> None:
    response = await http.post(
        "/_sim/account-objects", json={"account_object_code": "KH-OLD", "company_tax_code": "1"}
    )
    assert response.status_code == 201
    created = response.json()
    assert created["is_customer"] is True
    uuid.UUID(created["account_object_id"])

    token = await token_for(http, misa_sim)
    assert [o["account_object_code"] for o in data_of(await get(http, token))] == ["KH-OLD"]
    only = (await http.get("/_sim/account-objects", params={"code": "KH-OLD"})).json()
    assert only == {"items": [created]}
    bad = await http.post("/_sim/account-objects", json={"account_object_name": "no code"})
    assert bad.status_code == 422


async def test_reset_clears_everything(http: httpx.AsyncClient, misa_sim: MisaSimulator) -> None:
    token = await token_for(http, misa_sim)
    data_of(await save(http, token, [customer("KH000001")]))
    await arm(http, "http_500", count=5)

    assert (await http.post("/_sim/reset")).status_code == 200

    assert await stored(http) == []
    assert (await http.get("/_sim/faults")).json()["remaining"] == 0
    assert (await http.get("/_sim/stats")).json() == {"calls": {}}
    assert error_of(await get(http, token)) == "InvalidToken"


async def test_stats_count_api_calls(http: httpx.AsyncClient, misa_sim: MisaSimulator) -> None:
    token = await token_for(http, misa_sim)
    await get(http, token)
    await get(http, token, API)
    assert (await http.get("/_sim/stats")).json() == {"calls": {"connect": 1, "get_dictionary": 2}}


async def test_healthz(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).status_code == 200


# -- malformed requests ------------------------------------------------------------------

MALFORMED_BODIES: list[bytes] = [
    b"",
    b"   ",
    b"not json",
    b"{",
    b"[]",
    b"null",
    b"123",
    b'"a string"',
    b"\xff\xfe\x00garbage",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"data_type": 1e400}',
    b'{"data_type": "1", "skip": -1}',
    b'{"data_type": true}',
    b'{"data_type": 1, "take": 0}',
    b'{"data_type": 1, "skip": 1.5}',
    b'{"data_type": 1, "skip": {"a": 1}}',
    b'{"data_type": 1, "last_sync_time": 5}',
    b'{"data_type": 1, "last_sync_time": "yesterday"}',
    b'{"data_type": 1, "last_sync_time": "0001-01-01 00:00:00"}',
    b'{"data_type": 1, "skip": "\xc2\xb2"}',
    b'{"data_type": 1, "take": "' + b"9" * 5000 + b'"}',
    b'{"data_type": 1, "take": ' + b"9" * 5000 + b"}",
    b'{"dictionary": "x"}',
    b'{"dictionary": []}',
    b'{"dictionary": [1, 2]}',
    b'{"dictionary": [{"dictionary_type": 1}]}',
    b'{"dictionary": [{"dictionary_type": 3, "account_object_id": "x"}]}',
    b'{"dictionary": [{"dictionary_type": 1, "account_object_id": "not-a-uuid",'
    b' "account_object_code": "X", "account_object_name": "Y"}]}',
    b'{"dictionary": [{"dictionary_type": 1, "account_object_id": 42,'
    b' "account_object_code": "X", "account_object_name": "Y"}]}',
    b'{"dictionary": [{"dictionary_type": 1, "account_object_id": '
    b'"8a3c1a52-6f1c-4c1e-9a43-1d7b0f3c2a01", "account_object_code": ["X"],'
    b' "account_object_name": "Y"}]}',
    b'{"app_id": {"nested": true}, "access_code": [], "org_company_code": 1}',
]


@pytest.mark.parametrize(
    "path",
    [CONNECT, f"{APIR}/get_dictionary", f"{APIR}/save_dictionary", f"{API}/save_dictionary"],
)
async def test_malformed_bodies_never_cause_a_500(
    http: httpx.AsyncClient, misa_sim: MisaSimulator, path: str
) -> None:
    token = await token_for(http, misa_sim)
    for raw in MALFORMED_BODIES:
        for content_type in ("application/json", "text/plain"):
            response = await http.post(
                path,
                content=raw,
                headers={"X-MISA-AccessToken": token, "Content-Type": content_type},
            )
            assert response.status_code == 200, (raw[:60], response.text)
            assert error_of(response) in {"InvalidParam", "InvalidAppID"}, raw[:60]
    assert await stored(http) == []


# -- configuration and restarts (own processes) -----------------------------------------


async def test_env_settings_and_state_survive_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "nested" / "misa.json"
    env = {
        "MISA_SIM_APP_ID": "custom-app",
        "MISA_SIM_ACCESS_CODE": "custom-code",
        "MISA_SIM_ORG_COMPANY_CODE": "custom-org",
        "MISA_SIM_DUPLICATE_CODE_MODE": "invalid_param",
        "MISA_SIM_TIMEOUT_DELAY_S": "0.3",
    }
    log_file = tmp_path / "simulator.log"
    # The state file's folder does not exist yet: the simulator creates it.
    first = start_misa_simulator(state_file, env=env, log_file=log_file)
    try:
        async with httpx.AsyncClient(base_url=first.base_url, timeout=10) as http:
            # A new tenant already has a vendor and an employee, no customer.
            seeded = await stored(http)
            assert seeded and not any(o["is_customer"] for o in seeded)
            refused = await http.post(CONNECT, json=connect_body(first, app_id="ims-local-app"))
            assert error_of(refused) == "InvalidAppID"
            token = await token_for(http, first)
            payload = {"app_id": "custom-app", "dictionary": [customer("KH000001")]}
            headers = {"X-MISA-AccessToken": token}
            response = await http.post(f"{APIR}/save_dictionary", json=payload, headers=headers)
            data_of(response)
            payload["dictionary"] = [customer("KH000001")]
            response = await http.post(f"{APIR}/save_dictionary", json=payload, headers=headers)
            assert error_of(response) == "InvalidParam"  # MISA_SIM_DUPLICATE_CODE_MODE

            await arm(http, "timeout")
            started = time.monotonic()
            await http.post(f"{APIR}/get_dictionary", json={"data_type": 1}, headers=headers)
            assert 0.3 <= time.monotonic() - started < 5  # MISA_SIM_TIMEOUT_DELAY_S
    finally:
        first.stop()

    saved = json.loads(state_file.read_text(encoding="utf-8"))
    assert [o["account_object_code"] for o in saved["account_objects"] if o["is_customer"]] == [
        "KH000001"
    ]
    assert not list(state_file.parent.glob(".misa.json.*"))  # no temp file left behind

    second = start_misa_simulator(state_file, env=env, log_file=log_file)
    try:
        async with httpx.AsyncClient(base_url=second.base_url, timeout=10) as http:
            # The token issued before the restart is still good, as with a real tenant.
            response = await http.post(
                f"{APIR}/get_dictionary",
                json={"data_type": 1, "app_id": "custom-app"},
                headers={"X-MISA-AccessToken": token},
            )
            codes = [o["account_object_code"] for o in data_of(response) if o["is_customer"]]
            assert codes == ["KH000001"]
    finally:
        second.stop()


def test_settings_come_from_misa_sim_env_vars() -> None:
    settings = Settings.from_env(
        {
            "MISA_SIM_PORT": "9999",
            "MISA_SIM_STATE_FILE": "state/x.json",
            "MISA_SIM_DUPLICATE_CODE_MODE": "duplicate",
            "MISA_SIM_TIMEOUT_DELAY_S": "1.5",
        }
    )
    assert (settings.port, settings.state_file) == (9999, Path("state/x.json"))
    assert settings.duplicate_code_mode is DuplicateCodeMode.DUPLICATE
    assert settings.timeout_delay_s == 1.5
    defaults = Settings.from_env({})
    assert (defaults.host, defaults.port, defaults.app_id, defaults.org_company_code) == (
        "127.0.0.1",
        8090,
        "ims-local-app",
        "ims-local",
    )
    assert defaults.state_file == Path(".ims/misa-simulator.json")
    assert defaults.timeout_delay_s == 30.0


@pytest.mark.parametrize(
    "env",
    [
        {"MISA_SIM_DUPLICATE_CODE_MODE": "sometimes"},
        {"MISA_SIM_PORT": "http"},
        {"MISA_SIM_TIMEOUT_DELAY_S": "-1"},
    ],
)
def test_bad_settings_stop_start_up(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=next(iter(env))):
        Settings.from_env(env)
