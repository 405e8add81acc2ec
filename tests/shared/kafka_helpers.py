"""Reading back what reached a topic, for assertions."""

import asyncio

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition


async def read_all(
    bootstrap: str, topic: str, *, expect: int, timeout_s: float = 15.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of the topic, waiting until at least `expect` arrived (or timeout)."""
    # No consumer group: assigning partitions directly skips the group join, which is slow.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        await consumer.topics()  # refreshes metadata, so the partitions are known
        partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        await consumer.seek_to_beginning()
        async with asyncio.timeout(timeout_s):
            while len(records) < expect:
                batch = await consumer.getmany(timeout_ms=200)
                for recs in batch.values():
                    records.extend(recs)
        # Drain briefly so duplicates beyond `expect` are seen too.
        batch = await consumer.getmany(timeout_ms=300)
        for recs in batch.values():
            records.extend(recs)
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return records


def header(record: ConsumerRecord[bytes, bytes], name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return value.decode()
    return None
