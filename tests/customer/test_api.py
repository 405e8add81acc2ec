"""The customer REST contract (CONTRACT.md §4) on a real database."""

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.fixtures.openapi import assert_documented_problem, problem_statuses

Auth = Callable[[str], dict[str, str]]
PROBLEM = "application/problem+json"


def complete_customer(name: str | None = None) -> dict[str, Any]:
    return {
        "full_name": name or f"Tạp hóa Minh Anh {uuid.uuid4().hex[:6]}",
        "phone": "0912 345 678",
        "email": "minhanh@example.vn",
        "address": "12 Nguyễn Trãi",
        "province_code": "01",
        "ward_code": "00004",
        "customer_type_code": "HKD",
        "customer_group_code": "TAPHOA",
        "channel_code": "GT",
        "payment_term_code": "NET15",
        "payment_method_code": "CK",
        "credit_days": 15,
        "delivery_addresses": [{"address": "Kho 2, 5 Lê Lợi", "is_default": True}],
    }


async def create(
    api: httpx.AsyncClient, auth: Auth, user: str = "sales1", **body: Any
) -> dict[str, Any]:
    response = await api.post(
        "/api/v1/customers", json=body or complete_customer(), headers=auth(user)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_create_draft_answers_201_location_etag_and_defaults(
    customer_api: httpx.AsyncClient, auth_header: Auth
) -> None:
    response = await customer_api.post(
        "/api/v1/customers", json={"full_name": "Cửa hàng Bình An"}, headers=auth_header("sales1")
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/api/v1/customers/{body['id']}"
    assert response.headers["etag"] == '"1"'
    assert body["status"] == "draft" and body["customer_code"] is None
    assert body["owner_employee_id"] == "NV001"  # the creator
    assert body["sales_unit_code"] == "HN-T1"  # the owner's unit
    assert body["admin_scheme"] == "2025" and body["delivery_addresses"] == []


async def test_phone_is_stored_in_e164(customer_api: httpx.AsyncClient, auth_header: Auth) -> None:
    body = await create(customer_api, auth_header, **{"full_name": "A", "phone": "0912345678"})
    assert body["phone"] == "+84912345678"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "full_name"),
        ({"full_name": ""}, "full_name"),
        ({"full_name": "A", "phone": "12"}, "phone"),
        ({"full_name": "A", "email": "not-an-email"}, "email"),
        ({"full_name": "A", "credit_days": -1}, "credit_days"),
        ({"full_name": "A", "credit_days": "many"}, "credit_days"),
        ({"full_name": "A", "tax_code": "12345"}, "tax_code"),
        ({"full_name": "A", "admin_scheme": "1990"}, "admin_scheme"),
        ({"full_name": "A", "unknown_field": 1}, "unknown_field"),
        (
            {"full_name": "A", "delivery_addresses": [{"address": "x", "phone": "abc"}]},
            "delivery_addresses[0].phone",
        ),
        (
            {
                "full_name": "A",
                "delivery_addresses": [
                    {"address": "x", "is_default": True},
                    {"address": "y", "is_default": True},
                ],
            },
            "delivery_addresses[1].is_default",
        ),
        ({"full_name": "A", "status": "active"}, "status"),
    ],
)
async def test_malformed_drafts_are_refused_naming_the_field(
    customer_api: httpx.AsyncClient, auth_header: Auth, payload: dict[str, Any], field: str
) -> None:
    response = await customer_api.post(
        "/api/v1/customers", json=payload, headers=auth_header("sales1")
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert field in [e["field"] for e in response.json()["errors"]]


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b"null", b"\xff\xfe"])
async def test_unparseable_bodies_are_4xx_problems(
    customer_api: httpx.AsyncClient, auth_header: Auth, raw: bytes
) -> None:
    response = await customer_api.post(
        "/api/v1/customers",
        content=raw,
        headers={**auth_header("sales1"), "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


async def test_identity_and_roles(customer_api: httpx.AsyncClient, auth_header: Auth) -> None:
    assert (await customer_api.get("/api/v1/customers")).status_code == 401
    bad = await customer_api.get("/api/v1/customers", headers={"Authorization": "Bearer not.a.jwt"})
    assert bad.status_code == 401 and bad.headers["content-type"] == PROBLEM
    cs_create = await customer_api.post(
        "/api/v1/customers", json={"full_name": "A"}, headers=auth_header("cs1")
    )
    assert cs_create.status_code == 403


async def test_customers_of_other_salespeople_are_404_but_cs_and_the_manager_see_them(
    customer_api: httpx.AsyncClient, auth_header: Auth
) -> None:
    mine = await create(customer_api, auth_header, "sales1")
    url = f"/api/v1/customers/{mine['id']}"
    assert (await customer_api.get(url, headers=auth_header("sales2"))).status_code == 404
    assert (await customer_api.get(url, headers=auth_header("sales3"))).status_code == 404
    assert (await customer_api.get(url, headers=auth_header("manager1"))).status_code == 200
    assert (await customer_api.get(url, headers=auth_header("cs1"))).status_code == 200
    patch = await customer_api.patch(
        url, json={"note": "x"}, headers={**auth_header("sales2"), "If-Match": '"1"'}
    )
    assert patch.status_code == 404
    missing = await customer_api.get(
        f"/api/v1/customers/{uuid.uuid4()}", headers=auth_header("cs1")
    )
    assert missing.status_code == 404
    listed = await customer_api.get(
        "/api/v1/customers", params={"q": mine["full_name"]}, headers=auth_header("sales2")
    )
    assert listed.json()["items"] == []


async def test_patch_needs_if_match_and_refuses_stale_versions(
    customer_api: httpx.AsyncClient, auth_header: Auth
) -> None:
    customer = await create(customer_api, auth_header)
    url = f"/api/v1/customers/{customer['id']}"
    no_match = await customer_api.patch(url, json={"note": "a"}, headers=auth_header("sales1"))
    assert no_match.status_code == 428
    ok = await customer_api.patch(
        url, json={"note": "a"}, headers={**auth_header("sales1"), "If-Match": '"1"'}
    )
    assert ok.status_code == 200 and ok.headers["etag"] == '"2"' and ok.json()["note"] == "a"
    stale = await customer_api.patch(
        url, json={"note": "b"}, headers={**auth_header("sales1"), "If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert (await customer_api.get(url, headers=auth_header("sales1"))).json()["note"] == "a"


async def test_submit_lists_every_missing_field_in_vietnamese(
    customer_api: httpx.AsyncClient, auth_header: Auth
) -> None:
    customer = await create(customer_api, auth_header, **{"full_name": "Nhà thuốc Hồng Phúc"})
    response = await customer_api.post(
        f"/api/v1/customers/{customer['id']}/submit",
        headers={**auth_header("sales1"), "Accept-Language": "vi"},
    )
    assert response.status_code == 422
    errors = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert {
        "phone",
        "address",
        "province_code",
        "customer_type_code",
        "payment_term_code",
        "credit_days",
    } <= set(errors)
    assert errors["phone"] == "Điện thoại là bắt buộc khi gửi CS duyệt."
    after = await customer_api.get(
        f"/api/v1/customers/{customer['id']}", headers=auth_header("sales1")
    )
    assert after.json()["status"] == "draft" and after.json()["version"] == 1


async def test_submit_records_the_event_and_locks_the_customer(
    customer_api: httpx.AsyncClient, auth_header: Auth, service_databases: dict[str, str]
) -> None:
    customer = await create(customer_api, auth_header)
    url = f"/api/v1/customers/{customer['id']}"
    submitted = await customer_api.post(f"{url}/submit", headers=auth_header("sales1"))
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "pending_approval" and submitted.json()["version"] == 2

    engine = create_async_engine(service_databases["customer"])
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT event_type, key, payload FROM outbox WHERE key = :k"),
                {"k": customer["id"]},
            )
        ).all()
    await engine.dispose()
    assert [r.event_type for r in rows] == ["ims.customer.CustomerSubmitted.v1"]
    assert (
        rows[0].payload["review_kind"] == "new"
        and rows[0].payload["customer"]["status"] == "pending_approval"
    )

    edit = await customer_api.patch(
        url, json={"note": "x"}, headers={**auth_header("sales1"), "If-Match": '"2"'}
    )
    assert edit.status_code == 409
    again = await customer_api.post(f"{url}/submit", headers=auth_header("sales1"))
    assert again.status_code == 409
    eligibility = await customer_api.get(f"{url}/order-eligibility", headers=auth_header("sales1"))
    assert eligibility.json() == {"eligible": False, "reason": "not_approved"}
    history = (await customer_api.get(f"{url}/history", headers=auth_header("sales1"))).json()[
        "items"
    ]
    assert [h["action"] for h in history] == ["created", "submitted"]
    assert history[1]["changes"]["status"] == {"old": "draft", "new": "pending_approval"}


async def test_list_search_is_accent_insensitive_and_pages_by_cursor(
    customer_api: httpx.AsyncClient, auth_header: Auth
) -> None:
    tag = uuid.uuid4().hex[:8]
    for i in range(5):
        await create(customer_api, auth_header, **{"full_name": f"Tạp hóa Đức {tag} {i}"})
    first = await customer_api.get(
        "/api/v1/customers",
        params={"q": f"tap hoa duc {tag}", "limit": 2},
        headers=auth_header("sales1"),
    )
    body = first.json()
    assert len(body["items"]) == 2 and body["next_cursor"]
    seen = [c["full_name"] for c in body["items"]]
    cursor = body["next_cursor"]
    while cursor:
        page = (
            await customer_api.get(
                "/api/v1/customers",
                params={"q": f"tap hoa duc {tag}", "limit": 2, "cursor": cursor},
                headers=auth_header("sales1"),
            )
        ).json()
        seen += [c["full_name"] for c in page["items"]]
        cursor = page["next_cursor"]
    # Ranked by relevance (all five tie here): every one exactly once across the pages.
    assert sorted(seen) == [f"Tạp hóa Đức {tag} {i}" for i in range(5)]
    bad = await customer_api.get(
        "/api/v1/customers", params={"cursor": "garbage"}, headers=auth_header("sales1")
    )
    assert bad.status_code == 400 and bad.headers["content-type"] == PROBLEM
    too_many = await customer_api.get(
        "/api/v1/customers", params={"limit": 1000}, headers=auth_header("sales1")
    )
    assert too_many.status_code == 422


@pytest.mark.parametrize(
    "payload",
    [
        {"full_name": "A\u0000B"},
        {"full_name": "A", "note": "x\u0000"},
        {"full_name": "A", "delivery_addresses": [{"address": "kho\u0000"}]},
        {"full_name": "A", "credit_days": 10**12},
    ],
)
async def test_values_postgres_cannot_store_are_4xx(
    customer_api: httpx.AsyncClient, auth_header: Auth, payload: dict[str, Any]
) -> None:
    response = await customer_api.post(
        "/api/v1/customers", json=payload, headers=auth_header("sales1")
    )
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    "params",
    [
        {"q": "a\u0000"},
        {"province_code": "0\u00001"},
        {
            "cursor": "WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzA1OjAwIiwgIjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMCJd"
        },
    ],
)
async def test_query_values_postgres_cannot_take_are_4xx(
    customer_api: httpx.AsyncClient, auth_header: Auth, params: dict[str, str]
) -> None:
    response = await customer_api.get(
        "/api/v1/customers", params=params, headers=auth_header("sales1")
    )
    assert response.status_code == 400 and response.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    ("user", "body", "field"),
    [
        ("sales1", {"owner_employee_id": "NV002"}, "owner_employee_id"),
        ("sales1", {"sales_unit_code": "HCM-T1"}, "sales_unit_code"),
        ("manager1", {"owner_employee_id": "NV003"}, "owner_employee_id"),
        ("manager1", {"sales_unit_code": "HCM-T1"}, "sales_unit_code"),
        ("manager1", {"owner_employee_id": "NV999"}, "owner_employee_id"),
    ],
)
async def test_owners_and_units_stay_within_the_callers_scope(
    customer_api: httpx.AsyncClient, auth_header: Auth, user: str, body: dict[str, str], field: str
) -> None:
    response = await customer_api.post(
        "/api/v1/customers", json={"full_name": "A", **body}, headers=auth_header(user)
    )
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_a_manager_assigns_within_their_tree_and_the_unit_follows_the_owner(
    customer_api: httpx.AsyncClient, auth_header: Auth
) -> None:
    made = await customer_api.post(
        "/api/v1/customers",
        json={"full_name": "Đại lý Hoa Mai", "owner_employee_id": "NV002"},
        headers=auth_header("manager1"),
    )
    assert made.status_code == 201, made.text
    customer = made.json()
    assert customer["owner_employee_id"] == "NV002" and customer["sales_unit_code"] == "HN-T2"
    url = f"/api/v1/customers/{customer['id']}"
    assert (await customer_api.get(url, headers=auth_header("manager1"))).status_code == 200
    assert (await customer_api.get(url, headers=auth_header("sales2"))).status_code == 200
    moved = await customer_api.patch(
        url,
        json={"owner_employee_id": "NV001"},
        headers={**auth_header("manager1"), "If-Match": '"1"'},
    )
    assert moved.status_code == 200 and moved.json()["sales_unit_code"] == "HN-T1"
    assert (await customer_api.get(url, headers=auth_header("sales2"))).status_code == 404
    anywhere = await customer_api.post(
        "/api/v1/customers",
        json={"full_name": "B", "owner_employee_id": "NV003"},
        headers=auth_header("admin1"),
    )
    assert anywhere.status_code == 201 and anywhere.json()["sales_unit_code"] == "HCM-T1"


