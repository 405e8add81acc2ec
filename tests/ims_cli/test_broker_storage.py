"""Durable broker storage (ADR 0012): `IMS_BROKER_STORAGE=s3` puts Tansu's topics in an S3
server beside it, so a kill -9 of the broker loses no record, offset or topic."""

import asyncio
import io
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ims_cli.broker import broker_process_spec, ensure_topics, wait_listening
from ims_cli.console import Console
from ims_cli.processes import ProcessSpec
from ims_cli.stack_config import (
    BROKER_S3_BUCKET,
    DEFAULT_SERVICES,
    ConfigError,
    broker_storage_env,
    load_stack_config,
    service_env,
)
from ims_cli.supervisor import Backoff, ManagedProcess
from ims_cli.tansu import MEMORY_STORAGE, tansu_argv
from shared.events.topics import all_topics_with_dlq

from .conftest import allocate_ports


def test_memory_stays_the_default(tmp_path: Path) -> None:
    config = load_stack_config({}, tmp_path)
    assert config.broker_storage == "memory"
    assert "broker-storage" not in config.listening_ports()
    assert tansu_argv(9092)[-1] == MEMORY_STORAGE
    assert "AWS_ENDPOINT" not in broker_storage_env(config, {})
    env = service_env(config, DEFAULT_SERVICES[0], {})
    assert "CUSTOMER_KAFKA_FETCH_MAX_WAIT_MS" not in env


def test_s3_storage_settings(tmp_path: Path) -> None:
    config = load_stack_config({"IMS_BROKER_STORAGE": "S3", "IMS_BROKER_S3_PORT": "9555"}, tmp_path)
    assert config.broker_storage == "s3"
    assert config.listening_ports()["broker-storage"] == 9555
    env = broker_storage_env(config, {"PATH": "/bin"})
    assert env["AWS_ENDPOINT"] == "http://127.0.0.1:9555" and env["PATH"] == "/bin"
    # Tansu's S3 engine answers a 10 ms fetch empty: the services wait longer, unless told.
    customer = DEFAULT_SERVICES[0]
    assert service_env(config, customer, {})["CUSTOMER_KAFKA_FETCH_MAX_WAIT_MS"] == "1000"
    told = {"CUSTOMER_KAFKA_FETCH_MAX_WAIT_MS": "700"}
    assert service_env(config, customer, told)["CUSTOMER_KAFKA_FETCH_MAX_WAIT_MS"] == "700"
    with pytest.raises(ConfigError, match="IMS_BROKER_STORAGE"):
        load_stack_config({"IMS_BROKER_STORAGE": "postgres"}, tmp_path)


async def _read_all(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=500
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(3)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        values: list[bytes] = []
        for _ in range(60):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                values += [r.value or b"" for r in records]
            if len(values) >= expected:
                break
        return values
    finally:
        await consumer.stop()


@pytest.mark.timeout(120)
async def test_a_killed_broker_comes_back_with_every_record(tmp_path: Path) -> None:
    kafka_port, s3_port = allocate_ports(2)
    config = load_stack_config(
        {"IMS_BROKER_STORAGE": "s3", "IMS_BROKER_S3_PORT": str(s3_port)}, tmp_path
    )
    bootstrap = f"127.0.0.1:{kafka_port}"
    console = Console(out=io.StringIO(), colour=False)
    storage = ManagedProcess(
        ProcessSpec(
            "broker-storage",
            (sys.executable, "-m", "ims_cli.broker_storage", "--port", str(s3_port)),
        ),
        console,
    )
    recreated: list[list[str]] = []

    async def recreate() -> None:
        await wait_listening("127.0.0.1", kafka_port, 30)
        recreated.append((await ensure_topics(bootstrap, all_topics_with_dlq(), 3))[0])

    broker = ManagedProcess(
        broker_process_spec(
            kafka_port,
            storage_engine=f"s3://{BROKER_S3_BUCKET}/",
            env=broker_storage_env(config, os.environ),
        ),
        console,
        after_restart=recreate,
        backoff=Backoff(initial_s=0.1),
    )
    await storage.start()
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                try:
                    if (
                        await http.head(f"{config.broker_s3_url}/{BROKER_S3_BUCKET}")
                    ).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        await broker.start()
        await wait_listening("127.0.0.1", kafka_port, 30)
        created, _ = await ensure_topics(bootstrap, all_topics_with_dlq(), 3)
        assert len(created) == 8
        topic = all_topics_with_dlq()[0]
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for i in range(20):
                await producer.send_and_wait(topic, f"before-{i}".encode(), key=f"k{i}".encode())
        finally:
            await producer.stop()

        old_pid = broker.pid
        assert old_pid is not None
        os.kill(old_pid, signal.SIGKILL)
        for _ in range(300):
            if recreated:
                break
            await asyncio.sleep(0.1)
        assert broker.pid != old_pid
        assert recreated == [[]]  # every topic was still there

        values = await _read_all(bootstrap, topic, 20)
        assert sorted(values) == sorted(f"before-{i}".encode() for i in range(20))
    finally:
        await broker.stop()
        await storage.stop()
