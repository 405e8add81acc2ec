"""`ims bench replay`: a new consumer group rebuilds approval's state from a whole topic.

Against the broker and PostgreSQL of `ims up`, in one run and side by side:

1. N customer events (default 1,000,000), built with the real event models of
   `shared.events.contracts` and their CloudEvents envelope, are published to a fresh
   topic (`ims.bench.replay.<run>`, as many partitions as the stack's topics): for each
   realistic customer (`bench_customer.CustomerGenerator`) CustomerSubmitted,
   CustomerActivated and CustomerUpdated, the snapshot in each as the customer service
   sends it;
2. the approval service's real `EventConsumer`, with its real handlers
   (`approval.handlers.build_handlers`: replica upserts, a review with its duplicate
   candidates per submission) and inbox, in a new consumer group, rebuilds that state into
   a fresh, migrated database on the stack's PostgreSQL, logging as in production (JSON
   at INFO, written to /dev/null); events/s from its start until it has caught up;
3. the floor: raw aiokafka reading the same topic from the start, no processing;
4. the rebuilt state is checked: one replica row per customer at its last version, one
   review per submission, one inbox row per event.

The scratch database and topic are dropped at the end unless `--keep`.
"""

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ims_cli.bench_customer import (
    CustomerGenerator,
    FakeCustomer,
    drop_database,
    recreate_database,
    silence_service_logs,
)
from ims_cli.bench_report import (
    Machine,
    machine_info,
    machine_line,
    markdown_table,
)
from ims_cli.bench_report import text_table as console_table
from ims_cli.bench_stack import StackBenchmark
from ims_cli.stack_config import StackConfig
from shared.db import asyncpg_dsn
from shared.events.contracts import (
    CustomerActivatedV1,
    CustomerSubmittedV1,
    CustomerUpdatedV1,
    EventData,
    to_cloud_event,
)

RESULTS_HEADING = "# Results: `ims bench replay`"
DATABASE = "ims_bench_replay"
TOPIC_PREFIX = "ims.bench.replay."
#: Events per customer: submitted, activated, updated.
EVENTS_PER_CUSTOMER = 3
_SEND_CHUNK = 5_000
_POLL_S = 0.5


