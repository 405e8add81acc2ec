"""The outbox relay: publishes committed outbox rows to Kafka, in order per key.

Each batch runs in one transaction: take the relay lock, claim the oldest unpublished
rows with FOR UPDATE SKIP LOCKED, send them in id order, wait for every broker
acknowledgement, then mark them published and commit. A crash before the commit leaves
the rows unpublished, so they are sent again: duplicates are possible, loss is not.

Several replicas may run: a transaction-scoped advisory lock lets one of them publish at
a time, which is what keeps per-key order (two relays sending interleaved batches could
otherwise reorder one customer's events). The others wait for NOTIFY or the poll.
"""

import asyncio
import contextlib
import json
import zlib
from collections import Counter
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from sqlalchemy import Table, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared import metrics
from shared.db import asyncpg_dsn
from shared.logging import get_logger
from shared.messaging.outbox import NOTIFY_CHANNEL

log = get_logger(__name__)


class OutboxRelay:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        outbox: Table,
        producer: AIOKafkaProducer,
        service: str,
        batch_size: int = 200,
        poll_interval_s: float = 2.0,
        send_timeout_s: float = 30.0,
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self._producer = producer
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._send_timeout_s = send_timeout_s
        self._lock_id = zlib.crc32(f"ims-outbox-relay:{service}".encode())
        self._service = service
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None

    async def publish_batch(self) -> int:
        """Publish one batch; returns how many rows were published (0: nothing to do)."""
        o = self._outbox
        async with self._engine.begin() as conn:
            got_lock = await conn.scalar(
                text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": self._lock_id}
            )
            if not got_lock:
                return 0
            rows = (
                await conn.execute(
                    select(o.c.id, o.c.topic, o.c.key, o.c.headers, o.c.payload)
                    .where(o.c.published_at.is_(None))
                    .order_by(o.c.id)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            # Bounded: a broker that hangs must not hold the claimed rows locked for ever.
            async with asyncio.timeout(self._send_timeout_s):
                futures = [
                    await self._producer.send(
                        row.topic,
                        value=json.dumps(
                            row.payload, ensure_ascii=False, separators=(",", ":")
                        ).encode(),
                        key=row.key.encode(),
                        headers=[(k, v.encode()) for k, v in row.headers],
                    )
                    for row in rows
                ]
                # Marked sent only once the broker acknowledged every record of the batch.
                await asyncio.gather(*futures)
            await self._mark_published(conn, [r.id for r in rows])
        for topic, count in Counter(r.topic for r in rows).items():
            metrics.EVENTS_PUBLISHED.labels(self._service, topic).inc(count)
        log.debug("outbox_published", count=len(rows))
        return len(rows)

    async def _mark_published(self, conn: AsyncConnection, ids: list[int]) -> None:
        o = self._outbox
        await conn.execute(
            update(o)
            .where(o.c.id.in_(ids))
            .values(published_at=text("now()"), attempts=o.c.attempts + 1)
        )

    async def run(self) -> None:
        """Relay until cancelled; errors back off and retry, they never stop the loop."""
        backoff = 0.5
        while True:
            try:
                await self._ensure_listener()
                while await self.publish_batch():
                    pass
                backoff = 0.5
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)
            except asyncio.CancelledError:
                await self._close_listener()
                raise
            except Exception as exc:
                log.warning("outbox_relay_error", error=str(exc), error_type=type(exc).__name__)
                await self._close_listener()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 15.0)

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        url = self._engine.url.render_as_string(hide_password=False)
        try:
            self._listener = await asyncpg.connect(asyncpg_dsn(url))
            await self._listener.add_listener(NOTIFY_CHANNEL, self._on_notify)
        except Exception as exc:  # polling still works without LISTEN
            log.warning("outbox_listen_unavailable", error=str(exc))
            self._listener = None

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):  # closing a possibly broken connection
                await self._listener.close()
            self._listener = None
