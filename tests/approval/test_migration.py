"""Migration 0003 on a database that already has reviews: backfill, then down and up."""

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from alembic import command

from shared.db import asyncpg_dsn
from shared.migrations import alembic_config
from tests.fixtures.infra import _admin_dsn, create_database


@pytest.fixture
def database(run_id: str) -> Iterator[str]:
    name = f"ims_test_approval_mig_{run_id}"
    url = create_database(name)
    yield url

    async def drop() -> None:
        conn = await asyncpg.connect(_admin_dsn())
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def snapshot(name: str, **fields: Any) -> str:
    return json.dumps(
        {
            "full_name": name,
            "status": "pending_approval",
            "province_code": "79",
            "sales_unit_code": "HN-T1",
            **fields,
        }
    )


async def _insert_reviews(dsn: str, ids: dict[str, uuid.UUID]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        rows = [
            (
                ids["pending"],
                2,
                "new",
                "pending",
                snapshot("Tạp hóa Hải Yến", phone="+84912000111"),
                None,
            ),
            (ids["approved"], 2, "new", "approved", snapshot("Công ty TNHH Minh Phát"), "KH000001"),
            # an approved change: what the customer became
            (ids["approved"], 5, "change", "approved", snapshot("Minh Phát Mới"), "KH000001"),
            (ids["rejected"], 2, "new", "rejected", snapshot("Đại lý Bình An"), None),
            # a rejected change never applied: the replica keeps the new review's state
            (ids["unchanged"], 2, "new", "approved", snapshot("Nhà thuốc An Khang"), "KH000002"),
            (ids["unchanged"], 4, "change", "rejected", snapshot("Tên bị từ chối"), None),
        ]
        for customer_id, version, kind, status, customer, code in rows:
            await conn.execute(
                "INSERT INTO reviews (id, customer_id, customer_version, kind, status,"
                " submitted_by, submitted_at, customer, customer_code)"
                " VALUES ($1, $2, $3, $4, $5, 'NV001', now(), $6::jsonb, $7)",
                uuid.uuid4(),
                customer_id,
                version,
                kind,
                status,
                customer,
                code,
            )
    finally:
        await conn.close()


async def _read(dsn: str) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
    conn = await asyncpg.connect(dsn)
    try:
        reviews = await conn.fetch(
            "SELECT customer_id, customer_version, full_name, sales_unit, search_text,"
            " duplicates::text AS duplicates, has_duplicates FROM reviews"
        )
        replica = await conn.fetch(
            "SELECT customer_id, version, status, full_name, customer_code, match_name, phone"
            " FROM customers"
        )
        return list(reviews), list(replica)
    finally:
        await conn.close()


def test_0003_backfills_existing_reviews_and_seeds_the_replica(database: str) -> None:
    config = alembic_config("approval", database)
    command.upgrade(config, "0002")
    ids = {k: uuid.uuid4() for k in ("pending", "approved", "rejected", "unchanged")}
    asyncio.run(_insert_reviews(asyncpg_dsn(database), ids))
    command.upgrade(config, "0003")

    reviews, replica = asyncio.run(_read(asyncpg_dsn(database)))
    yen = next(r for r in reviews if r["customer_id"] == ids["pending"])
    assert yen["full_name"] == "Tạp hóa Hải Yến" and yen["sales_unit"] == "HN-T1"
    assert "tap hoa hai yen" in yen["search_text"] and "0912000111" in yen["search_text"]
    assert all(r["duplicates"] == "[]" and r["has_duplicates"] is False for r in reviews)

    held = {r["customer_id"]: r for r in replica}
    assert set(held) == set(ids.values())
    assert (held[ids["pending"]]["status"], held[ids["pending"]]["phone"]) == (
        "pending",
        "+84912000111",
    )
    assert held[ids["approved"]]["status"] == "active"
    assert held[ids["approved"]]["version"] == 5
    assert held[ids["approved"]]["match_name"] == "minh phat moi"
    assert held[ids["approved"]]["customer_code"] == "KH000001"
    assert held[ids["rejected"]]["status"] == "rejected"
    assert held[ids["unchanged"]]["full_name"] == "Nhà thuốc An Khang"

    command.downgrade(config, "0002")
    command.upgrade(config, "head")
