"""deploy/scripts/dlq.py against a real Kafka-protocol broker (Tansu): list shows where a
dead letter came from and why, without its value; redrive puts it back on its topic with
its own headers, once."""

import importlib.util
import json
import uuid
from types import ModuleType

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.deploy.helpers import DEPLOY


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ims_dlq", DEPLOY / "scripts/dlq.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dlq = load_script()


async def dead_letter(producer: AIOKafkaProducer, topic: str, n: int, error: str) -> str:
    event_id = str(uuid.uuid4())
    await producer.send_and_wait(
        f"{topic}.dlq",
        json.dumps({"customer_id": "c", "full_name": f"secret {n}"}).encode(),
        key=b"c",
        headers=[
            ("ce_id", event_id.encode()),
            ("ce_type", b"ims.customer.CustomerSubmitted.v1"),
            ("x-error", error.encode()),
            ("x-original-topic", topic.encode()),
            ("x-original-partition", b"0"),
            ("x-original-offset", str(n).encode()),
            ("x-attempts", b"5"),
            ("x-consumer", b"approval"),
        ],
    )
    return event_id


async def read_all(bootstrap: str, topic: str) -> list[dict[str, bytes]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records = await dlq._read_to_end(consumer, tps)
    finally:
        await consumer.stop()
    return [dict(r.headers) for r in records]


async def test_list_then_redrive_once(
    kafka_bootstrap: str,
    fresh_topic: str,
    producer: AIOKafkaProducer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    poison = await dead_letter(producer, fresh_topic, 1, "MalformedEventError: not JSON")
    fixed = await dead_letter(producer, fresh_topic, 2, "OperationalError: db down")

    # (main() runs these with asyncio.run; the test is already in an event loop)
    await dlq.list_dead_letters(kafka_bootstrap, f"{fresh_topic}.dlq", values=False, limit=10)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    *letters, summary = lines
    assert summary == {"dead_letters": 2, "shown": 2}
    assert {(d["ce_id"], d["x-consumer"], d["x-original-topic"]) for d in letters} == {
        (poison, "approval", fresh_topic),
        (fixed, "approval", fresh_topic),
    }
    assert all("value" not in d for d in letters), "no personal data unless --values"

    topic = f"{fresh_topic}.dlq"
    await dlq.redrive(kafka_bootstrap, topic, only_error="^OperationalError", dry_run=False)
    assert json.loads(capsys.readouterr().out) == {"redriven": 1, "passed_over": 1}
    (headers,) = await read_all(kafka_bootstrap, fresh_topic)
    assert headers["ce_id"] == fixed.encode()
    assert not any(name.startswith("x-") for name in headers)

    # A second run starts where the first stopped: nothing is sent twice.
    await dlq.redrive(kafka_bootstrap, topic, only_error=None, dry_run=False)
    assert json.loads(capsys.readouterr().out) == {"redriven": 0, "passed_over": 0}
    assert len(await read_all(kafka_bootstrap, fresh_topic)) == 1


def test_refuses_a_topic_that_is_not_a_dead_letter_topic() -> None:
    with pytest.raises(SystemExit):
        dlq.main(["--bootstrap", "127.0.0.1:1", "redrive", "ims.customer.events.v1"])
