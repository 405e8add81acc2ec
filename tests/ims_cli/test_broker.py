"""The Tansu broker: started on a free port, topics created, re-created after a restart."""

import asyncio
import io
import os
import signal
import time

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from ims_cli.broker import broker_process_spec, ensure_topics, wait_listening
from ims_cli.console import Console
from ims_cli.supervisor import Backoff, ManagedProcess
from shared.events.topics import all_topics_with_dlq

from .conftest import allocate_ports


async def describe(bootstrap: str) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = await admin.list_topics()
        return {d["topic"]: len(d["partitions"]) for d in await admin.describe_topics(names)}
    finally:
        await admin.close()


@pytest.mark.timeout(60)
async def test_topics_are_created_and_recreated_after_a_broker_restart() -> None:
    (port,) = allocate_ports(1)
    bootstrap = f"127.0.0.1:{port}"
    topics = all_topics_with_dlq()

    async def create_topics() -> None:
        await wait_listening("127.0.0.1", port, 30)
        await ensure_topics(bootstrap, topics, 3)

    out = io.StringIO()
    broker = ManagedProcess(
        broker_process_spec(port),
        Console(out=out, colour=False),
        after_restart=create_topics,
        backoff=Backoff(initial_s=0.1),
    )
    await broker.start()
    try:
        await wait_listening("127.0.0.1", port, 30)
        created, mismatched = await ensure_topics(bootstrap, topics, 3)
        assert sorted(created) == sorted(topics)
        assert mismatched == {}
        assert await describe(bootstrap) == dict.fromkeys(topics, 3)

        # A second run finds them all.
        assert await ensure_topics(bootstrap, topics, 3) == ([], {})

        # The broker dies: it is restarted, empty, and the topics come back.
        first_pid = broker.pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while broker.restarts < 1 or await _topics_or_none(bootstrap) != dict.fromkeys(topics, 3):
            assert time.monotonic() < deadline, out.getvalue()
            await asyncio.sleep(0.1)
        assert broker.pid != first_pid
        assert "ready in" not in out.getvalue()  # reserved word, hidden
    finally:
        await broker.stop()


async def _topics_or_none(bootstrap: str) -> dict[str, int] | None:
    try:
        return await describe(bootstrap)
    except Exception:
        return None