@dataclass(frozen=True, slots=True)
class Plan:
    """`events` split into customers: all three events each, the last ones fewer."""

    events: int

    @property
    def customers(self) -> int:
        return -(-self.events // EVENTS_PER_CUSTOMER)

    @property
    def submissions(self) -> int:
        return self.customers  # every customer's first event is its submission

    @property
    def complete(self) -> int:
        """Customers with all their events: their replica rows end at version 4."""
        return self.events // EVENTS_PER_CUSTOMER

    def events_of(self, index: int) -> int:
        return min(EVENTS_PER_CUSTOMER, self.events - index * EVENTS_PER_CUSTOMER)


def snapshot(c: FakeCustomer, *, status: str, version: int, code: str | None) -> dict[str, Any]:
    """The customer as the customer service's API returns it (what its events carry)."""
    return {
        "id": str(c.id),
        "customer_code": code,
        "status": status,
        "version": version,
        "full_name": c.full_name,
        "phone": c.phone,
        "email": c.email,
        "misa_code": None,
        "address": c.address,
        "province_code": c.province_code,
        "ward_code": None,
        "admin_scheme": "2025",
        "company_name": c.company_name,
        "tax_code": c.tax_code,
        "contact_name": c.contact_name,
        "customer_type_code": c.customer_type_code,
        "customer_group_code": c.customer_group_code,
        "channel_code": c.channel_code,
        "payment_term_code": c.payment_term_code,
        "payment_method_code": c.payment_method_code,
        "credit_days": c.credit_days,
        "sales_unit_code": c.sales_unit_code,
        "owner_employee_id": c.owner_employee_id,
        "delivery_addresses": [{"address": c.address, "is_default": True}],
        "invoice_profiles": [],
        "pending_change": None,
        "created_at": c.created_at.isoformat(),
        "attachments": [],
    }


def customer_events(c: FakeCustomer, index: int, count: int) -> list[EventData]:
    """The first `count` of: submitted (v2), activated (v3), updated (v4)."""
    at = c.created_at + timedelta(hours=1)
    code = f"KH{index + 1:07d}"
    events: list[EventData] = [
        CustomerSubmittedV1(
            customer_id=c.id,
            version=2,
            review_kind="new",
            submitted_by=c.owner_employee_id,
            submitted_at=at,
            customer=snapshot(c, status="pending_approval", version=2, code=None),
        ),
        CustomerActivatedV1(
            customer_id=c.id,
            version=3,
            customer_code=code,
            approved_by="CS001",
            approved_at=at + timedelta(hours=2),
            customer=snapshot(c, status="active", version=3, code=code),
        ),
        CustomerUpdatedV1(
            customer_id=c.id,
            version=4,
            changed_fields=["misa_code"],
            customer={**snapshot(c, status="active", version=4, code=code), "misa_code": code},
        ),
    ]
    return events[:count]


def generate(plan: Plan, seed: int = 8) -> Iterator[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """(key, value, headers) of every event, customer after customer."""
    generator = CustomerGenerator(seed=seed, start=datetime(2024, 1, 1, tzinfo=UTC))
    for index in range(plan.customers):
        c = generator.customer(index, total=plan.customers)
        for data in customer_events(c, index, plan.events_of(index)):
            event = to_cloud_event(data)
            yield event.subject.encode(), event.kafka_value(), event.kafka_headers()


# ---- the run ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Counts:
    replica_rows: int
    at_last_version: int
    reviews: int
    inbox_rows: int


@dataclass(frozen=True, slots=True)
class ReplayReport:
    command: str
    machine: Machine
    postgres: str
    events: int
    customers: int
    topic_mb: float
    produce_s: float
    replay_s: float
    floor_s: float
    #: False: the replay stopped at its time-out; its rate is of the events applied.
    finished: bool
    counts: Counts
    dead_lettered: int
    note: str | None = None

    @property
    def expected(self) -> Counts:
        plan = Plan(self.events)
        return Counts(plan.customers, plan.complete, plan.submissions, self.events)

    @property
    def correct(self) -> bool:
        return self.finished and self.counts == self.expected and self.dead_lettered == 0

    @property
    def applied(self) -> int:
        """Events the consumer applied (all of them unless it timed out)."""
        return self.counts.inbox_rows if not self.finished else self.events


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    events: int = 1_000_000
    timeout_s: float = 7200.0
    keep: bool = False
    note: str | None = None
    seed: int = 8
    #: Log as in production, to /dev/null (False: leave this process's logging alone).
    quiet_logs: bool = True

    def command(self) -> str:
        timeout = f" --timeout {self.timeout_s:g}" if self.timeout_s != 7200.0 else ""
        return f"ims bench replay --events {self.events}{timeout}"


async def _create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def _delete_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        with contextlib.suppress(Exception):  # a broker without DeleteTopics keeps it
            await admin.delete_topics([topic])
    finally:
        await admin.close()


async def publish_events(
    bootstrap: str, topic: str, plan: Plan, *, seed: int, out: TextIO
) -> tuple[float, int]:
    """Publish the plan's events; (seconds, bytes of values)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=256 * 1024
    )
    await producer.start()
    size = 0
    started = time.monotonic()
    try:
        pending: list[asyncio.Future[Any]] = []
        for sent, (key, value, headers) in enumerate(generate(plan, seed), start=1):
            size += len(value)
            pending.append(await producer.send(topic, value, key=key, headers=headers))
            if len(pending) >= _SEND_CHUNK:
                await asyncio.gather(*pending)
                pending = []
                if sent % 100_000 < _SEND_CHUNK:
                    print(f"  published {sent:,}", file=out, flush=True)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.monotonic() - started, size


async def _end_offsets(consumer: AIOKafkaConsumer, topic: str) -> dict[TopicPartition, int]:
    partitions = consumer.partitions_for_topic(topic)
    for _ in range(50):
        if partitions:
            break
        await consumer.topics()
        await asyncio.sleep(0.1)
        partitions = consumer.partitions_for_topic(topic)
    tps = [TopicPartition(topic, p) for p in sorted(partitions or ())]
    ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
    return ends


async def raw_floor(bootstrap: str, topic: str, expected: int) -> float:
    """Seconds for plain aiokafka to read the whole topic from the start."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        ends = await _end_offsets(consumer, topic)
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        started = time.monotonic()
        seen = 0
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            seen += sum(len(records) for records in batch.values())
        return time.monotonic() - started
    finally:
        await consumer.stop()


async def replay_with_approval(
    config: StackConfig, url: str, topic: str, group: str, *, timeout_s: float, out: TextIO
) -> tuple[float, bool]:
    """Seconds for approval's consumer, in a new group, to apply the whole topic, and
    whether it did (False: stopped at `timeout_s`, partway)."""
    from approval.handlers import build_handlers
    from approval.models import messaging
    from approval.settings import ApprovalSettings
    from shared.db import create_engine, create_sessionmaker
    from shared.messaging.consumer import EventConsumer
    from shared.messaging.kafka import create_producer

    settings = ApprovalSettings(
        database_url=url, kafka_bootstrap_servers=config.kafka_bootstrap_servers
    )
    engine = create_engine(url, pool_size=settings.db_pool_size)
    producer = create_producer(
        config.kafka_bootstrap_servers, enable_idempotence=False, client_id="bench-replay"
    )
    await producer.start()
    consumer = EventConsumer(
        name="replay",
        group_id=group,
        topics=[topic],
        handlers=build_handlers(settings),
        sessionmaker=create_sessionmaker(engine),
        inbox=messaging.inbox,
        producer=producer,
        bootstrap_servers=config.kafka_bootstrap_servers,
        max_attempts=settings.consumer_max_attempts,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        parallel_partitions=settings.consumer_parallel_partitions,
    )
    dsn = asyncpg_dsn(url)
    started = time.monotonic()
    task = asyncio.create_task(consumer.run())
    last_report = started
    try:
        while topic not in consumer.caught_up:
            if task.done():
                task.result()  # raises what stopped it
            now = time.monotonic()
            if now - started > timeout_s:
                print(f"  stopped at the time-out ({timeout_s:g} s)", file=out, flush=True)
                return now - started, False
            if now - last_report >= 30:
                applied = await _count(dsn, "SELECT count(*) FROM inbox")
                rate = applied / (now - started)
                print(f"  replayed {applied:,} ({rate:,.0f}/s)", file=out, flush=True)
                last_report = now
            await asyncio.sleep(_POLL_S)
        return time.monotonic() - started, True
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await producer.stop()
        await engine.dispose()


async def _count(dsn: str, sql: str, *args: Any) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql, *args))
    finally:
        await conn.close()


