"""The local Kafka-protocol broker: Tansu as a supervised child, and its topics.

Tansu keeps everything in memory by default, so the topics are created each time it
starts; with durable storage (`IMS_BROKER_STORAGE=s3`, ADR 0012) creating them again
finds them there.
"""

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from ims_cli.processes import ProcessSpec
from ims_cli.tansu import MEMORY_STORAGE, tansu_argv

TOPIC_ALREADY_EXISTS = 36
#: Hidden from the console: the word "ready" belongs to the stack's own ready line.
HIDDEN_LINES = ("ready in ",)


class BrokerError(RuntimeError):
    """The broker does not answer or refuses a topic."""


def broker_process_spec(
    port: int,
    *,
    host: str = "127.0.0.1",
    name: str = "broker",
    storage_engine: str = MEMORY_STORAGE,
    env: Mapping[str, str] | None = None,
) -> ProcessSpec:
    return ProcessSpec(
        name=name,
        argv=tuple(tansu_argv(port, host=host, storage_engine=storage_engine)),
        env=env,
        hidden_lines=HIDDEN_LINES,
    )


async def wait_listening(host: str, port: int, timeout_s: float) -> None:
    """Return once host:port accepts TCP connections; BrokerError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise BrokerError(f"nothing listens on {host}:{port}: {exc}") from exc
            # Short: after a broker restart the topics must exist before clients come back.
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return


async def ensure_topics(
    bootstrap_servers: str, topics: Iterable[str], partitions: int, *, timeout_s: float = 30.0
) -> tuple[list[str], dict[str, int]]:
    """Create the missing topics; returns (created, topics found with another partition count)."""
    wanted = list(topics)
    deadline = time.monotonic() + timeout_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=5000)
        try:
            await admin.start()
            response = await admin.create_topics(
                [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in wanted]
            )
            created = _created_topics(response)
            mismatched = _partition_mismatches(await admin.describe_topics(wanted), partitions)
            return created, mismatched
        except KafkaError as exc:
            if time.monotonic() >= deadline:
                raise BrokerError(f"cannot create topics on {bootstrap_servers}: {exc!r}") from exc
        finally:
            await admin.close()
        await asyncio.sleep(0.2)


def _created_topics(response: Any) -> list[str]:
    created: list[str] = []
    for topic, code, *rest in response.topic_errors:
        if code == 0:
            created.append(topic)
        elif code != TOPIC_ALREADY_EXISTS:
            message = rest[0] if rest else ""
            raise BrokerError(f"the broker refused topic {topic}: error {code} {message}")
    return created


def _partition_mismatches(descriptions: list[dict[str, Any]], partitions: int) -> dict[str, int]:
    return {
        d["topic"]: len(d["partitions"])
        for d in descriptions
        if d.get("error_code", 0) == 0 and len(d["partitions"]) != partitions
    }
