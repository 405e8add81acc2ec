"""The idempotent consumer (ARCHITECTURE.md rule 2).

For every record: parse the CloudEvent; in ONE database transaction insert the event id
into the inbox (a duplicate inserts nothing and is skipped) and run the handler; commit;
only then commit the Kafka offset. A handler that keeps failing is retried a bounded
number of times, then the record goes to `<topic>.dlq` with the reason and the consumer
moves on, so no partition is ever stuck. Unknown `ce_type`s are skipped.

The records of one fetch (one partition, in order) are first applied together: one
transaction, one inbox insert, one commit for all (ADR 0015). If anything in it fails,
it is rolled back whole and each record takes the one-at-a-time path above, with its
own retries and dead-lettering; so a batch changes the cost, never the outcome.

The partitions of one topic are independent (ordering is per partition, and records are
keyed, so a key lives in one partition of a topic), so each round applies one fetched
batch per partition of a topic side by side, each in its own transaction, up to
`parallel_partitions` at once (ADR 0016): while one waits on PostgreSQL, another runs its
Python. Different topics can carry the same key (the customer service reads approval's
and misa_sync's events, both keyed by customer), so their batches still take turns.
"""

import asyncio
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from pydantic import ValidationError
from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import metrics
from shared.events.envelope import CloudEvent, MalformedEventError
from shared.events.topics import dlq
from shared.logging import bind_correlation_id, get_logger
from shared.tracing import consuming

log = get_logger(__name__)

#: Characters of a dead-letter reason kept in its `x-error` header.
_MAX_REASON = 2000
#: Records fetched per partition and applied as one batch.
_BATCH_RECORDS = 200

Handler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]


@dataclass(slots=True)
class _DeadLetterWrites:
    """One batch's dead-letter writes not yet acknowledged by the broker. They are awaited
    only before its offset is committed, so a burst of poison is one produce round trip,
    not one per record (which held the valid events behind it)."""

    acks: list[asyncio.Future[object]] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Malformed:
    """A record that is no CloudEvent: dead-lettered with this reason."""

    reason: str


@dataclass(frozen=True, slots=True)
class _Parsed:
    """A record whose event has a handler: ready to be applied."""

    record: ConsumerRecord[bytes, bytes]
    event: CloudEvent
    handler: Handler


class PermanentError(Exception):
    """The event can never be applied (retrying is pointless): dead-letter it now.

    Its message is the dead-letter reason as is, so it must not quote the payload."""


def _sqlstate(exc: DBAPIError) -> str:
    return str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")


def describe(exc: BaseException) -> str:
    """A dead-letter reason that names what failed without quoting the payload's values."""
    if isinstance(exc, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['type']}" for e in exc.errors()
        )
        return f"ValidationError: {problems}"
    if isinstance(exc, PermanentError | MalformedEventError):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, DBAPIError):
        # The message and the statement's parameters quote the values: name the error only.
        driver_error = exc.orig.__cause__ if exc.orig is not None else None
        name = type(driver_error or exc.orig).__name__
        return f"{type(exc).__name__}: {name} (SQLSTATE {_sqlstate(exc) or 'unknown'})"
    # Other messages may quote values (e.g. int("0912...")): say where it was raised instead.
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"


# SQLSTATE classes of errors the event's own values cause, the same on every attempt: data
# exceptions (22: a NUL byte, an integer out of range, invalid JSON text) and program
# limits (54: a value too deeply nested or too long for an index).
_POISON_SQLSTATE_PREFIXES = ("22", "54")

# SQLSTATE classes and codes meaning "the database cannot serve us now", not "bad event":
# connection exceptions (08), insufficient resources (53), operator intervention such as
# a restart or failover (57P01-57P03), and "the database system is starting up".
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "53", "57P0")


class DatabaseUnavailableError(Exception):
    """The inbox could not even be written: wait for the database, never dead-letter."""


def is_infrastructure_error(exc: BaseException) -> bool:
    """Errors that say the database is unreachable, not that the event is bad."""
    if isinstance(exc, DatabaseUnavailableError | OSError | TimeoutError | SATimeoutError):
        return True
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        return _sqlstate(exc).startswith(_UNAVAILABLE_SQLSTATE_PREFIXES)
    return False


