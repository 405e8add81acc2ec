"""List or re-drive a dead-letter topic (`<topic>.dlq`, CONTRACT.md §8).

Runs with nothing but the Python of any IMS service image (it needs aiokafka), fed on
standard input, so the operator needs no Kafka tooling of their own:

    # compose
    docker compose exec -T customer python - list ims.customer.events.v1.dlq < scripts/dlq.py
    # Kubernetes
    kubectl -n ims exec -i deploy/ims-customer -- \\
        python - list ims.customer.events.v1.dlq < deploy/scripts/dlq.py

`list` prints one JSON line per dead letter: where it came from (`x-original-topic`,
partition, offset), which consumer gave up (`x-consumer`, `x-attempts`) and why
(`x-error`), and its CloudEvents id and type; never the value (it may hold personal data)
unless --values. It reads without a consumer group: nothing is committed.

`redrive` publishes each dead letter again to its original topic, with its original
headers (the `x-*` ones removed), key and value, then commits its progress in the group
`ims-dlq-redrive`: a second run starts where the first stopped. Every consumer of the
topic sees the event again; the ones that applied it skip it (their inbox knows its
`ce_id`), the one that failed applies it now. Fix the cause first, or it comes back.
--dry-run shows what would be sent, and commits nothing.

--only-error REGEX re-drives only the dead letters whose `x-error` matches; the others
are passed over, and a later run must still see them: in a partition where one was
passed over, the progress committed stops at the first one passed over. The next run
reads that partition again from there: it passes over (or, with a wider REGEX, sends)
those again, and sends again the matching ones after them, which their consumers skip
as duplicates (same `ce_id`). A partition with nothing passed over is done to its end.

The broker is --bootstrap, else the first `<PREFIX>_KAFKA_BOOTSTRAP_SERVERS` found in
the environment (every service container has its own).
"""

import argparse
import asyncio
import json
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

REDRIVE_GROUP = "ims-dlq-redrive"
#: Headers the dead-lettering consumer added (shared/messaging/consumer.py).
ADDED_HEADERS = (
    "x-error",
    "x-original-topic",
    "x-original-partition",
    "x-original-offset",
    "x-attempts",
    "x-consumer",
)


def bootstrap_from_env() -> str | None:
    for key, value in sorted(os.environ.items()):
        if key.endswith("_KAFKA_BOOTSTRAP_SERVERS") and value:
            return value
    return None


def _text(value: bytes | None) -> str | None:
    return value.decode("utf-8", "replace") if value is not None else None


def describe(record: Any, *, values: bool) -> dict[str, Any]:
    headers = {k: _text(v) for k, v in record.headers or ()}
    out: dict[str, Any] = {
        "partition": record.partition,
        "offset": record.offset,
        "key": _text(record.key),
        "ce_id": headers.get("ce_id"),
        "ce_type": headers.get("ce_type"),
        **{name: headers.get(name) for name in ADDED_HEADERS},
    }
    if values:
        out["value"] = _text(record.value)
    return out


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    if topic not in await consumer.topics():  # also refreshes the metadata
        raise SystemExit(f"no such topic: {topic}")
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


async def _read_to_end(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> list[Any]:
    """Every record from the consumer's positions up to the end offsets as they are now."""
    ends = await consumer.end_offsets(tps)
    records: list[Any] = []
    while True:
        pending = [tp for tp in tps if await consumer.position(tp) < ends[tp]]
        if not pending:
            return records
        batch = await consumer.getmany(*pending, timeout_ms=1000)
        for tp, items in batch.items():
            records.extend(r for r in items if r.offset < ends[tp])


def _consumer(bootstrap: str, **config: Any) -> AIOKafkaConsumer:
    # earliest, not aiokafka's `latest`: a position the broker no longer has (its records
    # expired meanwhile) falls back to the oldest dead letter kept, never past them all.
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **config,
    )


