"""`ims poison`: poison messages on every consumed topic of the running stack (issue 8).

Publishes the messages of `ims_cli.poison` (poison with valid events among them) to the
broker of `ims up`, then watches, for every consumer of each topic, what became of each
record: dead-lettered (its copy in `<topic>.dlq`, matched by `x-poison-id` and
`x-consumer`), applied (its `ce_id` in that service's inbox table), or skipped (the
consumer group committed past it with neither). It reports the counts by topic, consumer
and kind, the lag of the valid events, and fails when anything differs from what the kind
expects, when a dead-lettered copy has no `x-error`, or when a record is still unread at
the deadline (a stalled consumer).
"""

import asyncio
import statistics
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ims_cli import poison
from ims_cli.stack_config import StackConfig
from shared.db import asyncpg_dsn
from shared.events.contracts import ReferenceItemChangedV1, to_cloud_event
from shared.events.topics import REFERENCE_EVENTS, dlq

DEFAULT_MESSAGES = 1000
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MAX_LAG_S = 30.0
_SEND_CHUNK = 500
_POLL_S = 0.5

Outcome = str  # "dead-letter", "skip", "apply" or "pending"


@dataclass(frozen=True, slots=True)
class Sent:
    message: poison.Message
    partition: int
    offset: int
    sent_at: float  # wall clock, to compare with the inbox's processed_at


@dataclass
class Report:
    run_id: str
    sent: list[Sent]
    #: (poison_id, consumer) -> outcome
    outcomes: dict[tuple[str, str], Outcome] = field(default_factory=dict)
    #: (poison_id, consumer) -> x-error of the dead-lettered copy
    reasons: dict[tuple[str, str], str] = field(default_factory=dict)
    #: seconds from publication to application, per valid event and consumer
    lags: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    max_lag_s: float = DEFAULT_MAX_LAG_S

    def failures(self) -> list[str]:
        problems: list[str] = []
        for s in self.sent:
            for consumer in poison.CONSUMERS[s.message.topic]:
                got = self.outcomes.get((s.message.poison_id, consumer), "pending")
                where = f"{s.message.poison_id} ({s.message.kind}) at {consumer}"
                if got != s.message.expect:
                    problems.append(f"{where}: {got}, expected {s.message.expect}")
                elif got == "dead-letter" and not self.reasons.get((s.message.poison_id, consumer)):
                    problems.append(f"{where}: dead-lettered without an x-error reason")
        if self.lags and max(self.lags) > self.max_lag_s:
            problems.append(
                f"a valid event took {max(self.lags):.1f} s to apply (bound {self.max_lag_s:g} s)"
            )
        return problems

    @property
    def ok(self) -> bool:
        return not self.failures()

    def counts(self) -> dict[tuple[str, str, str], Counter[str]]:
        """(topic, consumer, kind) -> {"sent": n, outcome: n, ...}."""
        table: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
        for s in self.sent:
            m = s.message
            for consumer in poison.CONSUMERS[m.topic]:
                row = table[(m.topic, consumer, m.kind)]
                row["sent"] += 1
                row[self.outcomes.get((m.poison_id, consumer), "pending")] += 1
        return dict(table)


def _reference_cleanup(report: Report) -> list[poison.Message]:
    """Deletions of the probe items the valid reference events created."""
    out = []
    for s in report.sent:
        m = s.message
        if m.kind != poison.VALID or m.topic != REFERENCE_EVENTS or m.key is None:
            continue
        code = m.key.decode().removeprefix(f"{poison.PROBE_LIST}/")  # the key is list/code
        event = to_cloud_event(
            ReferenceItemChangedV1(list=poison.PROBE_LIST, code=code, item=None, deleted=True)
        )
        out.append(
            poison.Message(
                topic=m.topic,
                kind="cleanup",
                expect="apply",
                poison_id=f"{m.poison_id}:cleanup",
                key=event.subject.encode(),
                value=event.kafka_value(),
                headers=event.kafka_headers(),
                event_id=event.id,
            )
        )
    return out


def _interleaved(per_topic: Sequence[list[poison.Message]]) -> list[poison.Message]:
    """Round-robin over the topics, so every consumer is under fire at the same time."""
    out: list[poison.Message] = []
    for i in range(max((len(ms) for ms in per_topic), default=0)):
        out.extend(ms[i] for ms in per_topic if i < len(ms))
    return out


