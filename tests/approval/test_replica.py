"""The customer replica: one row per customer, from every customer event, never going back."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from approval.models import CustomerReplica
from shared.events.contracts import (
    CustomerActivatedV1,
    CustomerDeactivatedV1,
    CustomerReactivatedV1,
    CustomerRejectedV1,
    CustomerUpdatedV1,
)
from tests.approval.helpers import customer, deliver, submission


@pytest.fixture(scope="module")
async def engine(service_databases: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(service_databases["approval"])
    yield engine
    await engine.dispose()


async def row(engine: AsyncEngine, customer_id: uuid.UUID) -> CustomerReplica | None:
    async with AsyncSession(engine) as session:
        return await session.get(CustomerReplica, customer_id)


def active(cid: uuid.UUID, version: int, **fields: Any) -> dict[str, Any]:
    return customer(cid, version=version, status="active", customer_code="KH900001", **fields)


NOW = datetime(2026, 3, 1, tzinfo=UTC)


async def test_every_event_type_moves_the_row_forward(engine: AsyncEngine) -> None:
    cid = uuid.uuid4()
    await deliver(
        engine,
        submission(
            cid,
            2,
            full_name="Công ty TNHH Minh Phát",
            tax_code="0314409058-002",
            phone="+84912345678",
            email="Minh.Phat@Example.VN",
            address="Số 12 đường Lê Lợi",
            company_name="Công ty TNHH Minh Phát",
        ),
    )
    held = await row(engine, cid)
    assert held is not None
    assert (held.version, held.status, held.customer_code) == (2, "pending", None)
    assert held.tax_code == "0314409058002"  # normalised: digits only
    assert held.phone == "+84912345678" and held.email == "minh.phat@example.vn"
    assert held.match_name == "minh phat" and held.match_address == "12 le loi"
    assert held.province_code == "79" and held.snapshot["full_name"] == "Công ty TNHH Minh Phát"

    await deliver(
        engine,
        CustomerActivatedV1(
            customer_id=cid,
            version=3,
            customer_code="KH900001",
            approved_by="NV020",
            approved_at=NOW,
            customer=active(cid, 3, full_name="Công ty TNHH Minh Phát"),
        ),
    )
    held = await row(engine, cid)
    assert held is not None and (held.version, held.status, held.customer_code) == (
        3,
        "active",
        "KH900001",
    )
    await deliver(
        engine,
        CustomerUpdatedV1(
            customer_id=cid,
            version=4,
            changed_fields=["phone"],
            customer=active(cid, 4, full_name="Công ty TNHH Minh Phát", phone="+84987654321"),
        ),
    )
    held = await row(engine, cid)
    assert held is not None and (held.version, held.phone) == (4, "+84987654321")

    off = active(cid, 5, full_name="Công ty TNHH Minh Phát")
    await deliver(
        engine,
        CustomerDeactivatedV1(
            customer_id=cid, version=5, by="NV020", at=NOW, reason="closed", customer=off
        ),
    )
    held = await row(engine, cid)
    assert held is not None and (held.version, held.status) == (5, "inactive")
    await deliver(
        engine,
        CustomerReactivatedV1(
            customer_id=cid,
            version=6,
            by="NV020",
            at=NOW,
            reason="open",
            customer=active(cid, 6, full_name="Công ty TNHH Minh Phát"),
        ),
    )
    held = await row(engine, cid)
    assert held is not None and (held.version, held.status) == (6, "active")


async def test_rejection_and_stale_or_redelivered_events(engine: AsyncEngine) -> None:
    cid = uuid.uuid4()
    first = submission(cid, 2, full_name="Nhà thuốc An Khang")
    await deliver(engine, first)
    rejected = CustomerRejectedV1(
        customer_id=cid, version=3, reason="x", rejected_by="NV020", rejected_at=NOW
    )
    await deliver(engine, rejected)
    held = await row(engine, cid)
    assert held is not None and (held.version, held.status) == (3, "rejected")
    assert held.match_name == "an khang"  # the rest of the row stays

    await deliver(engine, first)  # an older submission, redelivered: changes nothing
    await deliver(engine, rejected)  # the same event again: harmless
    held = await row(engine, cid)
    assert held is not None and (held.version, held.status) == (3, "rejected")

    await deliver(engine, submission(cid, 4, full_name="Nhà thuốc An Khang 2"))
    stale = CustomerUpdatedV1(
        customer_id=cid,
        version=1,
        changed_fields=["full_name"],
        customer=active(cid, 1, full_name="Old name"),
    )
    await deliver(engine, stale)
    held = await row(engine, cid)
    assert held is not None and (held.version, held.status) == (4, "pending")
    assert held.full_name == "Nhà thuốc An Khang 2"


async def test_a_rejection_of_an_unknown_customer_keeps_older_events_out(
    engine: AsyncEngine,
) -> None:
    cid = uuid.uuid4()
    await deliver(
        engine,
        CustomerRejectedV1(
            customer_id=cid, version=3, reason="x", rejected_by="NV020", rejected_at=NOW
        ),
    )
    await deliver(engine, submission(cid, 2, full_name="Đại lý Bình An"))  # late, older
    held = await row(engine, cid)
    assert held is not None and (held.version, held.status, held.full_name) == (3, "rejected", "")


async def test_a_change_request_leaves_the_values_in_force(engine: AsyncEngine) -> None:
    cid = uuid.uuid4()
    await deliver(
        engine,
        CustomerActivatedV1(
            customer_id=cid,
            version=3,
            customer_code="KH900002",
            approved_by="NV020",
            approved_at=NOW,
            customer=active(cid, 3, full_name="Siêu thị Hòa Bình", tax_code="0100109106"),
        ),
    )
    change = submission(
        cid,
        4,
        kind="change",
        full_name="Siêu thị Hòa Bình Mới",
        tax_code="0314409058",
        customer_code="KH900002",
        changes={
            "full_name": {"old": "Siêu thị Hòa Bình", "new": "Siêu thị Hòa Bình Mới"},
            "tax_code": {"old": "0100109106", "new": "0314409058"},
        },
    )
    await deliver(engine, change)
    held = await row(engine, cid)
    assert held is not None
    assert (held.version, held.status, held.full_name, held.tax_code) == (
        4,
        "active",
        "Siêu thị Hòa Bình",
        "0100109106",
    )
