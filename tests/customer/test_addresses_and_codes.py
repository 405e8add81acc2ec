"""Addresses in both schemes, 2025 equivalents and warnings, reference codes, group defaults."""

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared import admin_units
from tests.customer.test_api import complete_customer

Auth = Callable[[str], dict[str, str]]
SPLIT = next(
    c
    for c in admin_units.legacy_to_2025_ward_mapping().values()
    if c.ambiguous and c.in_legacy_list
)


async def submit(api: httpx.AsyncClient, auth: Auth, **overrides: Any) -> httpx.Response:
    created = await api.post(
        "/api/v1/customers", json={**complete_customer(), **overrides}, headers=auth("sales1")
    )
    assert created.status_code == 201, created.text
    return await api.post(
        f"/api/v1/customers/{created.json()['id']}/submit",
        headers={**auth("sales1"), "Accept-Language": "vi"},
    )


def fields(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {e["field"]: e["code"] for e in response.json()["errors"]}


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"province_code": "99"}, "province_code", "unknown_code"),
        ({"province_code": "79", "ward_code": "00004"}, "ward_code", "not_in_province"),
        ({"ward_code": "99999"}, "ward_code", "unknown_code"),
        ({"district_code": "001"}, "district_code", "no_district_level"),
        (
            {
                "admin_scheme": "legacy",
                "province_code": "79",
                "district_code": "001",
                "ward_code": None,
            },
            "district_code",
            "not_in_province",
        ),
        (
            {
                "admin_scheme": "legacy",
                "province_code": "79",
                "district_code": "760",
                "ward_code": "26764",
            },
            "ward_code",
            "not_in_district",
        ),
        (
            {
                "admin_scheme": "legacy",
                "province_code": "79",
                "district_code": None,
                "ward_code": "26740",
            },
            "district_code",
            "required",
        ),
        (
            {
                "delivery_addresses": [
                    {"address": "Kho", "province_code": "01", "ward_code": "26740"}
                ]
            },
            "delivery_addresses[0].ward_code",
            "not_in_province",
        ),
        ({"customer_type_code": "NOPE"}, "customer_type_code", "unknown_code"),
        ({"payment_term_code": "NET90"}, "payment_term_code", "inactive_code"),
        ({"channel_code": "ZZZ"}, "channel_code", "unknown_code"),
    ],
)
async def test_submission_checks_addresses_and_codes(
    customer_api: httpx.AsyncClient,
    auth_header: Auth,
    overrides: dict[str, Any],
    field: str,
    code: str,
) -> None:
    assert fields(await submit(customer_api, auth_header, **overrides)).get(field) == code


async def test_a_legacy_address_is_kept_and_offered_in_2025(
    customer_api: httpx.AsyncClient, auth_header: Auth
) -> None:
    response = await submit(
        customer_api,
        auth_header,
        admin_scheme="legacy",
        province_code="79",
        district_code="760",
        ward_code="26740",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["admin_scheme"], body["district_code"], body["ward_code"]) == (
        "legacy",
        "760",
        "26740",
    )
    assert body["admin_2025"] == {
        "province_code": "79",
        "ward_codes": ["26740"],
        "ambiguous": False,
    }
    assert body["warnings"] == []