async def _publish(producer: AIOKafkaProducer, messages: list[poison.Message]) -> list[Sent]:
    sent: list[Sent] = []
    for start in range(0, len(messages), _SEND_CHUNK):
        chunk = messages[start : start + _SEND_CHUNK]
        futures = [
            await producer.send(m.topic, m.value, key=m.key, headers=m.headers) for m in chunk
        ]
        for m, meta in zip(chunk, await asyncio.gather(*futures), strict=True):
            sent.append(Sent(m, meta.partition, meta.offset, time.time()))
    return sent


class _Watcher:
    """Reads the DLQs, the inboxes and the committed offsets, as often as asked."""

    def __init__(self, config: StackConfig, run_id: str, topics: Iterable[str]) -> None:
        self._config = config
        self._run_id = run_id
        self._topics = list(topics)
        self._dlq_reader = AIOKafkaConsumer(
            bootstrap_servers=config.kafka_bootstrap_servers,
            enable_auto_commit=False,
            fetch_max_wait_ms=50,
            max_partition_fetch_bytes=4 * poison.MAX_RECORD_BYTES,
        )
        self._groups: dict[str, AIOKafkaConsumer] = {}
        self.dead: dict[tuple[str, str], str] = {}

    async def start(self) -> None:
        """Position the DLQ reader at the current ends: only this run's copies matter."""
        await self._dlq_reader.start()
        await self._dlq_reader.topics()
        partitions = [
            TopicPartition(dlq(t), p)
            for t in self._topics
            for p in self._dlq_reader.partitions_for_topic(dlq(t)) or ()
        ]
        self._dlq_reader.assign(partitions)
        await self._dlq_reader.seek_to_end(*partitions)
        for t in self._topics:
            for group in poison.CONSUMERS[t]:
                if group not in self._groups:
                    # Asks for the group's committed offsets without joining it.
                    probe = AIOKafkaConsumer(
                        bootstrap_servers=self._config.kafka_bootstrap_servers,
                        group_id=group,
                        enable_auto_commit=False,
                    )
                    await probe.start()
                    self._groups[group] = probe

    async def stop(self) -> None:
        await self._dlq_reader.stop()
        for probe in self._groups.values():
            await probe.stop()

    async def read_dead_letters(self) -> None:
        while True:
            batch = await self._dlq_reader.getmany(timeout_ms=100, max_records=2000)
            if not batch:
                return
            for records in batch.values():
                for r in records:
                    h = {k: v for k, v in r.headers or ()}
                    if h.get(poison.RUN_HEADER) != self._run_id.encode():
                        continue
                    key = (h[poison.ID_HEADER].decode(), h.get("x-consumer", b"?").decode())
                    self.dead[key] = h.get("x-error", b"").decode(errors="replace")

    async def committed(
        self, group: str, tps: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int]:
        probe = self._groups[group]
        return {tp: (await probe.committed(tp)) or 0 for tp in tps}

    async def applied(self, group: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, float]:
        """ce_id -> processed_at (epoch seconds) of the events this group applied."""
        service = next(s for s in self._config.services if s.name == group)
        conn = await asyncpg.connect(asyncpg_dsn(self._config.database_url(service.database)))
        try:
            rows = await conn.fetch(
                "SELECT event_id, extract(epoch FROM processed_at) AS at FROM inbox"
                " WHERE consumer = $1 AND event_id = ANY($2::uuid[])",
                group,
                ids,
            )
        finally:
            await conn.close()
        return {row["event_id"]: float(row["at"]) for row in rows}


async def _settle(watcher: _Watcher, report: Report, deadline: float) -> None:
    """Poll until every (record, consumer) has an outcome, or the deadline."""
    by_group: dict[str, list[Sent]] = defaultdict(list)
    for s in report.sent:
        for group in poison.CONSUMERS[s.message.topic]:
            by_group[group].append(s)
    # Seen committed past, with no DLQ copy or inbox row yet: those were read before the
    # offsets, so a copy written just before the commit may have been missed; only if the
    # next round, read after those offsets, finds nothing either is the record skipped.
    passed: set[tuple[str, str]] = set()
    while True:
        await watcher.read_dead_letters()
        pending = 0
        for group, sents in by_group.items():
            open_ = [s for s in sents if (s.message.poison_id, group) not in report.outcomes]
            if not open_:
                continue
            ids = [s.message.event_id for s in open_ if s.message.event_id is not None]
            applied = await watcher.applied(group, ids)
            tps = {TopicPartition(s.message.topic, s.partition) for s in open_}
            committed = await watcher.committed(group, tps)
            for s in open_:
                key = (s.message.poison_id, group)
                if key in watcher.dead:
                    report.outcomes[key] = "dead-letter"
                    report.reasons[key] = watcher.dead[key]
                elif s.message.event_id in applied:
                    report.outcomes[key] = "apply"
                    if s.message.kind == poison.VALID:
                        report.lags.append(max(0.0, applied[s.message.event_id] - s.sent_at))
                elif key in passed:
                    report.outcomes[key] = "skip"
                else:
                    pending += 1
                    if committed[TopicPartition(s.message.topic, s.partition)] > s.offset:
                        passed.add(key)
        if pending == 0 or time.monotonic() > deadline:
            return
        await asyncio.sleep(_POLL_S)


