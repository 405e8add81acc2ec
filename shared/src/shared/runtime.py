"""A service's long-lived parts: database engine, Kafka producer, outbox relay, consumers.

The API process hosts the relay and the consumers as background tasks (`run_workers`), so
one process per replica is enough; each of them is safe to run in several replicas.
The service starts even when the broker is down: Kafka parts connect in the background
and `/readyz` says what is missing.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared import metrics
from shared.auth.verify import TokenVerifier
from shared.config import ServiceSettings
from shared.db import create_engine, create_sessionmaker
from shared.logging import get_logger
from shared.messaging.consumer import EventConsumer, Handler
from shared.messaging.kafka import broker_reachable, create_producer
from shared.messaging.relay import OutboxRelay
from shared.messaging.tables import MessagingTables

log = get_logger(__name__)


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        tables: MessagingTables,
        consumes: Sequence[tuple[str, Callable[["ServiceRuntime"], dict[str, Handler]]]] = (),
        topics: Sequence[str] = (),
        workers: Sequence[tuple[str, Callable[["ServiceRuntime"], Coroutine[Any, Any, None]]]] = (),
        readiness_checks: Sequence[tuple[str, Callable[["ServiceRuntime"], Awaitable[str]]]] = (),
        metric_sources: Sequence[Callable[["ServiceRuntime"], metrics.Refresher]] = (),
    ) -> None:
        self.settings = settings
        self.tables = tables
        self.engine: AsyncEngine = create_engine(
            settings.database_url, pool_size=settings.db_pool_size
        )
        self.sessionmaker: async_sessionmaker[AsyncSession] = create_sessionmaker(self.engine)
        self.verifier = TokenVerifier.from_settings(
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            public_key=settings.jwt_public_key,
            public_key_file=settings.jwt_public_key_file,
            jwks_url=settings.jwt_jwks_url,
        )
        # aiokafka binds to the running loop, so the producer is made in start().
        self._producer: AIOKafkaProducer | None = None
        self._consumes = consumes
        self._topics = list(topics)
        self._workers = workers
        self._readiness_checks = readiness_checks
        self._producer_started = False
        self._tasks: list[asyncio.Task[None]] = []
        self._consumers: list[EventConsumer] = []
        #: Run at each scrape of /metrics: the outbox's backlog, then the service's own.
        self.metric_refreshers: list[metrics.Refresher] = [
            metrics.outbox_refresher(settings.service_name, self.sessionmaker, tables.outbox),
            self._refresh_consumer_lag,
            *(build(self) for build in metric_sources),
        ]

    async def _refresh_consumer_lag(self) -> None:
        for consumer in self._consumers:
            for topic, lag in (await consumer.measure_lag()).items():
                metrics.CONSUMER_LAG.labels(self.settings.service_name, topic).set(lag)

    @property
    def consumed_topics(self) -> tuple[str, ...]:
        """The topics this service's consumers read (topics.CONSUMERS documents them)."""
        return tuple(self._topics)

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("the runtime has not been started")
        return self._producer

    def build_consumer(self, name: str, handlers: dict[str, Handler]) -> EventConsumer:
        return EventConsumer(
            name=name,
            group_id=self.settings.service_name,
            topics=self._topics,
            handlers=handlers,
            sessionmaker=self.sessionmaker,
            inbox=self.tables.inbox,
            producer=self.producer,
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            max_attempts=self.settings.consumer_max_attempts,
            fetch_max_wait_ms=self.settings.kafka_fetch_max_wait_ms,
            parallel_partitions=self.settings.consumer_parallel_partitions,
        )

    def build_relay(self) -> OutboxRelay:
        return OutboxRelay(
            engine=self.engine,
            outbox=self.tables.outbox,
            producer=self.producer,
            service=self.settings.service_name,
            poll_interval_s=self.settings.outbox_poll_interval_s,
        )

    def _new_producer(self) -> AIOKafkaProducer:
        return create_producer(
            self.settings.kafka_bootstrap_servers,
            enable_idempotence=self.settings.kafka_enable_idempotence,
            client_id=self.settings.service_name,
        )

    async def start(self) -> None:
        self._producer = self._new_producer()
        self._tasks.append(asyncio.create_task(self._start_kafka_parts(), name="kafka-parts"))

    async def _start_kafka_parts(self) -> None:
        backoff = 0.5
        while not self._producer_started:
            try:
                await self.producer.start()
                self._producer_started = True
            except Exception as exc:
                log.warning("kafka_unavailable", error=str(exc))
                # A producer whose start failed is not reused: start over with a new one.
                with contextlib.suppress(Exception):
                    await self.producer.stop()
                self._producer = self._new_producer()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
        if not self.settings.run_workers:
            return
        self._tasks.append(asyncio.create_task(self.build_relay().run(), name="outbox-relay"))
        for name, make_handlers in self._consumes:
            consumer = self.build_consumer(name, make_handlers(self))
            self._consumers.append(consumer)
            self._tasks.append(asyncio.create_task(consumer.run(), name=f"consumer-{name}"))
        for name, make_worker in self._workers:
            self._tasks.append(asyncio.create_task(make_worker(self), name=name))
        log.info(
            "workers_started",
            consumers=[n for n, _ in self._consumes],
            workers=[n for n, _ in self._workers],
        )

    def caught_up_with(self, topic: str) -> str:
        """A readiness answer: 'ok' once this process's consumers have read `topic` to the
        end at least once since start (or when it runs no consumers, as in tests)."""
        if not self.settings.run_workers:
            return "ok"
        readers = [c for c in self._consumers if topic in c.topics]
        if readers and all(topic in c.caught_up for c in readers):
            return "ok"
        return f"catching up with {topic}"

    async def stop(self) -> None:
        for task in reversed(self._tasks):
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._producer_started:
            await self.producer.stop()
        await self.engine.dispose()

    async def readiness(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            async with asyncio.timeout(2.0), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unavailable: {type(exc).__name__}"
        if self._producer_started and await broker_reachable(self.producer):
            checks["broker"] = "ok"
        else:
            checks["broker"] = "unavailable"
        for name, check in self._readiness_checks:
            try:
                checks[name] = await check(self)
            except Exception as exc:
                checks[name] = f"unavailable: {type(exc).__name__}"
        return checks
