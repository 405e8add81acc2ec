"""The invariants `ims chaos` checks after quiescence, on the real state of the stack.

`collect_state` reads the customer, approval and misa_sync databases (asyncpg), the MISA
simulator's stored objects (`GET /_sim/account-objects`), every topic and dead-letter
topic end to end and every consumer group's committed offsets (aiokafka). `check` is
pure: it compares that state with what the workload did and answers one `Invariant` per
line of the report, each with its count.

How "no event lost, none applied twice" is read: every event of a type a consumer
handles that is on its topic must be in that consumer's inbox (lost otherwise), every
inbox row must name an event on the topic, and the effects the services keep per event
must each exist once: one `submitted` and one `approved` history entry per customer, one
`new` review per customer, one code per customer, one MISA object per customer. The
inbox's primary key (consumer, event id) already makes a second application of the same
event impossible; a relay that published an event twice (allowed: at least once) is
counted and reported, not failed.
"""

import asyncio
import json
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.events import topics as topic_names

#: Consumer group (= service) -> the topics it reads.
CONSUMED: dict[str, tuple[str, ...]] = {
    "customer": (
        topic_names.APPROVAL_EVENTS,
        topic_names.MISA_EVENTS,
        topic_names.REFERENCE_EVENTS,
    ),
    "approval": (topic_names.CUSTOMER_EVENTS, topic_names.REFERENCE_EVENTS),
    "misa_sync": (topic_names.CUSTOMER_EVENTS,),
}
#: Service -> the topic its outbox publishes to.
PRODUCES: dict[str, str] = {
    "customer": topic_names.CUSTOMER_EVENTS,
    "approval": topic_names.APPROVAL_EVENTS,
    "misa_sync": topic_names.MISA_EVENTS,
    "reference": topic_names.REFERENCE_EVENTS,
}
_SHOWN = 5  # problems listed per invariant


def handled_types() -> dict[str, set[str]]:
    """The `ce_type`s each consumer applies: the services' own handler tables."""
    from typing import cast

    from approval.handlers import build_handlers as approval_handlers
    from approval.settings import ApprovalSettings
    from customer.handlers import HANDLERS as CUSTOMER_HANDLERS
    from misa_sync.handlers import HANDLERS as MISA_SYNC_HANDLERS

    return {
        "customer": set(CUSTOMER_HANDLERS),
        "approval": set(approval_handlers(cast(ApprovalSettings, None))),
        "misa_sync": set(MISA_SYNC_HANDLERS),
    }


# ---- the state -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TopicRecord:
    partition: int
    offset: int
    event_id: str | None
    event_type: str | None


