"""aiokafka producer and admin helpers with the project's settings."""

import asyncio
import contextlib

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError


def create_producer(
    bootstrap_servers: str, *, enable_idempotence: bool, client_id: str
) -> AIOKafkaProducer:
    # acks=all always; idempotence only where the broker supports it (not Tansu).
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=enable_idempotence,
        linger_ms=5,
        request_timeout_ms=15000,
    )


async def ensure_topics(bootstrap_servers: str, names: list[str], *, partitions: int) -> None:
    """Create the topics that do not exist yet (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in missing]
                )
    finally:
        await admin.close()


async def broker_reachable(producer: AIOKafkaProducer, timeout_s: float = 2.0) -> bool:
    try:
        async with asyncio.timeout(timeout_s):
            await producer.client.fetch_all_metadata()
        return True
    except Exception:
        return False