async def rebuilt_counts(url: str, group: str, plan: Plan) -> Counts:
    dsn = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn)
    try:
        at_last = await conn.fetchval("SELECT count(*) FROM customers WHERE version = 4")
        return Counts(
            replica_rows=int(await conn.fetchval("SELECT count(*) FROM customers")),
            at_last_version=int(at_last),
            reviews=int(await conn.fetchval("SELECT count(*) FROM reviews")),
            inbox_rows=int(
                await conn.fetchval("SELECT count(*) FROM inbox WHERE consumer = $1", group)
            ),
        )
    finally:
        await conn.close()


async def _dead_letters(bootstrap: str, topic: str) -> int:
    from shared.events.topics import dlq

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        if dlq(topic) not in await consumer.topics():
            return 0
        ends = await _end_offsets(consumer, dlq(topic))
        return sum(ends.values())
    finally:
        await consumer.stop()


async def postgres_version(admin_dsn: str) -> str:
    conn = await asyncpg.connect(admin_dsn)
    try:
        version = await conn.fetchval("SHOW server_version")
        buffers = await conn.fetchval("SHOW shared_buffers")
    finally:
        await conn.close()
    return f"PostgreSQL {version} (shared_buffers {buffers})"


async def run_replay(config: StackConfig, options: ReplayOptions, *, out: TextIO) -> ReplayReport:
    from shared.migrations import upgrade_to_head

    plan = Plan(options.events)
    run = uuid.uuid4().hex[:8]
    topic, group = f"{TOPIC_PREFIX}{run}", f"approval-replay-{run}"
    bootstrap = config.kafka_bootstrap_servers
    if options.quiet_logs:
        silence_service_logs("approval")
    print(f"creating {DATABASE} and migrating it (approval's schema)…", file=out, flush=True)
    url = await recreate_database(config.database_url_base, DATABASE)
    await _create_topic(bootstrap, topic, config.kafka_partitions)
    try:
        await asyncio.to_thread(upgrade_to_head, "approval", url)
        print(
            f"publishing {plan.events:,} events of {plan.customers:,} customers to {topic}…",
            file=out,
            flush=True,
        )
        produce_s, size = await publish_events(bootstrap, topic, plan, seed=options.seed, out=out)
        print(f"published in {produce_s:.0f} s; raw aiokafka read (floor)…", file=out, flush=True)
        floor_s = await raw_floor(bootstrap, topic, plan.events)
        print(f"floor: {floor_s:.1f} s; approval's consumer replaying…", file=out, flush=True)
        replay_s, finished = await replay_with_approval(
            config, url, topic, group, timeout_s=options.timeout_s, out=out
        )
        counts = await rebuilt_counts(url, group, plan)
        dead = await _dead_letters(bootstrap, topic)
        postgres = await postgres_version(config.admin_dsn)
    finally:
        if not options.keep:
            await _delete_topic(bootstrap, topic)
            await drop_database(config.database_url_base, DATABASE)
    return ReplayReport(
        command=options.command(),
        machine=machine_info(),
        postgres=postgres,
        events=plan.events,
        customers=plan.customers,
        topic_mb=size / 1e6,
        produce_s=produce_s,
        replay_s=replay_s,
        floor_s=floor_s,
        finished=finished,
        counts=counts,
        dead_lettered=dead,
        note=options.note,
    )


