"""Poison messages for the consumed topics (issue 8, hostile input), and the valid events
sent among them.

Pure: builds Kafka records, sends nothing. Every record carries `x-poison-run`,
`x-poison-id` and `x-poison-kind` headers, which the consumers copy to the `.dlq` with the
rest, so a dead-lettered copy can be matched to what was sent and grouped by kind.

Each kind says what every consumer of the topic must do with it (CONTRACT.md §8):

- ``dead-letter``: malformed envelopes and values (any `ce_type`), and known types whose
  data is wrongly typed or that the database refuses: into `<topic>.dlq` with `x-error`;
- ``skip``: a well-formed event of a type nobody handles. The contract says consumers
  *tolerate* unknown types (newer producers may announce more), so they move past it
  without applying it and without dead-lettering it;
- ``apply``: the valid events, with effects that touch nothing real (unknown customer
  ids, a probe reference list), so the run can show they were all applied meanwhile.
"""

import json
import random
import string
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from shared.events import topics
from shared.events.contracts import (
    CustomerApprovedV1,
    CustomerUpdatedV1,
    EventData,
    MisaCustomerLinkedV1,
    ReferenceItemChangedV1,
    to_cloud_event,
)

Outcome = Literal["dead-letter", "skip", "apply"]
Headers = list[tuple[str, bytes]]

RUN_HEADER = "x-poison-run"
ID_HEADER = "x-poison-id"
KIND_HEADER = "x-poison-kind"
VALID = "valid"
#: The reference list the valid reference events write to: no service reads it.
PROBE_LIST = "ims-poison-probe"
#: aiokafka's default max_request_size, which the services' producers keep: the largest
#: record anyone can publish, and so what a consumer must cope with.
MAX_RECORD_BYTES = 1_048_576
#: A record's framing beyond its key, value and headers (measured against aiokafka).
_FRAMING_BYTES = 128
#: Deep enough for the envelope's limit; the deepest also beyond Python's recursion limit.
_DEPTHS = (65, 300, 5_000, 100_000)

#: Who consumes each topic (consumer group = service name) and the `ce_type` every one of
#: them handles, for the data-level poison. tests/ims_cli/test_poison.py checks both
#: against the services' handler tables.
CONSUMERS = topics.CONSUMERS
CONSUMED_TOPICS: tuple[str, ...] = tuple(CONSUMERS)


@dataclass(frozen=True, slots=True)
class Message:
    """One record to publish, and what every consumer of its topic must do with it."""

    topic: str
    kind: str
    expect: Outcome
    poison_id: str
    key: bytes | None
    value: bytes | None
    headers: Headers
    #: The `ce_id` when the record has a readable one (the inbox is keyed by it).
    event_id: uuid.UUID | None = None

    def size(self) -> int:
        return (
            len(self.key or b"")
            + len(self.value or b"")
            + sum(len(k) + len(v) for k, v in self.headers)
            + _FRAMING_BYTES
        )


def _now() -> datetime:
    return datetime.now(UTC)


def valid_data(topic: str, rng: random.Random, run_id: str, seq: int) -> EventData:
    """A contract-valid event with a harmless effect (see the module docstring)."""
    customer_id = uuid.UUID(int=rng.getrandbits(128), version=4)
    if topic == topics.CUSTOMER_EVENTS:
        # A rejected customer nobody knows: approval keeps a bare replica row (never a
        # duplicate candidate), misa_sync has nothing to push.
        return CustomerUpdatedV1(
            customer_id=customer_id,
            version=1,
            changed_fields=[],
            customer={"id": str(customer_id), "status": "rejected", "version": 1},
        )
    if topic == topics.APPROVAL_EVENTS:
        # No such pending customer: the customer service ignores the decision as stale.
        return CustomerApprovedV1(
            customer_id=customer_id,
            review_id=uuid.uuid4(),
            customer_version=1,
            customer_code="POISON-PROBE",
            approved_by="ims-poison",
            approved_at=_now(),
        )
    if topic == topics.MISA_EVENTS:
        return MisaCustomerLinkedV1(
            customer_id=customer_id,
            customer_code="POISON-PROBE",
            misa_code="POISON-PROBE",
            misa_account_object_id=str(uuid.uuid4()),
            created_in_misa=False,
            linked_at=_now(),
        )
    if topic == topics.REFERENCE_EVENTS:
        code = probe_code(run_id, seq)
        return ReferenceItemChangedV1(
            list=PROBE_LIST, code=code, item={"code": code, "name": "probe", "version": 1}
        )
    raise ValueError(f"no consumer reads {topic}")