async def list_dead_letters(bootstrap: str, topic: str, *, values: bool, limit: int) -> int:
    consumer = _consumer(bootstrap)
    await consumer.start()
    try:
        tps = await _partitions(consumer, topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records = await _read_to_end(consumer, tps)
    finally:
        await consumer.stop()
    for record in records[:limit]:
        print(json.dumps(describe(record, values=values), ensure_ascii=False))
    print(json.dumps({"dead_letters": len(records), "shown": min(len(records), limit)}))
    return 0


async def redrive(bootstrap: str, topic: str, *, only_error: str | None, dry_run: bool) -> int:
    pattern = re.compile(only_error) if only_error else None
    # Assigned by hand, with a group only to remember how far earlier runs went.
    consumer = _consumer(bootstrap, group_id=REDRIVE_GROUP)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await consumer.start()
    await producer.start()
    sent = passed = 0
    try:
        tps = await _partitions(consumer, topic)
        consumer.assign(tps)
        for tp in tps:
            committed = await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
        records = await _read_to_end(consumer, tps)
        # Per partition, the offset the next run starts at: past the last record read,
        # unless one was passed over: then that one (the first), so no run loses it.
        done: dict[TopicPartition, int] = {}
        held: set[TopicPartition] = set()
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            if tp not in held:
                done[tp] = record.offset + 1
            headers = dict(record.headers or ())
            error = _text(headers.get("x-error")) or ""
            if pattern is not None and not pattern.search(error):
                passed += 1
                if tp not in held:
                    held.add(tp)
                    done[tp] = record.offset
                continue
            target = _text(headers.get("x-original-topic")) or topic.removesuffix(".dlq")
            kept = [(k, v) for k, v in record.headers or () if k not in ADDED_HEADERS]
            if dry_run:
                print(json.dumps({"to": target, **describe(record, values=False)}))
            else:
                await producer.send_and_wait(target, record.value, key=record.key, headers=kept)
            sent += 1
        if done and not dry_run:
            await consumer.commit(done)
    finally:
        await producer.stop()
        await consumer.stop()
    print(json.dumps({"would_redrive" if dry_run else "redriven": sent, "passed_over": passed}))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    paragraphs = (__doc__ or "").split("\n\n")
    parser = argparse.ArgumentParser(prog="dlq.py", description=paragraphs[0])
    parser.add_argument("--bootstrap", default=bootstrap_from_env())
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("list", help="print the dead letters (no values unless --values)")
    show.add_argument("topic")
    show.add_argument("--values", action="store_true")
    show.add_argument("--limit", type=int, default=1000)
    again = sub.add_parser(
        "redrive",
        help="publish the dead letters to their original topic",
        description="\n\n".join(p for p in paragraphs if p.startswith(("`redrive`", "--only"))),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    again.add_argument("topic")
    again.add_argument(
        "--only-error",
        metavar="REGEX",
        help="re-drive only the dead letters whose x-error matches (re.search); in a "
        "partition where one is passed over, the progress committed stops at the first "
        "one passed over, so later runs see it again (and send again the matching ones "
        "after it: consumers skip them as duplicates)",
    )
    again.add_argument(
        "--dry-run", action="store_true", help="print what would be sent; commit nothing"
    )
    args = parser.parse_args(argv)
    if not args.bootstrap:
        parser.error("no --bootstrap and no *_KAFKA_BOOTSTRAP_SERVERS in the environment")
    if not args.topic.endswith(".dlq"):
        parser.error(f"{args.topic} is not a dead-letter topic (<topic>.dlq)")
    if args.command == "list":
        return asyncio.run(
            list_dead_letters(args.bootstrap, args.topic, values=args.values, limit=args.limit)
        )
    return asyncio.run(
        redrive(args.bootstrap, args.topic, only_error=args.only_error, dry_run=args.dry_run)
    )


if __name__ == "__main__":
    sys.exit(main())
