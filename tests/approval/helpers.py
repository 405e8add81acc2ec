"""Building customer events and applying them through approval's own handlers.

Every test shares the session's approval database, so tests isolate themselves: each
uses its own province (fuzzy candidates are per province), its own sales unit (queue
filters) and random phones, tax codes and e-mails.
"""

import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from approval.handlers import build_handlers
from approval.settings import ApprovalSettings
from shared.events.contracts import CustomerSubmittedV1, EventData, to_cloud_event

Auth = Callable[[str], dict[str, str]]


def token(prefix: str = "T") -> str:
    """A code no other test uses (a province, a sales unit)."""
    return f"{prefix}{uuid.uuid4().hex[:8].upper()}"


def phone() -> str:
    return f"+8491{random.randrange(10**7):07d}"


def tax_code() -> str:
    return f"{random.randrange(10**10):010d}"


def email() -> str:
    return f"kh.{uuid.uuid4().hex[:10]}@example.vn"


def customer(
    customer_id: uuid.UUID | None = None,
    *,
    full_name: str = "Tạp hóa Hải Yến",
    version: int = 2,
    status: str = "pending_approval",
    province_code: str = "79",
    **fields: Any,
) -> dict[str, Any]:
    """A snapshot with the keys the customer service puts in its events."""
    cid = customer_id or uuid.uuid4()
    return {
        "id": str(cid),
        "customer_code": None,
        "status": status,
        "version": version,
        "full_name": full_name,
        "company_name": None,
        "tax_code": None,
        "phone": None,
        "email": None,
        "address": None,
        "province_code": province_code,
        "sales_unit_code": "HN-T1",
        "owner_employee_id": "NV001",
        **fields,
    }


def submission(
    customer_id: uuid.UUID | None = None,
    version: int = 2,
    by: str = "NV001",
    *,
    kind: str = "new",
    changes: dict[str, Any] | None = None,
    **fields: Any,
) -> CustomerSubmittedV1:
    cid = customer_id or uuid.uuid4()
    status = "active" if kind == "change" else "pending_approval"
    snapshot = customer(cid, version=version, status=fields.pop("status", status), **fields)
    return CustomerSubmittedV1(
        customer_id=cid,
        version=version,
        review_kind=kind,  # type: ignore[arg-type]
        submitted_by=by,
        submitted_at=datetime.now(UTC),
        customer=snapshot,
        changes=changes,
    )


async def deliver(
    engine: AsyncEngine, data: EventData, settings: ApprovalSettings | None = None
) -> None:
    """Apply an event as the consumer does: its handler, in one transaction."""
    handler = build_handlers(settings or ApprovalSettings())[data.TYPE]
    async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
        await handler(session, to_cloud_event(data))


async def review_of(
    api: httpx.AsyncClient, auth: Auth, customer_id: uuid.UUID, status: str = "pending"
) -> dict[str, Any]:
    page = (
        await api.get(
            "/api/v1/reviews",
            params={"customer_id": str(customer_id), "status": status},
            headers=auth("cs1"),
        )
    ).json()
    assert len(page["items"]) == 1, page
    return dict(page["items"][0])