def is_poison_error(exc: BaseException) -> bool:
    """Errors the event itself causes, so retrying only delays the partition behind it."""
    if isinstance(exc, PermanentError | ValidationError | RecursionError | UnicodeError):
        return True
    return isinstance(exc, DBAPIError) and _sqlstate(exc).startswith(_POISON_SQLSTATE_PREFIXES)


def _assigned(consumer: AIOKafkaConsumer, tp: TopicPartition) -> Callable[[], bool]:
    """Whether the group still gives us `tp` (a rebalance can take it at any await)."""
    return lambda: tp in consumer.assignment()


class EventConsumer:
    def __init__(
        self,
        *,
        name: str,
        group_id: str,
        topics: list[str],
        handlers: Mapping[str, Handler],
        sessionmaker: async_sessionmaker[AsyncSession],
        inbox: Table,
        producer: AIOKafkaProducer,
        bootstrap_servers: str,
        max_attempts: int = 5,
        retry_base_delay_s: float = 0.2,
        fetch_max_wait_ms: int = 10,
        idle_caught_up_after_s: float = 60.0,
        parallel_partitions: int = 3,
    ) -> None:
        self.name = name
        self._group_id = group_id
        self._topics = topics
        self._handlers = handlers
        self._sessionmaker = sessionmaker
        self._inbox = inbox
        self._producer = producer
        self._bootstrap = bootstrap_servers
        self._max_attempts = max_attempts
        self._retry_base_delay_s = retry_base_delay_s
        self._fetch_max_wait_ms = fetch_max_wait_ms
        #: Topics whose assigned partitions have all been read up to their end at least
        #: once since start (what was published before we started has been applied).
        self.caught_up: set[str] = set()
        # An instance the group gives no partition at all (more instances than partitions)
        # has nothing to read: after this long it counts as caught up, or it would never
        # be ready.
        self._idle_caught_up_after_s = idle_caught_up_after_s
        self._started_at = time.monotonic()
        #: Batches (partitions) applied at once; each holds a database connection.
        self._parallel_partitions = max(1, parallel_partitions)
        #: Where the next top-up starts among the assigned partitions, so that with more
        #: partitions than `parallel_partitions` each gets its turn.
        self._top_up_from = 0
        #: The running Kafka client, for measuring lag when /metrics is scraped.
        self._kafka: AIOKafkaConsumer | None = None

    @property
    def topics(self) -> list[str]:
        return list(self._topics)

    def _new_kafka_consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            *self._topics,
            bootstrap_servers=self._bootstrap,
            group_id=self._group_id,
            client_id=f"{self._group_id}-{self.name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._fetch_max_wait_ms,
            max_poll_records=_BATCH_RECORDS,
        )

    async def run(self) -> None:
        """Consume until cancelled; a broken connection restarts the loop with back-off."""
        backoff = 0.5
        while True:
            consumer = self._new_kafka_consumer()
            try:
                await consumer.start()
                self._kafka = consumer
                backoff = 0.5
                await self._consume(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer_error", consumer=self.name, error=str(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 15.0)
            finally:
                self._kafka = None
                await consumer.stop()

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            fetched = await self._fetch(consumer)
            for topic in sorted({tp.topic for tp in fetched}):
                batches = {tp: records for tp, records in fetched.items() if tp.topic == topic}
                # Raises if a DLQ write failed; that partition and the topics after it are
                # then read again, while the batches applied beside it keep their commits.
                await self._apply_and_commit(consumer, batches)
            # After the batch is applied: the position then counts only applied records.
            if len(self.caught_up) < len(self._topics):
                await self._note_caught_up(consumer)

    async def _apply_and_commit(
        self,
        consumer: AIOKafkaConsumer,
        batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    ) -> None:
        """Apply one topic's batches side by side, then commit each applied partition."""
        # One fetch can hand back more partitions than the limit: the rest wait here.
        limit = asyncio.Semaphore(self._parallel_partitions)

        async def apply(
            tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
        ) -> int | None:
            async with limit:
                return await self.process_batch(records, still_assigned=_assigned(consumer, tp))

        # Each batch in a task of its own, so its log context stays its own.
        outcomes = await asyncio.gather(
            *(apply(tp, records) for tp, records in batches.items()), return_exceptions=True
        )
        failure: BaseException | None = None
        for tp, done in zip(batches, outcomes, strict=True):
            if isinstance(done, BaseException):
                log.warning(
                    "batch_failed",
                    consumer=self.name,
                    partition=tp.partition,
                    topic=tp.topic,
                    error_type=type(done).__name__,
                )
                # A task cancelled from inside (we were not) must not stop the consumer for
                # good, as a CancelledError reaching run() would: it restarts instead.
                failure = failure or (
                    RuntimeError("a batch was cancelled")
                    if isinstance(done, asyncio.CancelledError)
                    else done
                )
                continue
            if done is None:
                continue
            try:
                # After the database commits: a crash before this line redelivers, and the
                # inbox turns the redelivery into a no-op.
                await consumer.commit({tp: done + 1})
            except KafkaError as exc:  # e.g. the partition was revoked meanwhile
                log.warning("offset_commit_skipped", consumer=self.name, error=str(exc))
        if failure is not None:
            raise failure

    async def _fetch(
        self, consumer: AIOKafkaConsumer
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        """The next records, by partition. A fetch usually hands back one partition's, so
        the other partitions of its topic that have records buffered already are added
        (without waiting), up to `parallel_partitions`, to be applied side by side."""
        batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = dict(
            await consumer.getmany(timeout_ms=1000, max_records=_BATCH_RECORDS)
        )
        if not batches:
            return batches
        topic = min(tp.topic for tp in batches)
        others = sorted(
            (tp for tp in consumer.assignment() if tp.topic == topic and tp not in batches),
            key=lambda tp: tp.partition,
        )
        if others:
            # Rotate where the top-up starts, so no partition always comes last.
            self._top_up_from = (self._top_up_from + 1) % len(others)
            others = others[self._top_up_from :] + others[: self._top_up_from]
        for tp in others:
            if sum(1 for held in batches if held.topic == topic) >= self._parallel_partitions:
                break
            batches.update(await consumer.getmany(tp, timeout_ms=0, max_records=_BATCH_RECORDS))
        return batches

    async def measure_lag(self) -> dict[str, int]:
        """Records after our position on each topic (assigned partitions), measured now:
        a consumer stuck in a retry shows its lag growing. Empty while not connected."""
        consumer = self._kafka
        if consumer is None:
            return {}
        lag = dict.fromkeys(self._topics, 0)
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            if end is not None:
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, end - await consumer.position(tp))
        return lag

    async def _note_caught_up(self, consumer: AIOKafkaConsumer) -> None:
        """Mark each topic whose assigned partitions are all at their high watermark."""
        assigned = consumer.assignment()
        for topic in set(self._topics) - self.caught_up:
            partitions = [tp for tp in assigned if tp.topic == topic]
            if not partitions:
                idle_s = time.monotonic() - self._started_at
                # The group gave this topic's partitions to other instances (or, after a
                # while, nothing at all to this one): nothing here to catch up with.
                if assigned or idle_s >= self._idle_caught_up_after_s:
                    self.caught_up.add(topic)
                continue
            ends = [consumer.highwater(tp) for tp in partitions]
            if any(end is None for end in ends):
                continue  # no fetch answer yet
            positions = [await consumer.position(tp) for tp in partitions]
            if all(pos >= end for pos, end in zip(positions, ends, strict=True) if end is not None):
                self.caught_up.add(topic)
                log.info("consumer_caught_up", consumer=self.name, topic=topic)

    async def process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Apply one record exactly once (or dead-letter it). Public for tests."""
        await self.process_batch([record])

    async def process_batch(
        self,
        records: Sequence[ConsumerRecord[bytes, bytes]],
        *,
        still_assigned: Callable[[], bool] = lambda: True,
    ) -> int | None:
        """Apply records of one partition, in their order, each exactly once (or
        dead-letter it); returns the offset of the last record dealt with (None: none, the
        partition was revoked first) once every dead-letter write is acknowledged."""
        if not records or not still_assigned():
            return None  # revoked by a rebalance: its new owner takes it from here
        parsed = [self._parse(record) for record in records]
        ready = [p for p in parsed if isinstance(p, _Parsed)]
        together = len(ready) > 1 and await self._apply_together(ready)
        dead_letters = _DeadLetterWrites()
        last = None
        for record, outcome in zip(records, parsed, strict=True):
            if not together and not still_assigned():
                break  # one at a time, as a rebalance may stop us between any two records
            if isinstance(outcome, _Parsed):
                if not together:
                    self._bind(record, outcome.event)
                    with consuming(record.topic, outcome.event.type, outcome.event.traceparent):
                        await self._apply_with_retries(
                            record, outcome.event, outcome.handler, dead_letters
                        )
            elif isinstance(outcome, _Malformed):
                self._bind(record, None)
                await self._dead_letter(record, outcome.reason, dead_letters, attempts=0)
            else:
                self._count(record, "skipped")  # unknown types are tolerated (CONTRACT.md §8)
            last = record.offset
        await self._acknowledge(dead_letters)
        return last

    async def _acknowledge(self, dead_letters: _DeadLetterWrites) -> None:
        if dead_letters.acks:
            await asyncio.gather(*dead_letters.acks)
            # Counted once the broker has them: a failed write brings the batch back.
            for topic in dead_letters.topics:
                metrics.EVENTS_CONSUMED.labels(self._group_id, topic, "dead_lettered").inc()

    @staticmethod
    def _bind(record: ConsumerRecord[bytes, bytes], event: CloudEvent | None) -> None:
        """Log lines from here on name this record (and its event, once parsed)."""
        # Reset first: a malformed record must not be logged under the previous one's ids.
        structlog.contextvars.unbind_contextvars("event_id", "event_type")
        structlog.contextvars.bind_contextvars(
            topic=record.topic, partition=record.partition, offset=record.offset
        )
        bind_correlation_id(event.correlation_id if event else None)
        if event is not None:
            structlog.contextvars.bind_contextvars(event_id=str(event.id), event_type=event.type)

    def _parse(self, record: ConsumerRecord[bytes, bytes]) -> _Parsed | _Malformed | None:
        """The record's event and handler; why it is malformed; or None for an unknown
        type. Nothing is done yet: a batch deals with its records in their order."""
        self._bind(record, None)
        try:
            event = CloudEvent.from_kafka(record.headers, record.value)
        except MalformedEventError as exc:
            return _Malformed(f"malformed: {exc}"[:_MAX_REASON])
        handler = self._handlers.get(event.type)
        return _Parsed(record, event, handler) if handler is not None else None

    async def _apply_together(self, batch: list[_Parsed]) -> bool:
        """Apply the batch in one transaction; False (and nothing applied) if any of it
        failed, for the caller to apply each record on its own."""
        applied: list[_Parsed] = []
        try:
            async with self._sessionmaker() as session, session.begin():
                inserted = await session.scalars(
                    insert(self._inbox).on_conflict_do_nothing().returning(self._inbox.c.event_id),
                    [self._inbox_row(p.record, p.event) for p in batch],
                )
                fresh = set(inserted.all())
                for parsed in batch:
                    if parsed.event.id not in fresh:
                        continue  # seen before (or earlier in this batch)
                    fresh.discard(parsed.event.id)
                    self._bind(parsed.record, parsed.event)
                    with consuming(
                        parsed.record.topic, parsed.event.type, parsed.event.traceparent
                    ):
                        await parsed.handler(session, parsed.event)
                    applied.append(parsed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Which record failed, and whether for good, is for the one-by-one path to
            # find out (with its retries): this attempt left nothing behind.
            log.info("batch_apply_fell_back", records=len(batch), error_type=type(exc).__name__)
            return False
        applied_ids = {id(p) for p in applied}
        for parsed in batch:
            self._bind(parsed.record, parsed.event)
            if id(parsed) in applied_ids:
                log.info("event_applied")
                self._count(parsed.record, "applied")
            else:
                log.info("event_duplicate_skipped")
                self._count(parsed.record, "duplicate")
        return True

    def _inbox_row(
        self, record: ConsumerRecord[bytes, bytes], event: CloudEvent
    ) -> dict[str, object]:
        return {
            "consumer": self._group_id,
            "event_id": event.id,
            "event_type": event.type,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
        }

    async def _apply_with_retries(
        self,
        record: ConsumerRecord[bytes, bytes],
        event: CloudEvent,
        handler: Handler,
        dead_letters: _DeadLetterWrites,
    ) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._apply(record, event, handler)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_poison_error(exc):
                    await self._dead_letter(record, describe(exc), dead_letters, attempts=attempt)
                    return
                if is_infrastructure_error(exc):
                    # The database is unreachable: no event can be applied, so wait for it
                    # rather than dead-letter good events. Not a poison message.
                    log.warning("handler_waiting_for_database", error_type=type(exc).__name__)
                    attempt -= 1
                    await asyncio.sleep(min(self._retry_base_delay_s * 10, 5.0))
                    continue
                if attempt >= self._max_attempts:
                    await self._dead_letter(record, describe(exc), dead_letters, attempts=attempt)
                    return
                log.warning("handler_retry", attempt=attempt, error_type=type(exc).__name__)
                await asyncio.sleep(self._retry_base_delay_s * 2 ** (attempt - 1))

    async def _apply(
        self, record: ConsumerRecord[bytes, bytes], event: CloudEvent, handler: Handler
    ) -> None:
        async with self._sessionmaker() as session, session.begin():
            try:
                inserted = await session.scalar(
                    insert(self._inbox)
                    .values(self._inbox_row(record, event))
                    .on_conflict_do_nothing()
                    .returning(self._inbox.c.event_id)
                )
            except Exception as exc:
                # Nothing of the event has run yet: whatever failed is the database's.
                raise DatabaseUnavailableError(type(exc).__name__) from exc
            if inserted is None:
                log.info("event_duplicate_skipped")
                self._count(record, "duplicate")
                return
            await handler(session, event)
        log.info("event_applied")
        self._count(record, "applied")

    def _count(self, record: ConsumerRecord[bytes, bytes], outcome: str) -> None:
        metrics.EVENTS_CONSUMED.labels(self._group_id, record.topic, outcome).inc()

    async def _dead_letter(
        self,
        record: ConsumerRecord[bytes, bytes],
        reason: str,
        dead_letters: _DeadLetterWrites,
        *,
        attempts: int,
    ) -> None:
        log.error("event_dead_lettered", reason_kind=reason.split(":", 1)[0], attempts=attempts)
        headers = [
            *(record.headers or ()),
            ("x-error", reason[:_MAX_REASON].encode()),
            ("x-original-topic", record.topic.encode()),
            ("x-original-partition", str(record.partition).encode()),
            ("x-original-offset", str(record.offset).encode()),
            ("x-attempts", str(attempts).encode()),
            ("x-consumer", self._group_id.encode()),
        ]
        # If the DLQ cannot be written the exception propagates (here or when the write is
        # acknowledged): the offset is not committed and the record comes back, rather
        # than being lost.
        try:
            ack = await self._producer.send(
                dlq(record.topic), value=record.value, key=record.key, headers=headers
            )
        except MessageSizeTooLargeError:
            # A value just under the size limit no longer fits once our headers are added;
            # retrying would stop the partition forever. Keep the headers and say so.
            size = len(record.value or b"")
            log.error("event_dead_lettered_without_value", value_bytes=size)
            ack = await self._producer.send(
                dlq(record.topic),
                value=None,
                key=record.key,
                headers=[*headers, ("x-value-omitted", f"{size} bytes: too large".encode())],
            )
        dead_letters.acks.append(ack)
        dead_letters.topics.append(record.topic)
