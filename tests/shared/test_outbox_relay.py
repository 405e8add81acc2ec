"""The outbox relay against real PostgreSQL and a real Tansu broker (ARCHITECTURE.md rule 1)."""

import asyncio
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from shared.events.contracts import ReferenceItemChangedV1, to_cloud_event
from shared.messaging.outbox import record_cloud_event
from shared.messaging.relay import OutboxRelay
from tests.shared.conftest import tables
from tests.shared.kafka_helpers import header, read_all


async def add_events(
    engine: AsyncEngine, topic: str, keys: list[str], *, commit: bool = True
) -> list[str]:
    """Record one event per key in a single transaction; returns their ids in order."""
    ids: list[str] = []
    async with AsyncSession(engine) as session, session.begin():
        for seq, key in enumerate(keys):
            event = to_cloud_event(ReferenceItemChangedV1(list=key, code="item", item={"seq": seq}))
            await record_cloud_event(session, tables.outbox, event, topic=topic)
            ids.append(str(event.id))
        if not commit:
            await session.rollback()
    return ids


def relay(engine: AsyncEngine, producer: AIOKafkaProducer, **kw: object) -> OutboxRelay:
    return OutboxRelay(engine=engine, outbox=tables.outbox, producer=producer, service="test", **kw)  # type: ignore[arg-type]


async def unpublished(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            await conn.scalar(select(func.count()).where(tables.outbox.c.published_at.is_(None)))
            or 0
        )


async def test_committed_events_are_published_with_their_envelope(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    ids = await add_events(engine, fresh_topic, ["channels", "channels", "payment-terms"])
    assert await relay(engine, producer).publish_batch() == 3
    assert await unpublished(engine) == 0

    records = await read_all(kafka_bootstrap, fresh_topic, expect=3)
    assert sorted(header(r, "ce_id") for r in records) == sorted(ids)
    first = next(r for r in records if header(r, "ce_id") == ids[0])
    assert header(first, "ce_type") == "ims.reference.ItemChanged.v1"
    assert first.key == b"channels/item"


async def test_a_rolled_back_transaction_publishes_nothing(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    await add_events(engine, fresh_topic, ["a", "b"], commit=False)
    assert await relay(engine, producer).publish_batch() == 0
    assert await read_all(kafka_bootstrap, fresh_topic, expect=1, timeout_s=1.5) == []


class CrashBeforeCommit(OutboxRelay):
    """A relay that dies after the broker acknowledged but before marking rows sent."""

    async def _mark_published(self, conn: AsyncConnection, ids: list[int]) -> None:
        raise RuntimeError("relay crashed")


async def test_relay_crash_after_send_republishes_and_loses_nothing(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    ids = await add_events(engine, fresh_topic, ["k1", "k2", "k3"])
    crashing = CrashBeforeCommit(
        engine=engine, outbox=tables.outbox, producer=producer, service="test"
    )
    with pytest.raises(RuntimeError):
        await crashing.publish_batch()
    assert await unpublished(engine) == 3  # nothing marked sent

    assert await relay(engine, producer).publish_batch() == 3
    assert await unpublished(engine) == 0
    records = await read_all(kafka_bootstrap, fresh_topic, expect=6)
    seen = [header(r, "ce_id") for r in records]
    assert sorted(set(seen)) == sorted(ids)  # every event arrived
    assert len(seen) == 6  # each twice: a duplicate, never a loss


async def test_per_key_order_holds_with_two_concurrent_relays(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    keys = [f"customer-{i % 5}" for i in range(300)]
    ids = await add_events(engine, fresh_topic, keys)
    expected: dict[str, list[str]] = defaultdict(list)
    for key, event_id in zip(keys, ids, strict=True):
        expected[key].append(event_id)

    a, b = relay(engine, producer, batch_size=40), relay(engine, producer, batch_size=40)

    async def drain(r: OutboxRelay) -> None:
        while await unpublished(engine):
            await r.publish_batch()
            await asyncio.sleep(0)

    await asyncio.gather(drain(a), drain(b))
    records = await read_all(kafka_bootstrap, fresh_topic, expect=300)
    got: dict[str, list[str]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        got[record.key.decode().split("/")[0]].append(header(record, "ce_id") or "")
    assert len(records) == 300
    assert dict(got) == dict(expected)


async def test_notify_wakes_the_relay_without_waiting_for_the_poll(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    running = asyncio.create_task(relay(engine, producer, poll_interval_s=60).run())
    try:
        await asyncio.sleep(0.5)  # let it drain and start listening
        await add_events(engine, fresh_topic, ["woken"])
        records = await read_all(kafka_bootstrap, fresh_topic, expect=1, timeout_s=5)
        assert len(records) == 1
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running


async def test_an_unreachable_broker_keeps_the_rows_until_it_is_back(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    ids = await add_events(engine, fresh_topic, ["x"])
    dead = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", request_timeout_ms=500)
    with pytest.raises(TimeoutError):
        await relay(engine, dead, send_timeout_s=1.0).publish_batch()
    await dead.stop()
    assert await unpublished(engine) == 1
    assert await relay(engine, producer).publish_batch() == 1  # the broker is back
    assert [
        header(r, "ce_id") for r in await read_all(kafka_bootstrap, fresh_topic, expect=1)
    ] == ids