async def run_poison(
    config: StackConfig,
    *,
    messages: int = DEFAULT_MESSAGES,
    topics: Sequence[str] = poison.CONSUMED_TOPICS,
    valid_every: int = 5,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_lag_s: float = DEFAULT_MAX_LAG_S,
    seed: int = 0,
) -> Report:
    """Publish, wait for every consumer to deal with every record, and report."""
    run_id = f"p{uuid.uuid4().hex[:10]}"
    per_topic = [
        list(poison.generate(t, messages, run_id=run_id, valid_every=valid_every, seed=seed))
        for t in topics
    ]
    producer = AIOKafkaProducer(
        bootstrap_servers=config.kafka_bootstrap_servers,
        client_id="ims-poison",
        acks="all",
        linger_ms=5,
        max_request_size=poison.MAX_RECORD_BYTES,
    )
    watcher = _Watcher(config, run_id, topics)
    await producer.start()
    try:
        await watcher.start()
        started = time.monotonic()
        report = Report(run_id=run_id, sent=[], max_lag_s=max_lag_s)
        report.sent = await _publish(producer, _interleaved(per_topic))
        await _settle(watcher, report, time.monotonic() + timeout_s)
        report.elapsed_s = time.monotonic() - started
        # The probe items go again; nobody waits for that.
        await _publish(producer, _reference_cleanup(report))
    finally:
        await watcher.stop()
        await producer.stop()
    return report


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def print_report(report: Report, out: TextIO) -> None:
    columns = ("sent", "dead-letter", "skip", "apply", "pending")
    width = max(len(k) for (_, _, k) in report.counts()) if report.sent else 4
    print(
        f"{'topic':<26} {'consumer':<10} {'kind':<{width}} "
        + " ".join(f"{c:>11}" for c in columns)
        + "  expected",
        file=out,
    )
    for (topic, consumer, kind), row in sorted(report.counts().items()):
        flag = "" if row[poison.expected(kind)] == row["sent"] else "  <- FAIL"
        print(
            f"{topic:<26} {consumer:<10} {kind:<{width}} "
            + " ".join(f"{row[c]:>11}" for c in columns)
            + f"  {poison.expected(kind)}{flag}",
            file=out,
        )
    valid = [s for s in report.sent if s.message.kind == poison.VALID]
    expected_applications = sum(len(poison.CONSUMERS[s.message.topic]) for s in valid)
    print(
        f"valid events: {len(report.lags)} of {expected_applications} applications done;"
        f" lag p50 {statistics.median(report.lags) if report.lags else 0:.2f} s,"
        f" p99 {_pct(report.lags, 0.99):.2f} s, max {max(report.lags, default=0):.2f} s"
        f" (bound {report.max_lag_s:g} s)",
        file=out,
    )
    poisoned = len(report.sent) - len(valid)
    print(f"{poisoned} poison records in {report.elapsed_s:.1f} s (run {report.run_id})", file=out)
    failures = report.failures()
    for problem in failures[:20]:
        print(f"FAIL {problem}", file=out)
    if len(failures) > 20:
        print(f"... and {len(failures) - 20} more", file=out)
    print("result: ok" if not failures else f"result: {len(failures)} failures", file=out)


def main_poison(
    config: StackConfig,
    *,
    messages: int,
    topics: Sequence[str],
    timeout_s: float,
    max_lag_s: float,
    out: TextIO = sys.stdout,
) -> int:
    print(
        f"ims poison: {messages} poison messages per topic on {config.kafka_bootstrap_servers}"
        f" ({', '.join(topics)})",
        file=out,
        flush=True,
    )
    report = asyncio.run(
        run_poison(
            config, messages=messages, topics=topics, timeout_s=timeout_s, max_lag_s=max_lag_s
        )
    )
    print_report(report, out)
    return 0 if report.ok else 1