def probe_code(run_id: str, seq: int) -> str:
    return f"{run_id}-{seq}"


def _envelope(data: EventData, **override: bytes | None) -> tuple[uuid.UUID, Headers, bytes]:
    """Headers and value of `data` as its producer sends them, with headers overridden
    (a None value drops the header)."""
    event = to_cloud_event(data)
    headers: list[tuple[str, bytes | None]] = [
        (k, override.get(k, v)) for k, v in event.kafka_headers()
    ]
    present = {k for k, _ in headers}
    headers += [(k, v) for k, v in override.items() if k not in present]
    return event.id, [(k, v) for k, v in headers if v is not None], event.kafka_value()


_LETTERS = bytes((string.ascii_letters * 5)[:256], "ascii")


def _junk(rng: random.Random, n: int) -> str:
    # Random letters: incompressible enough that PostgreSQL cannot squeeze them into an
    # index entry (a long key must fail there, not be stored by luck).
    return rng.randbytes(n).translate(_LETTERS).decode()


def _nested(depth: int) -> bytes:
    return b'{"customer": ' + b"[" * depth + b"]" * depth + b"}"


#: Per topic: the field mutations that make a known type's data wrong for its model.
_WRONG_TYPES: dict[str, tuple[tuple[str, Any], ...]] = {
    topics.CUSTOMER_EVENTS: (
        ("version", "x"),
        ("version", [1]),
        ("customer_id", 42),
        ("customer", "a string"),
        ("changed_fields", "misa_code"),
    ),
    topics.APPROVAL_EVENTS: (
        ("customer_version", "x"),
        ("customer_id", 42),
        ("approved_at", "yesterday"),
        ("review_id", None),
        ("customer_code", {"code": 1}),
    ),
    topics.MISA_EVENTS: (
        ("customer_id", 42),
        ("created_in_misa", {"yes": True}),
        ("linked_at", "later"),
        ("misa_code", None),
    ),
    topics.REFERENCE_EVENTS: (
        ("list", 42),
        ("code", ["a"]),
        ("item", "a string"),
        ("deleted", {"no": 1}),
    ),
}
#: The identifier each topic's poison damages (invalid or refused by the database).
_ID_FIELD = {
    topics.CUSTOMER_EVENTS: "customer_id",
    topics.APPROVAL_EVENTS: "customer_id",
    topics.MISA_EVENTS: "customer_id",
    topics.REFERENCE_EVENTS: "code",
}

Builder = Callable[["_Ctx"], tuple[uuid.UUID | None, Headers, bytes | None]]


@dataclass
class _Ctx:
    topic: str
    rng: random.Random
    run_id: str
    seq: int
    max_bytes: int

    def data(self) -> EventData:
        return valid_data(self.topic, self.rng, self.run_id, self.seq)

    def mutated(self, field: str, value: Any) -> tuple[uuid.UUID, Headers, bytes]:
        good = self.data()
        event_id, headers, raw = _envelope(good)
        payload = json.loads(raw)
        payload[field] = value
        return event_id, headers, json.dumps(payload, ensure_ascii=False).encode()


def _not_json(c: _Ctx) -> tuple[uuid.UUID | None, Headers, bytes | None]:
    event_id, headers, _ = _envelope(c.data())
    text = c.rng.choice([b"hello", b"customer_id=1&version=2", b"<xml/>", b"{'a': 1}", b"{,}"])
    return event_id, headers, text


def _truncated_json(c: _Ctx) -> tuple[uuid.UUID | None, Headers, bytes | None]:
    event_id, headers, raw = _envelope(c.data())
    return event_id, headers, raw[: c.rng.randrange(1, len(raw) - 1)]


def _not_an_object(c: _Ctx) -> tuple[uuid.UUID | None, Headers, bytes | None]:
    event_id, headers, _ = _envelope(c.data())
    return event_id, headers, c.rng.choice([b"[]", b"[1, 2]", b"42", b"null", b'"text"', b"true"])


def _empty_value(c: _Ctx) -> tuple[uuid.UUID | None, Headers, bytes | None]:
    event_id, headers, _ = _envelope(c.data())
    return event_id, headers, c.rng.choice([b"", None])  # None: a tombstone


