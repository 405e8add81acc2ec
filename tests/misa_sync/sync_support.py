"""Helpers for the sync tests: customer events, a worker on the test database, MISA state."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from misa_sync.handlers import HANDLERS
from misa_sync.misa_client import MisaClient
from misa_sync.models import MisaLink
from misa_sync.settings import MisaSyncSettings
from misa_sync.sync_worker import SyncWorker
from shared.events.contracts import (
    CustomerActivatedV1,
    CustomerDeactivatedV1,
    CustomerReactivatedV1,
    CustomerUpdatedV1,
    EventData,
    to_cloud_event,
)
from tests.fixtures.misa_simulator import MisaSimulator


def unique_code(prefix: str = "KH") -> str:
    """Codes differ per test: the session's database (and its mirror) outlives a test."""
    return f"{prefix}{uuid.uuid4().int % 10**9:09d}"


def a_customer(**overrides: Any) -> dict[str, Any]:
    cid = overrides.pop("id", None) or str(uuid.uuid4())
    customer: dict[str, Any] = {
        "id": cid,
        "customer_code": unique_code(),
        "full_name": "Tạp hóa Thu Trang",
        "phone": "+84912345678",
        "email": None,
        "company_name": None,
        "tax_code": None,
        "misa_code": None,
        "status": "active",
        "credit_days": 15,
        "admin_scheme": "2025",
        "delivery_addresses": [],
        "invoice_profiles": [],
    }
    return customer | overrides


def activated(misa_code: str | None = None, version: int = 3, **fields: Any) -> CustomerActivatedV1:
    customer = a_customer(misa_code=misa_code, **fields)
    return CustomerActivatedV1(
        customer_id=uuid.UUID(customer["id"]),
        version=version,
        customer_code=customer["customer_code"],
        approved_by="NV020",
        approved_at=datetime.now(UTC),
        customer=customer,
    )


def updated(
    base: CustomerActivatedV1, version: int, changed: list[str], **fields: Any
) -> CustomerUpdatedV1:
    return CustomerUpdatedV1(
        customer_id=base.customer_id,
        version=version,
        changed_fields=changed,
        customer=base.customer | fields,
    )


def deactivated(base: CustomerActivatedV1, version: int) -> CustomerDeactivatedV1:
    return CustomerDeactivatedV1(
        customer_id=base.customer_id,
        version=version,
        by="NV001",
        at=datetime.now(UTC),
        customer=base.customer | {"status": "inactive"},
    )


def reactivated(base: CustomerActivatedV1, version: int) -> CustomerReactivatedV1:
    return CustomerReactivatedV1(
        customer_id=base.customer_id,
        version=version,
        by="NV001",
        at=datetime.now(UTC),
        customer=base.customer | {"status": "active"},
    )


async def deliver(engine: AsyncEngine, data: EventData) -> None:
    async with AsyncSession(engine) as session, session.begin():
        await HANDLERS[data.TYPE](session, to_cloud_event(data))


def worker_settings(base_url: str, **overrides: Any) -> MisaSyncSettings:
    # One request per call and a breaker that never opens, unless a test asks: the worker's
    # own counting is what these tests look at.
    defaults: dict[str, Any] = {
        "misa_base_url": base_url,
        "misa_retry_max_attempts": 1,
        "misa_circuit_failure_threshold": 1000,
        "misa_rate_limit_per_s": 0,
        "misa_mirror_max_age_s": 0,
        "misa_timeout_s": 2.0,
    }
    return MisaSyncSettings(**(defaults | overrides))


def worker(engine: AsyncEngine, sim: MisaSimulator | str, **overrides: Any) -> SyncWorker:
    base_url = sim if isinstance(sim, str) else sim.base_url
    settings = worker_settings(base_url, **overrides)
    return SyncWorker(
        sessionmaker=async_sessionmaker(engine, expire_on_commit=False),
        client=MisaClient.from_settings(settings),
        settings=settings,
    )


async def sync_all(w: SyncWorker) -> None:
    while await w.sync_one():
        pass


async def make_due(engine: AsyncEngine, customer_id: uuid.UUID) -> None:
    """As time passing would: the link's back-off is over."""
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE misa_links SET next_attempt_at = now() WHERE customer_id = :c"),
            {"c": customer_id},
        )


async def link_of(engine: AsyncEngine, customer_id: uuid.UUID) -> MisaLink:
    async with AsyncSession(engine) as session:
        link = await session.get(MisaLink, customer_id)
        assert link is not None
        return link


async def outbox_types(engine: AsyncEngine, customer_id: uuid.UUID) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.scalars(
            text("SELECT event_type FROM outbox WHERE key = :k ORDER BY id"),
            {"k": str(customer_id)},
        )
        return list(rows)


async def attempts_of(engine: AsyncEngine, customer_id: uuid.UUID) -> list[tuple[str, str | None]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT outcome, error_code FROM misa_attempts WHERE customer_id = :c ORDER BY id"
            ),
            {"c": customer_id},
        )
        return [(r[0], r[1]) for r in rows]


def misa_objects(base_url: str, code: str | None = None) -> list[dict[str, Any]]:
    params = {"code": code} if code is not None else {}
    items: list[dict[str, Any]] = httpx.get(
        f"{base_url}/_sim/account-objects", params=params, timeout=10
    ).json()["items"]
    return items


def seed_misa(base_url: str, **obj: Any) -> dict[str, Any]:
    response = httpx.post(f"{base_url}/_sim/account-objects", json=obj, timeout=10)
    assert response.status_code == 201, response.text
    seeded: dict[str, Any] = response.json()
    return seeded


def arm_fault(base_url: str, mode: str, count: int, **extra: Any) -> None:
    response = httpx.post(
        f"{base_url}/_sim/faults", json={"mode": mode, "count": count, **extra}, timeout=10
    )
    assert response.status_code == 200, response.text