async def test_cs_deactivates_and_reactivates_with_a_reason(
    customer_api: httpx.AsyncClient, auth_header: Auth, service_databases: dict[str, str]
) -> None:
    customer = await create(customer_api, auth_header)
    url = f"/api/v1/customers/{customer['id']}"
    early = await customer_api.post(
        f"{url}/deactivate", json={"reason": "x"}, headers=auth_header("cs1")
    )
    assert early.status_code == 409  # a draft is not active
    engine = create_async_engine(service_databases["customer"])
    async with engine.begin() as conn:  # as if approved
        await conn.execute(
            text("UPDATE customers SET status = 'active', customer_code = :c WHERE id = :i"),
            {"c": f"KH9{uuid.uuid4().int % 10**5:05d}", "i": customer["id"]},
        )
    assert (
        await customer_api.post(
            f"{url}/deactivate", json={"reason": "Ngừng hợp tác"}, headers=auth_header("sales1")
        )
    ).status_code == 403
    assert (
        await customer_api.post(
            f"{url}/deactivate", json={"reason": " "}, headers=auth_header("cs1")
        )
    ).status_code == 422
    off = await customer_api.post(
        f"{url}/deactivate", json={"reason": "Ngừng hợp tác"}, headers=auth_header("cs1")
    )
    assert off.status_code == 200 and off.json()["status"] == "inactive"
    eligibility = await customer_api.get(f"{url}/order-eligibility", headers=auth_header("sales1"))
    assert eligibility.json() == {"eligible": False, "reason": "inactive"}
    on = await customer_api.post(
        f"{url}/reactivate", json={"reason": "Hợp tác lại"}, headers=auth_header("cs1")
    )
    assert on.status_code == 200 and on.json()["status"] == "active"
    assert (
        await customer_api.get(f"{url}/order-eligibility", headers=auth_header("sales1"))
    ).json()["eligible"] is True
    async with engine.connect() as conn:
        types = list(
            await conn.scalars(
                text("SELECT event_type FROM outbox WHERE key = :k ORDER BY id"),
                {"k": customer["id"]},
            )
        )
    await engine.dispose()
    assert types[-2:] == [
        "ims.customer.CustomerDeactivated.v1",
        "ims.customer.CustomerReactivated.v1",
    ]
    history = (await customer_api.get(f"{url}/history", headers=auth_header("cs1"))).json()["items"]
    assert [(h["action"], h["reason"]) for h in history[-2:]] == [
        ("deactivated", "Ngừng hợp tác"),
        ("reactivated", "Hợp tác lại"),
    ]
    other = await customer_api.post(
        f"/api/v1/customers/{uuid.uuid4()}/deactivate",
        json={"reason": "x"},
        headers=auth_header("cs1"),
    )
    assert other.status_code == 404