async def test_an_ambiguous_legacy_ward_submits_with_a_warning_that_reaches_cs(
    customer_api: httpx.AsyncClient, auth_header: Auth, service_databases: dict[str, str]
) -> None:
    response = await submit(
        customer_api,
        auth_header,
        admin_scheme="legacy",
        province_code=SPLIT.legacy_province_code,
        district_code=SPLIT.legacy_district_code,
        ward_code=SPLIT.legacy_ward_code,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["admin_2025"]["ambiguous"] is True
    assert body["admin_2025"]["ward_codes"] == sorted(set(SPLIT.new_ward_codes))
    assert [w["code"] for w in body["warnings"]] == ["ambiguous_2025_ward"]
    assert "phường/xã mới" in body["warnings"][0]["message_vi"]
    engine = create_async_engine(service_databases["customer"])
    async with engine.connect() as conn:
        payload = (
            await conn.execute(
                text(
                    "SELECT payload FROM outbox WHERE key = :k AND event_type LIKE '%CustomerSubmitted%'"
                ),
                {"k": body["id"]},
            )
        ).scalar_one()
    await engine.dispose()
    assert (
        payload["customer"]["warnings"][0]["code"] == "ambiguous_2025_ward"
    )  # CS's review snapshot


async def test_delivery_addresses_in_legacy_scheme_get_their_own_warning(
    customer_api: httpx.AsyncClient, auth_header: Auth
) -> None:
    response = await submit(
        customer_api,
        auth_header,
        delivery_addresses=[
            {
                "address": "Kho cũ",
                "admin_scheme": "legacy",
                "province_code": SPLIT.legacy_province_code,
                "district_code": SPLIT.legacy_district_code,
                "ward_code": SPLIT.legacy_ward_code,
            }
        ],
    )
    assert response.status_code == 200, response.text
    assert [w["field"] for w in response.json()["warnings"]] == ["delivery_addresses[0].ward_code"]


async def test_a_group_fills_its_default_terms(
    customer_api: httpx.AsyncClient, auth_header: Auth
) -> None:
    from reference.seed.sales_lists import customer_groups

    group = next(g for g in customer_groups() if g.code == "NPP")
    made = await customer_api.post(
        "/api/v1/customers",
        json={"full_name": "NPP Phú Thịnh", "customer_group_code": "NPP"},
        headers=auth_header("sales1"),
    )
    assert made.status_code == 201
    assert made.json()["payment_term_code"] == group.default_payment_term_code
    assert made.json()["credit_days"] == group.default_credit_days
    own_terms = await customer_api.post(
        "/api/v1/customers",
        json={
            "full_name": "NPP B",
            "customer_group_code": "NPP",
            "payment_term_code": "COD",
            "credit_days": 0,
        },
        headers=auth_header("sales1"),
    )
    assert own_terms.json()["payment_term_code"] == "COD" and own_terms.json()["credit_days"] == 0


async def test_a_legacy_ward_without_an_official_conversion_is_flagged(
    customer_api: httpx.AsyncClient, auth_header: Auth
) -> None:
    response = await submit(
        customer_api,
        auth_header,
        admin_scheme="legacy",
        province_code="04",
        district_code="049",
        ward_code="01651",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["admin_2025"]["ward_codes"] == [] and body["admin_2025"]["unresolved_ward"] is True
    assert [w["code"] for w in body["warnings"]] == ["no_2025_ward"]


async def test_a_departed_employee_cannot_be_given_customers(
    customer_api: httpx.AsyncClient, auth_header: Auth
) -> None:
    response = await customer_api.post(
        "/api/v1/customers",
        json={"full_name": "A", "owner_employee_id": "NV105"},
        headers=auth_header("manager1"),
    )
    assert response.status_code == 422
    assert {e["field"]: e["code"] for e in response.json()["errors"]} == {
        "owner_employee_id": "inactive_employee"
    }


async def test_before_reference_lists_arrive_submission_is_a_503_not_the_callers_fault(
    auth_header: Auth, dev_keys: tuple, run_id: str
) -> None:
    import asyncio

    from shared.migrations import upgrade_to_head
    from tests.fixtures.apps import app_client, build_app
    from tests.fixtures.infra import create_database

    # Both helpers run their own event loop: keep them off this test's loop.
    url = await asyncio.to_thread(create_database, f"ims_test_customer_empty_{run_id}")
    await asyncio.to_thread(upgrade_to_head, "customer", url)
    app = build_app("customer", url, dev_keys[1])
    async with app_client(app) as api:
        response = await submit(api, auth_header)
        ready = await api.get("/readyz")
    assert response.status_code == 503 and response.json()["type"].endswith("reference-unavailable")
    assert ready.status_code == 503 and ready.json()["checks"]["reference_replica"].startswith(
        "empty"
    )
