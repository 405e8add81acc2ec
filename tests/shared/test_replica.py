"""The reference replica applies announcements idempotently and never goes backwards."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.events.contracts import ReferenceItemChangedV1, to_cloud_event
from shared.replica import reference_replica_handler, replica_item
from tests.shared.conftest import replica


async def announce(
    engine: AsyncEngine, item: dict[str, Any] | None, *, deleted: bool = False
) -> None:
    event = to_cloud_event(
        ReferenceItemChangedV1(list="payment-terms", code="NET30", item=item, deleted=deleted)
    )
    async with AsyncSession(engine) as session, session.begin():
        await reference_replica_handler(replica)(session, event)


async def held(engine: AsyncEngine) -> dict[str, Any] | None:
    async with AsyncSession(engine) as session:
        return await replica_item(session, replica, "payment-terms", "NET30")


async def test_newer_versions_win_and_older_ones_are_ignored(engine: AsyncEngine) -> None:
    await announce(engine, {"code": "NET30", "name": "30 ngày", "version": 1})
    await announce(engine, {"code": "NET30", "name": "Công nợ 30 ngày", "version": 2})
    await announce(
        engine, {"code": "NET30", "name": "30 ngày", "version": 1}
    )  # a snapshot that overtook the edit
    assert (await held(engine)) == {"code": "NET30", "name": "Công nợ 30 ngày", "version": 2}
    await announce(
        engine, {"code": "NET30", "name": "Công nợ 30 ngày", "version": 2}
    )  # a redelivery
    assert (await held(engine))["version"] == 2  # type: ignore[index]


async def test_items_without_a_version_count_as_the_oldest(engine: AsyncEngine) -> None:
    await announce(engine, {"code": "NET30", "name": "seeded"})
    await announce(engine, {"code": "NET30", "name": "edited", "version": 3})
    await announce(engine, {"code": "NET30", "name": "seeded again"})
    assert (await held(engine))["name"] == "edited"  # type: ignore[index]


async def test_a_deletion_removes_the_item(engine: AsyncEngine) -> None:
    await announce(engine, {"code": "NET30", "name": "x", "version": 1})
    await announce(engine, None, deleted=True)
    assert await held(engine) is None
    async with engine.connect() as conn:
        assert (await conn.execute(select(replica))).all() == []