async def test_error_answers_are_documented_problems(
    customer_api: httpx.AsyncClient, auth_header: Auth
) -> None:
    """The fuzzer (issue 8) found 400, 403, 404, 409, 412 and 428 answered but missing from
    the OpenAPI document, and 422 documented as FastAPI's JSON instead of problem+json."""
    document = (await customer_api.get("/openapi.json")).json()
    item = "/api/v1/customers/{customer_id}"
    assert problem_statuses(document, "PATCH", item) == {
        400,
        401,
        403,
        404,
        409,
        412,
        422,
        428,
        503,
    }
    assert {403, 404, 409, 412} <= problem_statuses(document, "POST", item + "/submit")
    assert 413 in problem_statuses(document, "POST", item + "/attachments")
    customer = await create(customer_api, auth_header)
    url = f"/api/v1/customers/{customer['id']}"
    answers = [
        (
            "GET",
            "/api/v1/customers",
            await customer_api.get(
                "/api/v1/customers?cursor=%C3%A6x", headers=auth_header("sales1")
            ),
        ),
        ("PATCH", item, await customer_api.patch(url, json={}, headers=auth_header("sales1"))),
        (
            "PATCH",
            item,
            await customer_api.patch(
                url, json={}, headers={**auth_header("sales1"), "If-Match": '"99"'}
            ),
        ),
        (
            "PATCH",
            item,
            await customer_api.patch(
                url,
                content=b"{",
                headers={**auth_header("sales1"), "content-type": "application/json"},
            ),
        ),
        (
            "GET",
            item,
            await customer_api.get(
                f"/api/v1/customers/{uuid.uuid4()}", headers=auth_header("sales1")
            ),
        ),
    ]
    assert [a.status_code for _, _, a in answers] == [400, 428, 412, 422, 404]
    for method, path, answer in answers:
        assert_documented_problem(document, method, path, answer)
