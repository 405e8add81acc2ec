"""A local replica of reference lists, kept from `ims.reference.events.v1` (ADR 7).

Services that validate or display reference data (customer, approval) keep their own copy
so they keep working while reference is down. Reference announces every change and, at
each start, a snapshot of every list; applying an event is an idempotent upsert.
"""

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Column, MetaData, Table, Text, delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events.contracts import ReferenceItemChangedV1, parse_data
from shared.events.envelope import CloudEvent
from shared.messaging.consumer import Handler


def define_reference_replica(metadata: MetaData) -> Table:
    return Table(
        "ref_items",
        metadata,
        Column("list", Text, primary_key=True),
        Column("code", Text, primary_key=True),
        Column("data", JSONB, nullable=False),
    )


def reference_replica_handler(replica: Table) -> Handler:
    async def on_item_changed(session: AsyncSession, event: CloudEvent) -> None:
        data = parse_data(event, ReferenceItemChangedV1)
        if data.deleted or data.item is None:
            await session.execute(
                delete(replica).where(replica.c.list == data.list, replica.c.code == data.code)
            )
            return
        stmt = insert(replica).values(list=data.list, code=data.code, data=data.item)
        # Never go back: an announcement older than the held version (a snapshot that
        # overtook an edit, a redelivery) changes nothing. Items without a version
        # (announced before versions existed) count as version 0.
        held = func.coalesce(replica.c.data["version"].as_integer(), 0)
        incoming = func.coalesce(stmt.excluded.data["version"].as_integer(), 0)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["list", "code"],
                set_={"data": stmt.excluded.data},
                where=held <= incoming,
            )
        )

    return on_item_changed


ReplicaKey = tuple[str, str]  # (list, code)


async def replica_items(
    session: AsyncSession, replica: Table, keys: Iterable[ReplicaKey]
) -> dict[ReplicaKey, dict[str, Any]]:
    """Many items in one query, as reference announced them; unknown keys are absent.

    What a session has read is remembered for the rest of that session (one request or
    one message), so the checks of one command share a single round trip.
    """
    memo: dict[ReplicaKey, dict[str, Any] | None] = session.info.setdefault(
        ("replica_items", replica.name), {}
    )
    wanted = list(dict.fromkeys(keys))
    missing = [key for key in wanted if key not in memo]
    if missing:
        rows = await session.execute(
            select(replica.c.list, replica.c.code, replica.c.data).where(
                tuple_(replica.c.list, replica.c.code).in_(missing)
            )
        )
        found = {(row.list, row.code): dict(row.data) for row in rows}
        for key in missing:
            memo[key] = found.get(key)
    return {key: item for key in wanted if (item := memo[key]) is not None}


async def replica_item(
    session: AsyncSession, replica: Table, list_name: str, code: str
) -> dict[str, Any] | None:
    """One item as reference announced it, or None when the replica does not know it."""
    return (await replica_items(session, replica, [(list_name, code)])).get((list_name, code))


async def replica_readiness(session: AsyncSession, replica: Table) -> str:
    """'ok' once reference's lists have arrived; before that codes cannot be validated."""
    has_rows = await session.scalar(select(replica.c.code).limit(1))
    return "ok" if has_rows is not None else "empty: waiting for reference's lists"
