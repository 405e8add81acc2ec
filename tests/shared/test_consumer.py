"""The idempotent consumer against real PostgreSQL and Tansu (ARCHITECTURE.md rule 2)."""

import asyncio
import re
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.events.contracts import ReferenceItemChangedV1, to_cloud_event
from shared.events.envelope import CloudEvent
from shared.messaging.consumer import EventConsumer, Handler, PermanentError
from shared.messaging.kafka import ensure_topics
from shared.replica import reference_replica_handler
from tests.shared.conftest import applied, replica, tables
from tests.shared.kafka_helpers import header, read_all

TYPE = ReferenceItemChangedV1.TYPE


async def produce(producer: AIOKafkaProducer, topic: str, event: CloudEvent) -> None:
    await producer.send_and_wait(
        topic, event.kafka_value(), key=event.subject.encode(), headers=event.kafka_headers()
    )


def an_event(note: str = "x") -> CloudEvent:
    return to_cloud_event(ReferenceItemChangedV1(list="channels", code=note, item={"note": note}))


def consumer_for(
    engine: AsyncEngine,
    producer: AIOKafkaProducer,
    kafka_bootstrap: str,
    topic: str,
    handler: Handler,
    *,
    group: str | None = None,
    cls: type[EventConsumer] = EventConsumer,
    parallel_partitions: int = 3,
) -> EventConsumer:
    return cls(
        name="test",
        group_id=group or f"g-{uuid.uuid4().hex[:8]}",
        topics=[topic],
        handlers={TYPE: handler},
        sessionmaker=async_sessionmaker(engine),
        inbox=tables.inbox,
        producer=producer,
        bootstrap_servers=kafka_bootstrap,
        max_attempts=3,
        retry_base_delay_s=0.01,
        parallel_partitions=parallel_partitions,
    )


async def record_handler(session: AsyncSession, event: CloudEvent) -> None:
    await session.execute(insert(applied).values(event_id=event.id, note=event.data["code"]))


def failing_on_poison(calls: list[str], message: str = "cannot apply") -> Handler:
    """A handler that notes each event's code and writes its row, then fails on the event
    coded 'poison' (its row is then rolled back with it)."""

    async def handler(session: AsyncSession, event: CloudEvent) -> None:
        calls.append(event.data["code"])
        await record_handler(session, event)
        if event.data["code"] == "poison":
            raise RuntimeError(message)

    return handler


async def count(engine: AsyncEngine, table: object) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


async def records_of(
    kafka_bootstrap: str, topic: str, n: int
) -> list[ConsumerRecord[bytes, bytes]]:
    records = await read_all(kafka_bootstrap, topic, expect=n)
    assert len(records) >= n
    return sorted(records, key=lambda r: (r.partition, r.offset))