def _missing_headers(c: _Ctx) -> tuple[uuid.UUID | None, Headers, bytes | None]:
    dropped = c.rng.choice(
        [("ce_id",), ("ce_type",), ("ce_source", "ce_subject"), ("ce_specversion",), "all"]
    )
    event_id, headers, raw = _envelope(c.data())
    if dropped == "all":
        return None, [], raw
    return event_id, [(k, v) for k, v in headers if k not in dropped], raw


def _bad_attribute(c: _Ctx) -> tuple[uuid.UUID | None, Headers, bytes | None]:
    name, bad = c.rng.choice(
        [
            ("ce_specversion", b"0.3"),
            ("ce_specversion", b"2.0"),
            ("ce_id", b"not-a-uuid"),
            ("ce_time", b"yesterday"),
            ("ce_subject", b"\xff\xfe"),  # not UTF-8
        ]
    )
    event_id, headers, raw = _envelope(c.data(), **{name: bad})
    return (None if name == "ce_id" else event_id), headers, raw


def _wrong_content_type(c: _Ctx) -> tuple[uuid.UUID | None, Headers, bytes | None]:
    ctype = c.rng.choice([b"application/avro", b"text/plain", b"application/xml"])
    event_id, headers, raw = _envelope(c.data(), **{"content-type": ctype})
    return event_id, headers, raw


def _binary_garbage(c: _Ctx) -> tuple[uuid.UUID | None, Headers, bytes | None]:
    event_id, headers, _ = _envelope(c.data())
    # 0x80 first: not a BOM nor a NUL, so json reads it as UTF-8 and fails at once.
    return event_id, headers, b"\x80" + c.rng.randbytes(c.rng.randrange(1, 4096))


def _deep_nesting(c: _Ctx) -> tuple[uuid.UUID | None, Headers, bytes | None]:
    event_id, headers, _ = _envelope(c.data())
    return event_id, headers, _nested(c.rng.choice(_DEPTHS))


def _not_json_numbers(c: _Ctx) -> tuple[uuid.UUID | None, Headers, bytes | None]:
    event_id, headers, raw = _envelope(c.data())
    # NaN / Infinity: Python's json reads them, PostgreSQL's jsonb does not.
    return event_id, headers, raw[:-1] + b', "x": ' + c.rng.choice([b"NaN", b"-Infinity"]) + b"}"


def _lone_surrogate(c: _Ctx) -> tuple[uuid.UUID | None, Headers, bytes | None]:
    event_id, headers, raw = _envelope(c.data())
    return event_id, headers, raw[:-1] + b', "x": "\\ud800"}'


def _wrong_type(c: _Ctx) -> tuple[uuid.UUID | None, Headers, bytes | None]:
    field, value = c.rng.choice(_WRONG_TYPES[c.topic])
    return c.mutated(field, value)


def _missing_field(c: _Ctx) -> tuple[uuid.UUID | None, Headers, bytes | None]:
    good = c.data()
    required = [n for n, f in type(good).model_fields.items() if f.is_required()]
    event_id, headers, raw = _envelope(good)
    payload = json.loads(raw)
    del payload[c.rng.choice(required)]
    return event_id, headers, json.dumps(payload).encode()


def _bad_uuid(c: _Ctx) -> tuple[uuid.UUID | None, Headers, bytes | None]:
    return c.mutated(_ID_FIELD[c.topic], c.rng.choice(["not-a-uuid", "", "1234", "g" * 36]))


def _nul_byte(c: _Ctx) -> tuple[uuid.UUID | None, Headers, bytes | None]:
    if c.topic == topics.REFERENCE_EVENTS:
        # Valid to the model; PostgreSQL refuses NUL in text and \u0000 in jsonb.
        if c.rng.random() < 0.5:
            return c.mutated("code", f"probe\x00{c.seq}")
        return c.mutated("item", {"name": "nul\x00byte"})
    return c.mutated(_ID_FIELD[c.topic], f"{uuid.uuid4()}\x00")


def _huge_string(c: _Ctx) -> tuple[uuid.UUID | None, Headers, bytes | None]:
    # On reference a valid string, but too long for the replica's primary-key index.
    return c.mutated(_ID_FIELD[c.topic], _junk(c.rng, c.rng.choice([10_000, 100_000])))


