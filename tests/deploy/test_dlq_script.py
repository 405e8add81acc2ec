"""deploy/scripts/dlq.py against a real Kafka-protocol broker (Tansu): list shows where a
dead letter came from and why, without its value; redrive puts it back on its topic with
its own headers, once, and never commits past a dead letter --only-error passed over."""

import importlib.util
import json
import uuid
from types import ModuleType
from typing import Any

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


#: Reasons as shared/messaging/consumer.py writes them (`_dead_letter`, `describe`).
MALFORMED = "malformed: value is not JSON: Expecting value: line 1 column 1 (char 0)"
MISSING_ROW = "IntegrityError: ForeignKeyViolationError (SQLSTATE 23503)"


async def dead_letter(
    producer: AIOKafkaProducer, topic: str, n: int, error: str, *, partition: int = 0
) -> str:
    event_id = str(uuid.uuid4())
    await producer.send_and_wait(
        f"{topic}.dlq",
        json.dumps({"customer_id": "c", "full_name": f"secret {n}"}).encode(),
        key=b"c",
        partition=partition,
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


async def committed(bootstrap: str, topic: str) -> dict[int, int | None]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=dlq.REDRIVE_GROUP, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer.topics()
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in partitions}
    finally:
        await consumer.stop()


@pytest.fixture
def consumer_configs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The configuration of every consumer the script makes."""
    made: list[dict[str, Any]] = []
    real = dlq.AIOKafkaConsumer

    def spy(*args: Any, **config: Any) -> AIOKafkaConsumer:
        made.append(config)
        return real(*args, **config)

    monkeypatch.setattr(dlq, "AIOKafkaConsumer", spy)
    return made


async def test_list_then_redrive_once(
    kafka_bootstrap: str,
    fresh_topic: str,
    producer: AIOKafkaProducer,
    capsys: pytest.CaptureFixture[str],
    consumer_configs: list[dict[str, Any]],
) -> None:
    poison = await dead_letter(producer, fresh_topic, 1, MALFORMED)
    fixed = await dead_letter(producer, fresh_topic, 2, MISSING_ROW)

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
    await dlq.redrive(kafka_bootstrap, topic, only_error=None, dry_run=False)
    assert json.loads(capsys.readouterr().out) == {"redriven": 2, "passed_over": 0}
    assert [h["ce_id"] for h in await read_all(kafka_bootstrap, fresh_topic)] == [
        poison.encode(),
        fixed.encode(),
    ]
    assert not any(
        name.startswith("x-") for h in await read_all(kafka_bootstrap, fresh_topic) for name in h
    )

    # A second run starts where the first stopped: nothing is sent twice.
    await dlq.redrive(kafka_bootstrap, topic, only_error=None, dry_run=False)
    assert json.loads(capsys.readouterr().out) == {"redriven": 0, "passed_over": 0}
    assert len(await read_all(kafka_bootstrap, fresh_topic)) == 2

    # aiokafka's default `latest` would jump past every dead letter of a partition whose
    # committed position the broker no longer has.
    assert consumer_configs
    assert all(c["auto_offset_reset"] == "earliest" for c in consumer_configs)


async def test_redrive_never_commits_past_what_it_passed_over(
    kafka_bootstrap: str,
    fresh_topic: str,
    producer: AIOKafkaProducer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic = f"{fresh_topic}.dlq"
    poison = await dead_letter(producer, fresh_topic, 1, MALFORMED, partition=0)  # offset 0
    after = await dead_letter(producer, fresh_topic, 2, MISSING_ROW, partition=0)  # offset 1
    other = await dead_letter(producer, fresh_topic, 3, MISSING_ROW, partition=1)  # offset 0

    await dlq.redrive(kafka_bootstrap, topic, only_error="^IntegrityError", dry_run=True)
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {
        "would_redrive": 2,
        "passed_over": 1,
    }
    assert await committed(kafka_bootstrap, topic) == {0: None, 1: None, 2: None}

    await dlq.redrive(kafka_bootstrap, topic, only_error="^IntegrityError", dry_run=False)
    assert json.loads(capsys.readouterr().out) == {"redriven": 2, "passed_over": 1}
    sent = [h["ce_id"] for h in await read_all(kafka_bootstrap, fresh_topic)]
    assert sorted(sent) == sorted([after.encode(), other.encode()])
    # partition 0 stops at the dead letter passed over; partition 1 is done to its end
    assert await committed(kafka_bootstrap, topic) == {0: 0, 1: 1, 2: None}

    # The next run sees the passed-over one again, and re-sends the one after it (its
    # consumers skip it: same ce_id); partition 1 is not read again.
    await dlq.redrive(kafka_bootstrap, topic, only_error="^IntegrityError", dry_run=False)
    assert json.loads(capsys.readouterr().out) == {"redriven": 1, "passed_over": 1}
    assert await committed(kafka_bootstrap, topic) == {0: 0, 1: 1, 2: None}

    # Once its cause is fixed, a wider pattern takes it, and the partition is done.
    await dlq.redrive(
        kafka_bootstrap, topic, only_error="^(malformed|IntegrityError)", dry_run=False
    )
    assert json.loads(capsys.readouterr().out) == {"redriven": 2, "passed_over": 0}
    assert poison.encode() in [h["ce_id"] for h in await read_all(kafka_bootstrap, fresh_topic)]
    assert await committed(kafka_bootstrap, topic) == {0: 2, 1: 1, 2: None}
    await dlq.redrive(kafka_bootstrap, topic, only_error=None, dry_run=False)
    assert json.loads(capsys.readouterr().out) == {"redriven": 0, "passed_over": 0}


def test_refuses_a_topic_that_is_not_a_dead_letter_topic() -> None:
    with pytest.raises(SystemExit):
        dlq.main(["--bootstrap", "127.0.0.1:1", "redrive", "ims.customer.events.v1"])