async def _run_until_caught_up(
    consumer: EventConsumer, *topics: str, timeout_s: float = 90
) -> None:
    """Run the consumer's loop until it has read each of `topics` to its end, then stop it."""
    task = asyncio.create_task(consumer.run())
    try:
        async with asyncio.timeout(timeout_s):
            while not set(topics) <= consumer.caught_up:
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_the_same_event_delivered_twice_is_applied_once(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    event = an_event()
    await produce(producer, fresh_topic, event)
    await produce(producer, fresh_topic, event)
    consumer = consumer_for(engine, producer, kafka_bootstrap, fresh_topic, record_handler)
    for record in await records_of(kafka_bootstrap, fresh_topic, 2):
        await consumer.process(record)
    assert await count(engine, applied) == 1
    assert await count(engine, tables.inbox) == 1


async def test_an_unparseable_message_goes_to_the_dlq_with_the_reason(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    await producer.send_and_wait(
        fresh_topic, b"{garbage", key=b"k", headers=[("ce_specversion", b"1.0")]
    )
    consumer = consumer_for(engine, producer, kafka_bootstrap, fresh_topic, record_handler)
    for record in await records_of(kafka_bootstrap, fresh_topic, 1):
        await consumer.process(record)
    dead = await records_of(kafka_bootstrap, f"{fresh_topic}.dlq", 1)
    assert dead[0].value == b"{garbage"
    assert "malformed" in (header(dead[0], "x-error") or "")
    assert header(dead[0], "x-original-topic") == fresh_topic
    assert await count(engine, applied) == 0


async def test_a_failing_handler_is_retried_then_dead_lettered_and_the_next_event_still_applies(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    calls: list[str] = []
    handler = failing_on_poison(calls, "cannot apply 0912345678")

    poison, good = an_event("poison"), an_event("good")
    await produce(producer, fresh_topic, poison)
    await produce(producer, fresh_topic, good)
    consumer = consumer_for(engine, producer, kafka_bootstrap, fresh_topic, handler)
    for record in await records_of(kafka_bootstrap, fresh_topic, 2):
        await consumer.process(record)

    assert calls.count("poison") == 3 and calls.count("good") == 1
    async with engine.connect() as conn:
        notes = set((await conn.scalars(select(applied.c.note))).all())
    assert notes == {"good"}  # the poison's writes were rolled back with its inbox row
    dead = await records_of(kafka_bootstrap, f"{fresh_topic}.dlq", 1)
    assert header(dead[0], "ce_id") == str(poison.id)
    assert header(dead[0], "x-attempts") == "3"
    # The type and where it was raised: an exception's message may quote payload values.
    reason = header(dead[0], "x-error") or ""
    assert re.fullmatch(r"RuntimeError at test_consumer\.py:\d+", reason), reason


async def test_a_transient_failure_is_retried_and_applied_once(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    failures = [RuntimeError("database hiccup")]

    async def flaky(session: AsyncSession, event: CloudEvent) -> None:
        await record_handler(session, event)
        if failures:
            raise failures.pop()

    await produce(producer, fresh_topic, an_event())
    consumer = consumer_for(engine, producer, kafka_bootstrap, fresh_topic, flaky)
    for record in await records_of(kafka_bootstrap, fresh_topic, 1):
        await consumer.process(record)
    assert await count(engine, applied) == 1
    assert await read_all(kafka_bootstrap, f"{fresh_topic}.dlq", expect=1, timeout_s=1) == []


async def test_a_permanent_error_skips_the_retries(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    calls = 0

    async def refuse(session: AsyncSession, event: CloudEvent) -> None:
        nonlocal calls
        calls += 1
        raise PermanentError("references a list we do not know")

    await produce(producer, fresh_topic, an_event())
    consumer = consumer_for(engine, producer, kafka_bootstrap, fresh_topic, refuse)
    for record in await records_of(kafka_bootstrap, fresh_topic, 1):
        await consumer.process(record)
    assert calls == 1
    dead = await records_of(kafka_bootstrap, f"{fresh_topic}.dlq", 1)
    assert header(dead[0], "x-attempts") == "1"


async def test_unknown_event_types_are_skipped(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    event = CloudEvent(source="/elsewhere", type="ims.other.Thing.v1", subject="s", data={})
    await produce(producer, fresh_topic, event)
    consumer = consumer_for(engine, producer, kafka_bootstrap, fresh_topic, record_handler)
    for record in await records_of(kafka_bootstrap, fresh_topic, 1):
        await consumer.process(record)
    assert await count(engine, tables.inbox) == 0


class Crash(BaseException):
    """Stands for the process dying (not an error the consumer would handle)."""


class CrashAfterApplying(EventConsumer):
    async def process_batch(
        self, records: Sequence[ConsumerRecord[bytes, bytes]], **options: Any
    ) -> int | None:
        await super().process_batch(records, **options)  # the database transaction commits...
        raise Crash  # ...and the process dies before committing the offset


async def test_a_crash_before_the_offset_commit_redelivers_and_the_inbox_absorbs_it(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    calls = 0

    async def counting(session: AsyncSession, event: CloudEvent) -> None:
        nonlocal calls
        calls += 1
        await record_handler(session, event)

    await produce(producer, fresh_topic, an_event("once"))
    group = f"g-{uuid.uuid4().hex[:8]}"
    first = consumer_for(
        engine,
        producer,
        kafka_bootstrap,
        fresh_topic,
        counting,
        group=group,
        cls=CrashAfterApplying,
    )
    with pytest.raises(Crash):
        await asyncio.wait_for(first.run(), 30)
    assert calls == 1

    second = consumer_for(
        engine, producer, kafka_bootstrap, fresh_topic, counting, group=group, cls=Recording
    )
    task = asyncio.create_task(second.run())
    try:
        async with asyncio.timeout(30):
            while not (isinstance(second, Recording) and second.seen) or not await _committed(
                kafka_bootstrap, group, fresh_topic
            ):
                await asyncio.sleep(0.2)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert calls == 1  # redelivered, recognised as a duplicate, not applied again
    assert await count(engine, applied) == 1


class Recording(EventConsumer):
    """Remembers the offsets it processed."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.seen: list[int] = []

    async def process_batch(
        self, records: Sequence[ConsumerRecord[bytes, bytes]], **options: Any
    ) -> int | None:
        done = await super().process_batch(records, **options)
        self.seen.extend(record.offset for record in records)
        return done


async def _committed(bootstrap: str, group: str, topic: str) -> bool:
    """Whether the group committed an offset past the record (asked without joining it)."""
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await probe.start()
    try:
        await probe.topics()
        partitions = probe.partitions_for_topic(topic) or set()
        for p in partitions:
            if (await probe.committed(TopicPartition(topic, p)) or 0) > 0:
                return True
        return False
    finally:
        await probe.stop()


async def test_a_database_outage_waits_instead_of_dead_lettering(
    producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    down = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    await produce(producer, fresh_topic, an_event())
    consumer = consumer_for(down, producer, kafka_bootstrap, fresh_topic, record_handler)
    [record] = await records_of(kafka_bootstrap, fresh_topic, 1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(consumer.process(record), 2.0)  # still waiting, not given up
    assert await read_all(kafka_bootstrap, f"{fresh_topic}.dlq", expect=1, timeout_s=1) == []
    await down.dispose()


async def test_dead_letter_reasons_do_not_quote_payload_values(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    from shared.events.contracts import parse_data

    async def strict(session: AsyncSession, event: CloudEvent) -> None:
        parse_data(event, ReferenceItemChangedV1)

    bad = CloudEvent(
        source="/x",
        type=TYPE,
        subject="s",
        data={"list": "c", "code": ["0912345678"], "item": None},
    )
    await produce(producer, fresh_topic, bad)
    consumer = consumer_for(engine, producer, kafka_bootstrap, fresh_topic, strict)
    for record in await records_of(kafka_bootstrap, fresh_topic, 1):
        await consumer.process(record)
    [dead] = await records_of(kafka_bootstrap, f"{fresh_topic}.dlq", 1)
    reason = header(dead, "x-error") or ""
    assert reason.startswith("ValidationError: code") and "0912345678" not in reason


async def test_caught_up_only_after_everything_published_before_start_is_applied(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    """What readiness relies on: a replica is complete once its consumer has caught up."""
    backlog = 40
    for i in range(backlog):
        await produce(producer, fresh_topic, an_event(f"backlog-{i}"))
    applied_when_caught_up: list[int] = []

    class Watching(EventConsumer):
        async def _note_caught_up(self, consumer: AIOKafkaConsumer) -> None:
            before = set(self.caught_up)
            await super()._note_caught_up(consumer)
            if fresh_topic in self.caught_up - before:
                applied_when_caught_up.append(await count(engine, applied))

    consumer = consumer_for(
        engine, producer, kafka_bootstrap, fresh_topic, record_handler, cls=Watching
    )
    assert fresh_topic not in consumer.caught_up
    task = asyncio.create_task(consumer.run())
    try:
        async with asyncio.timeout(30):
            # Wait for the count taken at that moment, not just the flag: the subclass
            # counts after the flag is set, and cancelling in between would lose it.
            while not applied_when_caught_up:
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert fresh_topic in consumer.caught_up
    assert applied_when_caught_up[0] >= backlog


@pytest.mark.parametrize(
    ("code", "item"),
    [
        ("nul\x00 0912345678", {"n": 1}),  # PostgreSQL text cannot hold NUL (22021)
        ("json-nul", {"n": "\x00 0912345678"}),  # nor jsonb a \u0000 escape (22P05)
    ],
)
async def test_values_the_database_refuses_are_dead_lettered_at_once_without_quoting_them(
    engine: AsyncEngine,
    producer: AIOKafkaProducer,
    fresh_topic: str,
    kafka_bootstrap: str,
    code: str,
    item: dict[str, object],
) -> None:
    """A data exception is the event's own fault: retrying it would hold the partition."""
    bad = to_cloud_event(ReferenceItemChangedV1(list="channels", code=code, item=item))
    await produce(producer, fresh_topic, bad)
    await produce(producer, fresh_topic, an_event("after"))
    consumer = consumer_for(
        engine, producer, kafka_bootstrap, fresh_topic, reference_replica_handler(replica)
    )
    consumer._retry_base_delay_s = 5.0  # a retry would show as a timeout below
    async with asyncio.timeout(4):
        for record in await records_of(kafka_bootstrap, fresh_topic, 2):
            await consumer.process(record)
    [dead] = await records_of(kafka_bootstrap, f"{fresh_topic}.dlq", 1)
    reason = header(dead, "x-error") or ""
    assert reason.startswith("DBAPIError: ") and "SQLSTATE 22" in reason
    assert "0912345678" not in reason
    assert header(dead, "x-attempts") == "1"
    async with engine.connect() as conn:
        assert (await conn.scalars(select(replica.c.code))).all() == ["after"]


async def test_a_value_too_big_for_the_dlq_with_its_headers_is_dead_lettered_without_it(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    """Just under the size limit, the DLQ's extra headers push it over: without this the
    record failed to dead-letter, came back and stopped its partition for good."""
    headers = [("ce_specversion", b"1.0"), ("ce_id", b"not-a-uuid")]
    value = b"x" * (1_048_576 - 160)  # the producer's limit less its framing
    await producer.send_and_wait(fresh_topic, value, key=b"k", headers=headers)
    consumer = consumer_for(engine, producer, kafka_bootstrap, fresh_topic, record_handler)
    [record] = await records_of(kafka_bootstrap, fresh_topic, 1)
    await consumer.process(record)
    [dead] = await records_of(kafka_bootstrap, f"{fresh_topic}.dlq", 1)
    assert dead.value is None
    assert header(dead, "x-value-omitted") == f"{len(value)} bytes: too large"
    assert (header(dead, "x-error") or "").startswith("malformed: missing headers")


async def test_a_burst_of_poison_is_dead_lettered_before_its_offsets_are_committed(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    """Dead-letter writes are acknowledged together before the commit, not one by one."""
    for i in range(30):
        await producer.send_and_wait(fresh_topic, b"{broken", key=f"k{i}".encode())
    await produce(producer, fresh_topic, an_event("valid"))
    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = consumer_for(
        engine, producer, kafka_bootstrap, fresh_topic, record_handler, group=group
    )
    await _run_until_caught_up(consumer, fresh_topic, timeout_s=30)
    dead = await records_of(kafka_bootstrap, f"{fresh_topic}.dlq", 30)
    assert (
        len({(header(r, "x-original-partition"), header(r, "x-original-offset")) for r in dead})
        == 30
    )
    assert await count(engine, applied) == 1
    assert await _committed(kafka_bootstrap, group, fresh_topic)


async def test_a_malformed_record_is_not_logged_under_the_previous_events_ids(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    good = an_event("first").model_copy(update={"correlation_id": "corr-of-the-first"})
    await produce(producer, fresh_topic, good)
    await producer.send_and_wait(fresh_topic, b"{broken", key=good.subject.encode())
    consumer = consumer_for(engine, producer, kafka_bootstrap, fresh_topic, record_handler)
    first, broken = await records_of(kafka_bootstrap, fresh_topic, 2)
    await consumer.process(first)
    assert structlog.contextvars.get_contextvars()["event_id"] == str(good.id)
    await consumer.process(broken)
    bound = structlog.contextvars.get_contextvars()
    assert "event_id" not in bound and "event_type" not in bound
    assert bound["correlation_id"] != "corr-of-the-first"


class _NoPartitions:
    """An aiokafka consumer as seen by an instance the group gave nothing to."""

    def assignment(self) -> set[TopicPartition]:
        return set()


async def test_an_instance_given_no_partitions_becomes_caught_up_after_a_while(
    engine: AsyncEngine, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    consumer = EventConsumer(
        name="idle",
        group_id="g-idle",
        topics=["t-idle"],
        handlers={},
        sessionmaker=async_sessionmaker(engine),
        inbox=tables.inbox,
        producer=producer,
        bootstrap_servers=kafka_bootstrap,
        idle_caught_up_after_s=0.2,
    )
    await consumer._note_caught_up(_NoPartitions())  # type: ignore[arg-type]
    assert "t-idle" not in consumer.caught_up  # maybe not joined yet
    await asyncio.sleep(0.3)
    await consumer._note_caught_up(_NoPartitions())  # type: ignore[arg-type]
    assert "t-idle" in consumer.caught_up


# --- A fetch applied together (ADR 0015) ---

#: A fetch holds one partition's records: the batch tests send everything under one key.
ONE_KEY = b"one-partition"


async def produce_to_one_partition(
    producer: AIOKafkaProducer, topic: str, event: CloudEvent
) -> None:
    await producer.send_and_wait(
        topic, event.kafka_value(), key=ONE_KEY, headers=event.kafka_headers()
    )


async def test_a_batch_is_applied_in_one_transaction(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    for i in range(20):
        await produce_to_one_partition(producer, fresh_topic, an_event(f"e{i}"))
    consumer = consumer_for(engine, producer, kafka_bootstrap, fresh_topic, record_handler)
    await consumer.process_batch(await records_of(kafka_bootstrap, fresh_topic, 20))
    assert await count(engine, applied) == 20
    async with engine.connect() as conn:
        # now() is the transaction's start: one value means one transaction for all 20.
        stamps = (await conn.scalars(select(tables.inbox.c.processed_at).distinct())).all()
    assert len(stamps) == 1


async def test_a_failure_in_a_batch_rolls_it_back_and_each_record_is_applied_on_its_own(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    calls: list[str] = []
    handler = failing_on_poison(calls)

    notes = ["a", "b", "poison", "c"]
    events = [an_event(note) for note in notes]
    for event in events:
        await produce_to_one_partition(producer, fresh_topic, event)
    consumer = consumer_for(engine, producer, kafka_bootstrap, fresh_topic, handler)
    await consumer.process_batch(await records_of(kafka_bootstrap, fresh_topic, 4))

    async with engine.connect() as conn:
        kept = sorted((await conn.scalars(select(applied.c.note))).all())
    assert kept == ["a", "b", "c"]  # written once each; the poison's writes rolled back
    # The batch ran a, b and poison; then each alone: a, b once more, poison 3 times, c.
    assert calls == ["a", "b", "poison", "a", "b", "poison", "poison", "poison", "c"]
    assert await count(engine, tables.inbox) == 3
    [dead] = await records_of(kafka_bootstrap, f"{fresh_topic}.dlq", 1)
    assert header(dead, "ce_id") == str(events[2].id)
    assert header(dead, "x-attempts") == "3"


async def test_a_batch_applies_an_event_it_holds_twice_once_and_skips_one_seen_before(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    seen_before, twice, new = an_event("old"), an_event("twice"), an_event("new")
    for event in (seen_before, twice, twice, new, seen_before):
        await produce_to_one_partition(producer, fresh_topic, event)
    consumer = consumer_for(engine, producer, kafka_bootstrap, fresh_topic, record_handler)
    records = await records_of(kafka_bootstrap, fresh_topic, 5)
    await consumer.process(records[0])
    await consumer.process_batch(records[1:])
    async with engine.connect() as conn:
        kept = sorted((await conn.scalars(select(applied.c.note))).all())
    assert kept == ["new", "old", "twice"]
    assert await count(engine, tables.inbox) == 3


async def test_a_batch_dead_letters_its_malformed_records_once_and_skips_unknown_types(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    unknown = CloudEvent(source="/elsewhere", type="ims.other.Thing.v1", subject="s", data={})
    await produce_to_one_partition(producer, fresh_topic, an_event("first"))
    await producer.send_and_wait(fresh_topic, b"{broken", key=ONE_KEY)
    await produce_to_one_partition(producer, fresh_topic, unknown)
    await produce_to_one_partition(producer, fresh_topic, an_event("last"))
    consumer = consumer_for(engine, producer, kafka_bootstrap, fresh_topic, record_handler)
    await consumer.process_batch(await records_of(kafka_bootstrap, fresh_topic, 4))
    async with engine.connect() as conn:
        kept = sorted((await conn.scalars(select(applied.c.note))).all())
    assert kept == ["first", "last"]
    dead = await read_all(kafka_bootstrap, f"{fresh_topic}.dlq", expect=2, timeout_s=2)
    assert [header(r, "x-original-offset") for r in dead] == ["1"]


async def test_a_partition_revoked_during_the_one_by_one_path_stops_between_records(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    """Its new owner takes the rest: nothing more is applied or dead-lettered here, and the
    offset to commit is the last record dealt with."""
    calls: list[str] = []
    handler = failing_on_poison(calls)

    for note in ("a", "poison", "c"):
        await produce_to_one_partition(producer, fresh_topic, an_event(note))
    records = await records_of(kafka_bootstrap, fresh_topic, 3)
    answers = iter([True, True, False])  # at the start, before "a", before "poison"
    consumer = consumer_for(engine, producer, kafka_bootstrap, fresh_topic, handler)
    done = await consumer.process_batch(records, still_assigned=lambda: next(answers))

    assert done == records[0].offset
    assert calls == ["a", "poison", "a"]  # the failed batch, then "a" alone
    async with engine.connect() as conn:
        assert (await conn.scalars(select(applied.c.note))).all() == ["a"]
    assert await read_all(kafka_bootstrap, f"{fresh_topic}.dlq", expect=1, timeout_s=1) == []


async def test_a_batch_answers_the_offset_to_commit(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    for note in ("a", "b"):
        await produce_to_one_partition(producer, fresh_topic, an_event(note))
    records = await records_of(kafka_bootstrap, fresh_topic, 2)
    consumer = consumer_for(engine, producer, kafka_bootstrap, fresh_topic, record_handler)
    assert await consumer.process_batch(records, still_assigned=lambda: False) is None
    assert await count(engine, applied) == 0  # revoked before it started: nothing done
    assert await consumer.process_batch(records) == records[-1].offset
    assert await count(engine, applied) == 2


# ---- partitions side by side (ADR 0016) ------------------------------------------------------

#: More than one fetch's worth (200 records), so that side by side needs the top-up.
PER_PARTITION = 250


async def _fill_partitions(producer: AIOKafkaProducer, topic: str, tag: str = "") -> None:
    """PER_PARTITION events on each of the topic's three partitions, numbered in order."""
    for p in range(3):
        for i in range(PER_PARTITION):
            event = an_event(f"{tag}p{p}-{i:03d}")
            await producer.send(
                topic,
                event.kafka_value(),
                key=event.subject.encode(),
                headers=event.kafka_headers(),
                partition=p,
            )
    await producer.flush()


class RoundsSeen(EventConsumer):
    """Notes which partitions each round applied, and what each batch held."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.rounds: list[set[int]] = []
        self.seen: list[tuple[int, int]] = []

    async def _fetch(
        self, consumer: AIOKafkaConsumer
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        batches = await super()._fetch(consumer)
        if batches:
            self.rounds.append({tp.partition for tp in batches})
        return batches

    async def process_batch(
        self, records: Sequence[ConsumerRecord[bytes, bytes]], **options: Any
    ) -> int | None:
        self.seen.extend((r.partition, r.offset) for r in records)
        return await super().process_batch(records, **options)


async def _committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await probe.start()
    try:
        return {p: await probe.committed(TopicPartition(topic, p)) or 0 for p in range(3)}
    finally:
        await probe.stop()


@pytest.mark.parametrize("parallel", [1, 3])
async def test_partitions_are_applied_side_by_side_each_in_its_order(
    engine: AsyncEngine,
    producer: AIOKafkaProducer,
    fresh_topic: str,
    kafka_bootstrap: str,
    parallel: int,
) -> None:
    await _fill_partitions(producer, fresh_topic)
    in_flight, most_at_once = 0, 0
    order: dict[str, list[int]] = {"p0": [], "p1": [], "p2": []}

    async def slow_handler(session: AsyncSession, event: CloudEvent) -> None:
        nonlocal in_flight, most_at_once
        in_flight += 1
        most_at_once = max(most_at_once, in_flight)
        try:
            await asyncio.sleep(0.001)  # a database round trip, during which others run
            partition, number = event.data["code"].split("-")
            order[partition].append(int(number))
            await record_handler(session, event)
        finally:
            in_flight -= 1

    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = consumer_for(
        engine,
        producer,
        kafka_bootstrap,
        fresh_topic,
        slow_handler,
        group=group,
        cls=RoundsSeen,
        parallel_partitions=parallel,
    )
    assert isinstance(consumer, RoundsSeen)
    await _run_until_caught_up(consumer, fresh_topic)

    if parallel == 1:
        assert most_at_once == 1
    else:
        # The top-up: a fetch hands back one partition's 200 records, and the others'
        # buffered records join them in the same round.
        assert max(len(partitions) for partitions in consumer.rounds) == 3
        assert most_at_once >= 2  # one by one, it would never exceed 1
    # Kafka's promise is kept: within a partition, the records' order.
    assert order == {p: list(range(PER_PARTITION)) for p in order}
    assert sorted(consumer.seen) == [(p, o) for p in range(3) for o in range(PER_PARTITION)]
    assert await count(engine, applied) == 3 * PER_PARTITION
    assert await _committed_offsets(kafka_bootstrap, group, fresh_topic) == {
        p: PER_PARTITION for p in range(3)
    }


async def test_a_partition_whose_batch_fails_returns_while_the_others_stay_committed(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    """A batch that raises (its dead-letter write failed) is read again after the restart;
    the batches applied beside it keep their commits, so they are not read again."""
    await _fill_partitions(producer, fresh_topic)
    failed_in_round: list[int] = []

    class FailingOnce(RoundsSeen):
        async def process_batch(
            self, records: Sequence[ConsumerRecord[bytes, bytes]], **options: Any
        ) -> int | None:
            if records and records[0].partition == 1 and not failed_in_round:
                failed_in_round.append(len(self.rounds) - 1)
                raise RuntimeError("dead-letter write not acknowledged")
            return await super().process_batch(records, **options)

    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = consumer_for(
        engine, producer, kafka_bootstrap, fresh_topic, record_handler, group=group, cls=FailingOnce
    )
    assert isinstance(consumer, FailingOnce)
    await _run_until_caught_up(consumer, fresh_topic)

    [round_of_failure] = failed_in_round
    # Partition 1's batch failed beside the others' ...
    assert consumer.rounds[round_of_failure] == {0, 1, 2}
    # ... which were applied and committed: after the restart none of their records came
    # back, and partition 1's came back once, from where it failed.
    assert sorted(consumer.seen) == [(p, o) for p in range(3) for o in range(PER_PARTITION)]
    assert await count(engine, applied) == 3 * PER_PARTITION
    assert await _committed_offsets(kafka_bootstrap, group, fresh_topic) == {
        p: PER_PARTITION for p in range(3)
    }


async def test_batches_of_different_topics_take_turns(
    engine: AsyncEngine, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    """Two topics can carry the same key (the customer service reads approval's and
    misa_sync's events, both keyed by customer): their batches never run at once."""
    topics = [f"test.{uuid.uuid4().hex[:10]}.v1" for _ in range(2)]
    await ensure_topics(kafka_bootstrap, [*topics, *(f"{t}.dlq" for t in topics)], partitions=3)
    for tag, topic in zip("ab", topics, strict=True):
        await _fill_partitions(producer, topic, tag)
    running: set[str] = set()
    overlaps: list[set[str]] = []

    async def handler(session: AsyncSession, event: CloudEvent) -> None:
        topic = event.data["code"][0]  # its tag: a or b
        running.add(topic)
        try:
            if len(running) > 1:
                overlaps.append(set(running))
            await asyncio.sleep(0.001)
            await record_handler(session, event)
        finally:
            running.discard(topic)

    # One consumer over both topics, as a service runs it.
    consumer = EventConsumer(
        name="test",
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        topics=topics,
        handlers={TYPE: handler},
        sessionmaker=async_sessionmaker(engine),
        inbox=tables.inbox,
        producer=producer,
        bootstrap_servers=kafka_bootstrap,
    )
    await _run_until_caught_up(consumer, *topics)
    assert overlaps == []
    assert await count(engine, applied) == 2 * 3 * PER_PARTITION