def _huge_value(c: _Ctx) -> tuple[uuid.UUID | None, Headers, bytes | None]:
    """As large as a producer may publish: the DLQ's extra headers no longer fit."""
    _, headers, raw = c.mutated(_ID_FIELD[c.topic], "")
    room = c.max_bytes - _FRAMING_BYTES - 200 - len(raw) - sum(len(k) + len(v) for k, v in headers)
    return c.mutated(_ID_FIELD[c.topic], _junk(c.rng, room))


def _unknown_type(c: _Ctx) -> tuple[uuid.UUID | None, Headers, bytes | None]:
    ce_type = c.rng.choice(
        [
            "ims.customer.CustomerMerged.v1",
            "ims.reference.ItemChanged.v2",
            "com.example.Other.v1",
            "ims.customer.\x00",
            "x" * 10_000,
        ]
    )
    return _envelope(c.data(), ce_type=ce_type.encode())


_FIELD_KINDS: dict[str, Builder] = {
    "wrong-type": _wrong_type,
    "missing-field": _missing_field,
    "nul-byte": _nul_byte,
    "huge-string": _huge_string,
    "huge-value": _huge_value,
}
_ENVELOPE_KINDS: dict[str, Builder] = {
    "not-json": _not_json,
    "truncated-json": _truncated_json,
    "not-an-object": _not_an_object,
    "empty-value": _empty_value,
    "missing-headers": _missing_headers,
    "bad-attribute": _bad_attribute,
    "wrong-content-type": _wrong_content_type,
    "binary-garbage": _binary_garbage,
    "deep-nesting": _deep_nesting,
    "nan-infinity": _not_json_numbers,
    "lone-surrogate": _lone_surrogate,
}
_BUILDERS: dict[str, Builder] = {
    **_ENVELOPE_KINDS,
    **_FIELD_KINDS,
    "bad-uuid": _bad_uuid,
    "unknown-type": _unknown_type,
}

#: Every poison kind; FIELD_KINDS are the ones whose envelope is sound (refused on the data).
KINDS: tuple[str, ...] = tuple(_BUILDERS)
FIELD_KINDS: frozenset[str] = frozenset(_FIELD_KINDS)


def poison_kinds(topic: str) -> list[str]:
    """The kinds generated for `topic` (a reference code has no UUID to break)."""
    return [k for k in _BUILDERS if not (k == "bad-uuid" and topic == topics.REFERENCE_EVENTS)]


def expected(kind: str) -> Outcome:
    if kind == VALID:
        return "apply"
    return "skip" if kind == "unknown-type" else "dead-letter"


def generate(
    topic: str,
    poison: int,
    *,
    run_id: str,
    valid_every: int = 5,
    seed: int = 0,
    max_bytes: int = MAX_RECORD_BYTES,
) -> Iterator[Message]:
    """`poison` poison messages for `topic`, kinds in turn (every kind appears once
    `poison` reaches their number), a valid event after every `valid_every` of them and
    one at the end."""
    rng = random.Random(f"{seed}/{topic}")
    kinds = poison_kinds(topic)
    seq = 0

    def tagged(
        kind: str,
        event_id: uuid.UUID | None,
        headers: Headers,
        value: bytes | None,
        key: bytes | None,
    ) -> Message:
        poison_id = f"{run_id}:{topic}:{seq}"
        return Message(
            topic=topic,
            kind=kind,
            expect=expected(kind),
            poison_id=poison_id,
            key=key,
            value=value,
            headers=[
                *headers,
                (RUN_HEADER, run_id.encode()),
                (ID_HEADER, poison_id.encode()),
                (KIND_HEADER, kind.encode()),
            ],
            event_id=event_id,
        )

    def valid() -> Message:
        data = valid_data(topic, rng, run_id, seq)
        event = to_cloud_event(data)
        return tagged(
            VALID, event.id, event.kafka_headers(), event.kafka_value(), event.subject.encode()
        )

    for i in range(poison):
        kind = kinds[i % len(kinds)]
        ctx = _Ctx(topic=topic, rng=rng, run_id=run_id, seq=seq, max_bytes=max_bytes)
        event_id, headers, value = _BUILDERS[kind](ctx)
        # Random keys spread the poison over every partition.
        yield tagged(kind, event_id, headers, value, uuid.UUID(int=rng.getrandbits(128)).bytes)
        seq += 1
        if (i + 1) % valid_every == 0:
            yield valid()
            seq += 1
    yield valid()