# ---- the report ---------------------------------------------------------------------------

_HEADER = ("reader", "events", "seconds", "events/s", "× floor")


def _rows(report: ReplayReport) -> list[tuple[str, ...]]:
    floor_rate = report.events / report.floor_s
    consumer = "approval's consumer, new group, fresh database"
    if not report.finished:
        consumer += f" (stopped at the time-out, {report.applied:,} of {report.events:,})"
    rows = [
        (consumer, report.applied, report.replay_s),
        ("floor: raw aiokafka, no processing", report.events, report.floor_s),
    ]
    return [
        (
            name,
            f"{events:,}",
            f"{seconds:.1f}",
            f"{events / seconds:,.1f}",
            f"{(events / seconds) / floor_rate:.4f}",
        )
        for name, events, seconds in rows
    ]


def check_lines(report: ReplayReport) -> list[str]:
    got, want = report.counts, report.expected
    verdict = (
        "correct" if report.correct else "WRONG" if report.finished else "incomplete (time-out)"
    )
    return [
        f"rebuilt state {verdict}: replica rows {got.replica_rows:,} (expected "
        f"{want.replica_rows:,}), at version 4 {got.at_last_version:,} (expected "
        f"{want.at_last_version:,}), reviews "
        f"{got.reviews:,} (expected {want.reviews:,}), inbox rows {got.inbox_rows:,} "
        f"(expected {want.inbox_rows:,}), dead-lettered {report.dead_lettered}",
        f"published {report.events:,} events ({report.topic_mb:,.0f} MB of values) in "
        f"{report.produce_s:.0f} s ({report.events / report.produce_s:,.0f}/s)",
    ]


def render_table(report: ReplayReport) -> str:
    lines = console_table(_HEADER, "lrrrr", _rows(report))
    return "\n".join([*lines, "", *check_lines(report)])


def render_markdown(report: ReplayReport) -> str:
    lines = [
        f"## Replay, events: {report.events:,}, {report.machine.date}",
        "",
        machine_line(report.machine, report.postgres),
        f"Command: `{report.command}`.",
    ]
    if report.note:
        lines += ["", report.note]
    lines += [
        "",
        f"{report.events:,} customer events ({report.customers:,} customers: submitted, "
        "activated, updated; real event models and envelope) on a fresh topic of the "
        "stack's broker; approval's real consumer and handlers, in a new consumer group, "
        "rebuild its state (replica, reviews with duplicate candidates, inbox) into a fresh "
        "migrated database on the stack's PostgreSQL, from its start until caught up; "
        "beside it, plain aiokafka reading the same topic.",
        "",
        *markdown_table(_HEADER, "lrrrr", _rows(report)),
        "",
        *(f"- {line}" for line in check_lines(report)),
    ]
    return "\n".join(lines) + "\n"


BENCHMARK: StackBenchmark[ReplayOptions, ReplayReport] = StackBenchmark(
    command="ims bench replay",
    run=lambda config, options, out: run_replay(config, options, out=out),
    table=render_table,
    section=render_markdown,
    heading=RESULTS_HEADING,
    passed=lambda report: report.correct or not report.finished,
)
main_replay = BENCHMARK.main
