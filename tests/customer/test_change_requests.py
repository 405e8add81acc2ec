"""Change requests on active customers (issue 4): governed fields wait for CS, the rest
applies at once; approval applies the request, rejection discards it."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from customer.handlers import HANDLERS
from shared.events.contracts import ApprovalCustomerRejectedV1, CustomerApprovedV1, to_cloud_event
from tests.customer.test_api import complete_customer, create

Auth = Callable[[str], dict[str, str]]


@pytest.fixture
async def active(
    customer_api: httpx.AsyncClient, auth_header: Auth, service_databases: dict[str, str]
) -> dict[str, Any]:
    """A customer CS has approved (status set directly, as the approval event would)."""
    customer = await create(customer_api, auth_header, **complete_customer())
    engine = create_async_engine(service_databases["customer"])
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE customers SET status = 'active', customer_code = :c WHERE id = :i"),
            {"c": f"KH8{uuid.uuid4().int % 10**5:05d}", "i": customer["id"]},
        )
    await engine.dispose()
    return (
        await customer_api.get(f"/api/v1/customers/{customer['id']}", headers=auth_header("sales1"))
    ).json()


async def patch(
    api: httpx.AsyncClient, auth: Auth, customer: dict[str, Any], body: dict[str, Any], version: int
) -> httpx.Response:
    return await api.patch(
        f"/api/v1/customers/{customer['id']}",
        json=body,
        headers={**auth("sales1"), "If-Match": f'"{version}"'},
    )


async def events(database_url: str, customer_id: str) -> list[tuple[str, dict[str, Any]]]:
    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT event_type, payload FROM outbox WHERE key = :k ORDER BY id"),
                {"k": customer_id},
            )
        ).all()
    await engine.dispose()
    return [(r.event_type.split(".")[2], r.payload) for r in rows]


async def decide(database_url: str, data: Any) -> None:
    async with AsyncSession(create_async_engine(database_url)) as session, session.begin():
        await HANDLERS[data.TYPE](session, to_cloud_event(data))


async def approve(database_url: str, customer: dict[str, Any], version: int) -> None:
    """What the customer service receives when CS approves the request of `version`."""
    await decide(
        database_url,
        CustomerApprovedV1(
            review_id=uuid.uuid4(),
            customer_id=customer["id"],
            customer_version=version,
            customer_code=customer["customer_code"],
            approved_by="NV020",
            approved_at=datetime.now(UTC),
        ),
    )


async def fetch(api: httpx.AsyncClient, auth: Auth, customer_id: str) -> dict[str, Any]:
    response = await api.get(f"/api/v1/customers/{customer_id}", headers=auth("sales1"))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_notes_and_contact_details_apply_at_once(
    customer_api: httpx.AsyncClient,
    auth_header: Auth,
    active: dict[str, Any],
    service_databases: dict[str, str],
) -> None:
    response = await patch(
        customer_api,
        auth_header,
        active,
        {"note": "Giao buổi sáng", "phone": "0987 000 111"},
        active["version"],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (
        body["note"] == "Giao buổi sáng"
        and body["phone"] == "+84987000111"
        and body["pending_change"] is None
    )
    kind, payload = (await events(service_databases["customer"], active["id"]))[-1]
    assert kind == "CustomerUpdated" and payload["changed_fields"] == ["note", "phone"]


async def test_governed_fields_wait_for_cs_while_the_active_values_serve(
    customer_api: httpx.AsyncClient,
    auth_header: Auth,
    active: dict[str, Any],
    service_databases: dict[str, str],
) -> None:
    response = await patch(
        customer_api,
        auth_header,
        active,
        {"full_name": "Tạp hóa Minh Anh 2", "credit_days": 30},
        active["version"],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (
        body["full_name"] == active["full_name"] and body["credit_days"] == active["credit_days"]
    )  # still in force
    assert body["pending_change"]["fields"] == {
        "full_name": "Tạp hóa Minh Anh 2",
        "credit_days": 30,
    }
    kind, payload = (await events(service_databases["customer"], active["id"]))[-1]
    assert kind == "CustomerSubmitted" and payload["review_kind"] == "change"
    assert payload["customer"]["full_name"] == "Tạp hóa Minh Anh 2"  # CS reviews the proposed state
    assert payload["changes"]["credit_days"] == {"old": active["credit_days"], "new": 30}
    eligibility = await customer_api.get(
        f"/api/v1/customers/{active['id']}/order-eligibility", headers=auth_header("sales1")
    )
    assert eligibility.json()["eligible"] is True

    await approve(service_databases["customer"], active, body["version"])
    after = await fetch(customer_api, auth_header, active["id"])
    assert (
        after["full_name"] == "Tạp hóa Minh Anh 2"
        and after["credit_days"] == 30
        and after["pending_change"] is None
    )
    assert after["status"] == "active" and after["customer_code"] == active["customer_code"]
    kind, payload = (await events(service_databases["customer"], active["id"]))[-1]
    assert kind == "CustomerUpdated" and payload["changed_fields"] == ["credit_days", "full_name"]
    history = (
        await customer_api.get(
            f"/api/v1/customers/{active['id']}/history", headers=auth_header("sales1")
        )
    ).json()["items"]
    assert [h["action"] for h in history][-2:] == ["change_requested", "change_approved"]


async def test_a_rejected_change_is_discarded_with_its_reason(
    customer_api: httpx.AsyncClient,
    auth_header: Auth,
    active: dict[str, Any],
    service_databases: dict[str, str],
) -> None:
    body = (
        await patch(
            customer_api, auth_header, active, {"payment_term_code": "NET30"}, active["version"]
        )
    ).json()
    await decide(
        service_databases["customer"],
        ApprovalCustomerRejectedV1(
            review_id=uuid.uuid4(),
            customer_id=active["id"],
            customer_version=body["version"],
            reason="Hợp đồng chưa ký",
            rejected_by="NV020",
            rejected_at=datetime.now(UTC),
        ),
    )
    after = await fetch(customer_api, auth_header, active["id"])
    assert (
        after["payment_term_code"] == active["payment_term_code"]
        and after["pending_change"] is None
    )
    assert after["status"] == "active"
    history = (
        await customer_api.get(
            f"/api/v1/customers/{active['id']}/history", headers=auth_header("sales1")
        )
    ).json()["items"]
    assert (history[-1]["action"], history[-1]["reason"]) == ("change_rejected", "Hợp đồng chưa ký")


async def test_a_newer_request_replaces_the_pending_one_and_old_decisions_are_ignored(
    customer_api: httpx.AsyncClient,
    auth_header: Auth,
    active: dict[str, Any],
    service_databases: dict[str, str],
) -> None:
    first = (
        await patch(customer_api, auth_header, active, {"credit_days": 20}, active["version"])
    ).json()
    second = (
        await patch(customer_api, auth_header, active, {"full_name": "Đổi tên"}, first["version"])
    ).json()
    assert second["pending_change"]["fields"] == {"credit_days": 20, "full_name": "Đổi tên"}
    # CS approved the superseded request
    await approve(service_databases["customer"], active, first["version"])
    after = await fetch(customer_api, auth_header, active["id"])
    assert (
        after["credit_days"] == active["credit_days"]
        and after["pending_change"]["version"] == second["version"]
    )


async def test_an_invalid_request_changes_nothing(
    customer_api: httpx.AsyncClient,
    auth_header: Auth,
    active: dict[str, Any],
    service_databases: dict[str, str],
) -> None:
    before = await events(service_databases["customer"], active["id"])
    response = await patch(
        customer_api, auth_header, active, {"customer_type_code": "DN"}, active["version"]
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} >= {"company_name", "tax_code"}
    after = await fetch(customer_api, auth_header, active["id"])
    assert after["version"] == active["version"] and after["pending_change"] is None
    assert await events(service_databases["customer"], active["id"]) == before


async def test_an_inactive_customer_must_be_reactivated_first(
    customer_api: httpx.AsyncClient, auth_header: Auth, active: dict[str, Any]
) -> None:
    off = await customer_api.post(
        f"/api/v1/customers/{active['id']}/deactivate",
        json={"reason": "x"},
        headers=auth_header("cs1"),
    )
    response = await patch(customer_api, auth_header, active, {"note": "x"}, off.json()["version"])
    assert response.status_code == 409