@dataclass
class ChaosState:
    #: customer DB: id -> row (status, customer_code, version, misa_code, and the fields)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: customer DB: (customer id, action) -> history entries
    history: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: approval DB
    reviews: list[dict[str, Any]] = field(default_factory=list)
    codes: list[dict[str, Any]] = field(default_factory=list)  # customer_codes rows
    replica: dict[str, dict[str, Any]] = field(default_factory=dict)  # its customers
    #: misa_sync DB: customer id -> link row
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the simulator's stored customers
    misa_objects: list[dict[str, Any]] = field(default_factory=list)
    #: service -> [(event_id, published)]
    outboxes: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)
    #: consumer -> topic -> event ids in its inbox
    inboxes: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    #: topic (and topic.dlq) -> every record on it
    topics: dict[str, list[TopicRecord]] = field(default_factory=dict)
    #: consumer -> (topic, partition) -> committed offset
    committed: dict[str, dict[tuple[str, int], int]] = field(default_factory=dict)
    #: consumer -> ce_types it handles
    handled: dict[str, set[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Invariant:
    name: str
    ok: bool
    count: str  # what was counted, e.g. "2000 of 2000"
    problems: tuple[str, ...] = ()
    more: int = 0  # problems not listed

    @classmethod
    def of(cls, name: str, count: str, problems: list[str]) -> "Invariant":
        return cls(
            name, not problems, count, tuple(problems[:_SHOWN]), max(0, len(problems) - _SHOWN)
        )


# ---- the checks (pure) -----------------------------------------------------------------


def _active_with_one_code(state: ChaosState, submitted: list[str]) -> Invariant:
    problems = []
    codes_by_customer: dict[str, list[str]] = defaultdict(list)
    for assigned_row in state.codes:
        codes_by_customer[str(assigned_row["customer_id"])].append(assigned_row["code"])
    active = 0
    for cid in submitted:
        row = state.customers.get(cid)
        if row is None:
            problems.append(f"{cid}: not in the customer database")
            continue
        assigned = codes_by_customer.get(cid, [])
        if row["status"] != "active" or not row["customer_code"]:
            problems.append(f"{cid}: {row['status']}, code {row['customer_code']}")
        elif assigned != [row["customer_code"]]:
            problems.append(f"{cid}: code {row['customer_code']}, approval assigned {assigned}")
        else:
            active += 1
    return Invariant.of(
        "every submitted customer is active with exactly one code",
        f"{active} of {len(submitted)}",
        problems,
    )


def _codes_unique(state: ChaosState) -> Invariant:
    problems = []
    in_customer = Counter(
        r["customer_code"] for r in state.customers.values() if r["customer_code"]
    )
    in_approval = Counter(r["code"] for r in state.codes)
    for code, n in (in_customer + in_approval).items():
        if in_customer[code] > 1 or in_approval[code] > 1:
            problems.append(f"{code} used {n} times")
    per_customer = Counter(str(r["customer_id"]) for r in state.codes)
    problems += [f"{cid} has {n} codes" for cid, n in per_customer.items() if n > 1]
    return Invariant.of("no code used twice", f"{len(in_approval)} codes", problems)


def _services_agree(state: ChaosState) -> Invariant:
    problems = []
    for cid, row in state.customers.items():
        if row["status"] == "draft":
            continue  # never submitted: approval has not heard of it
        seen: dict[str, Any] | None = state.replica.get(cid)
        if seen is None:
            problems.append(f"{cid}: unknown to approval")
        elif (seen["status"], seen["customer_code"]) != (row["status"], row["customer_code"]):
            problems.append(
                f"{cid}: customer {row['status']}/{row['customer_code']}, "
                f"approval {seen['status']}/{seen['customer_code']}"
            )
    for review in state.reviews:
        held = state.customers.get(str(review["customer_id"]))
        if (
            review["status"] == "approved"
            and held
            and review["customer_code"] != held["customer_code"]
        ):
            problems.append(f"review {review['id']}: code {review['customer_code']}")
    compared = sum(1 for r in state.customers.values() if r["status"] != "draft")
    return Invariant.of(
        "approval and customer agree on every status and code", f"{compared} customers", problems
    )


def _misa_objects(state: ChaosState) -> Invariant:
    problems = []
    by_code: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for obj in state.misa_objects:
        by_code[str(obj.get("account_object_code"))].append(obj)
    active = [r for r in state.customers.values() if r["status"] == "active"]
    good = 0
    for row in active:
        objects = by_code.get(row["customer_code"], [])
        link = state.links.get(row["id"])
        if len(objects) != 1:
            problems.append(f"{row['customer_code']}: {len(objects)} MISA objects")
            continue
        obj = objects[0]
        wrong = [
            name
            for name, got, want in (
                ("name", obj.get("account_object_name"), row["full_name"]),
                ("tel", obj.get("tel"), row["phone"]),
                ("email", obj.get("email_address"), row["email"]),
                ("tax code", obj.get("company_tax_code"), row["tax_code"]),
                ("address", obj.get("address"), row["address"]),
                ("is_customer", obj.get("is_customer"), True),
            )
            if got != want
        ]
        if link is None or link["state"] != "synced" or link["misa_code"] != row["customer_code"]:
            wrong.append(f"link {link and (link['state'], link['misa_code'])}")
        elif link["account_object_id"] != obj.get("account_object_id"):
            wrong.append("link names another object")
        if row["misa_code"] != row["customer_code"]:
            wrong.append(f"customer's misa_code {row['misa_code']}")
        if wrong:
            problems.append(f"{row['customer_code']}: {', '.join(wrong)} differ")
        else:
            good += 1
    ours = {r["customer_code"] for r in active}
    extra = [code for code in by_code if code not in ours]
    problems += [f"MISA object {code} belongs to no active customer" for code in extra]
    return Invariant.of(
        "exactly one MISA object per active customer, right code and fields",
        f"{good} of {len(active)}",
        problems,
    )


def _outboxes_published(state: ChaosState) -> Invariant:
    problems = []
    total = 0
    for service, rows in sorted(state.outboxes.items()):
        on_topic = {r.event_id for r in state.topics.get(PRODUCES[service], [])}
        for event_id, published in rows:
            total += 1
            if not published:
                problems.append(f"{service}: {event_id} not published")
            elif event_id not in on_topic:
                problems.append(f"{service}: {event_id} marked published, not on the topic")
    return Invariant.of("every event in the outboxes was published", f"{total} events", problems)


def _consumers_match_topics(state: ChaosState) -> Invariant:
    problems = []
    applied = 0
    for consumer, topics in sorted(CONSUMED.items()):
        types = state.handled.get(consumer, set())
        inbox = state.inboxes.get(consumer, {})
        for topic in topics:
            records = state.topics.get(topic, [])
            wanted = {r.event_id for r in records if r.event_type in types and r.event_id}
            held = inbox.get(topic, set())
            applied += len(held)
            lost = wanted - held
            phantom = held - {r.event_id for r in records}
            problems += [f"{consumer} never applied {e} of {topic}" for e in sorted(lost)]
            problems += [f"{consumer} applied {e}, not on {topic}" for e in sorted(phantom)]
    return Invariant.of(
        "every consumer's state matches the topic (no event lost)",
        f"{applied} events applied",
        problems,
    )


def _applied_once(state: ChaosState, submitted: list[str]) -> Invariant:
    problems = []
    reviews = Counter(str(r["customer_id"]) for r in state.reviews if r["kind"] == "new")
    for cid in submitted:
        for action in ("created", "submitted", "approved"):
            n = state.history[(cid, action)]
            if n != 1:
                problems.append(f"{cid}: {n} '{action}' history entries")
        if reviews[cid] != 1:
            problems.append(f"{cid}: {reviews[cid]} reviews")
    return Invariant.of(
        "no event applied twice (one history entry, one review per step)",
        f"{len(submitted)} customers",
        problems,
    )


def _dlqs_empty(state: ChaosState) -> Invariant:
    counts = {t: len(rs) for t, rs in state.topics.items() if t.endswith(".dlq")}
    problems = [f"{t}: {n} records" for t, n in sorted(counts.items()) if n]
    return Invariant.of(
        "the dead-letter topics hold nothing", f"{sum(counts.values())} records", problems
    )


def _nothing_stuck(state: ChaosState) -> Invariant:
    problems = []
    pending_reviews = [r for r in state.reviews if r["status"] == "pending"]
    problems += [f"review {r['id']} pending" for r in pending_reviews]
    unsettled = [(cid, r["state"]) for cid, r in state.links.items() if r["state"] != "synced"]
    problems += [f"MISA link {cid} {s}" for cid, s in unsettled]
    waiting = [cid for cid, r in state.customers.items() if r["status"] == "pending_approval"]
    problems += [f"customer {cid} pending approval" for cid in waiting]
    lag = 0
    for consumer, topics in sorted(CONSUMED.items()):
        for topic in topics:
            ends: dict[int, int] = {}
            for r in state.topics.get(topic, []):
                ends[r.partition] = max(ends.get(r.partition, 0), r.offset + 1)
            for partition, end in sorted(ends.items()):
                at = state.committed.get(consumer, {}).get((topic, partition), 0)
                if at < end:
                    lag += end - at
                    problems.append(f"{consumer} at {at} of {end} on {topic}[{partition}]")
    return Invariant.of(
        "nothing stuck: no review or MISA link pending, every consumer at the end",
        f"{len(pending_reviews)} reviews, {len(unsettled)} links pending, lag {lag}",
        problems,
    )


def check(state: ChaosState, submitted: Iterable[str]) -> list[Invariant]:
    ids = [str(c) for c in submitted]
    return [
        _active_with_one_code(state, ids),
        _codes_unique(state),
        _services_agree(state),
        _misa_objects(state),
        _outboxes_published(state),
        _consumers_match_topics(state),
        _applied_once(state, ids),
        _dlqs_empty(state),
        _nothing_stuck(state),
    ]


def duplicates_on_topics(state: ChaosState) -> dict[str, int]:
    """Events published more than once (allowed, at least once), per topic."""
    out = {}
    for topic, records in state.topics.items():
        ids = Counter(r.event_id for r in records if r.event_id)
        out[topic] = sum(n - 1 for n in ids.values() if n > 1)
    return out


# ---- reading the state -----------------------------------------------------------------


async def _fetch(dsn: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    at_least: Mapping[int, int] | None = None,
    idle_polls: int = 6,
    timeout_s: float = 300,
) -> list[TopicRecord]:
    """Every record of `topic`, from the beginning until `idle_polls` polls bring nothing
    after the end offsets were reached.

    The end offsets are only a lower bound: Tansu's ListOffsets answers the last batch's
    base offset + 1 for "latest", short of the end after a batch of several records. The
    fetch wait is long because Tansu's S3 engine answers a shorter fetch empty.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=1000
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await consumer.topics()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        ends = await consumer.end_offsets(tps)
        for tp in tps:  # e.g. the consumer groups' committed offsets: records exist below
            ends[tp] = max(ends[tp], (at_least or {}).get(tp.partition, 0))
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        out: list[TopicRecord] = []
        seen: dict[TopicPartition, int] = {}
        idle = 0
        deadline = time.monotonic() + timeout_s
        while idle < idle_polls and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if not batch:
                if all(seen.get(tp, 0) >= end for tp, end in ends.items()):
                    idle += 1
                continue
            idle = 0
            for tp, records in batch.items():
                seen[tp] = records[-1].offset + 1
            for records in batch.values():
                for r in records:
                    headers = {k: v for k, v in r.headers or ()}
                    ce_id = headers.get("ce_id")
                    ce_type = headers.get("ce_type")
                    out.append(
                        TopicRecord(
                            r.partition,
                            r.offset,
                            ce_id.decode(errors="replace") if ce_id else None,
                            ce_type.decode(errors="replace") if ce_type else None,
                        )
                    )
        return out
    finally:
        await consumer.stop()


async def read_committed(
    bootstrap: str, group: str, partitions: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await probe.start()
    try:
        out = {}
        for topic, partition in partitions:
            out[(topic, partition)] = (await probe.committed(TopicPartition(topic, partition))) or 0
        return out
    finally:
        await probe.stop()


def _row(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in record.items()}


async def collect_state(
    dsns: Mapping[str, str], simulator_url: str, bootstrap: str, partitions: int
) -> ChaosState:
    """Read everything the invariants look at (services by name in `dsns`)."""
    state = ChaosState(handled=handled_types())
    customer, approval, misa = dsns["customer"], dsns["approval"], dsns["misa_sync"]
    state.customers = {
        str(r["id"]): _row(r)
        for r in await _fetch(
            customer,
            "SELECT id, status, customer_code, version, misa_code, full_name, phone, email,"
            " tax_code, address FROM customers",
        )
    }
    for r in await _fetch(
        customer, "SELECT customer_id, action, count(*) AS n FROM customer_history GROUP BY 1, 2"
    ):
        state.history[(str(r["customer_id"]), r["action"])] = r["n"]
    state.reviews = [
        _row(r)
        for r in await _fetch(
            approval, "SELECT id, customer_id, kind, status, customer_code FROM reviews"
        )
    ]
    state.codes = [
        _row(r) for r in await _fetch(approval, "SELECT code, customer_id FROM customer_codes")
    ]
    state.replica = {
        str(r["customer_id"]): _row(r)
        for r in await _fetch(
            approval, "SELECT customer_id, status, customer_code, version FROM customers"
        )
    }
    state.links = {
        str(r["customer_id"]): _row(r)
        for r in await _fetch(
            misa,
            "SELECT customer_id, state, misa_code, customer_code, account_object_id FROM misa_links",
        )
    }
    async with httpx.AsyncClient(timeout=30) as http:
        items = (await http.get(f"{simulator_url}/_sim/account-objects")).json()["items"]
    state.misa_objects = [o for o in items if o.get("is_customer")]
    for service, dsn in dsns.items():
        rows = await _fetch(dsn, "SELECT event_id, published_at IS NOT NULL AS sent FROM outbox")
        state.outboxes[service] = [(str(r["event_id"]), bool(r["sent"])) for r in rows]
    for consumer in CONSUMED:
        inbox: dict[str, set[str]] = defaultdict(set)
        for r in await _fetch(
            dsns[consumer], "SELECT topic, event_id FROM inbox WHERE consumer = $1", consumer
        ):
            inbox[r["topic"]].add(str(r["event_id"]))
        state.inboxes[consumer] = dict(inbox)
    for consumer, topics in CONSUMED.items():
        wanted = [(t, p) for t in topics for p in range(partitions)]
        state.committed[consumer] = await read_committed(bootstrap, consumer, wanted)
    names = [t for topic in topic_names.ALL_TOPICS for t in (topic, topic_names.dlq(topic))]
    # What a group committed is on the topic: read at least that far (the S3 engine may
    # answer a fetch empty while it is still reading).
    floors: dict[str, dict[int, int]] = defaultdict(dict)
    for committed in state.committed.values():
        for (topic, partition), offset in committed.items():
            floors[topic][partition] = max(floors[topic].get(partition, 0), offset)
    read = await asyncio.gather(*(read_topic(bootstrap, t, at_least=floors.get(t)) for t in names))
    state.topics = dict(zip(names, read, strict=True))
    return state


def describe_state(state: ChaosState) -> dict[str, Any]:
    """Counts for the report's footer."""
    return {
        "customers": len(state.customers),
        "reviews": len(state.reviews),
        "misa objects": len(state.misa_objects),
        "topic records": {t: len(rs) for t, rs in sorted(state.topics.items()) if rs},
        "published twice": {t: n for t, n in duplicates_on_topics(state).items() if n},
    }


def to_json(invariants: list[Invariant]) -> str:
    return json.dumps([{"name": i.name, "ok": i.ok, "count": i.count} for i in invariants])
