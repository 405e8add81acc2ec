"""The poison generator of `ims poison`: kinds, tags, sizes, and that each poison really is
refused where the kind says (the e2e test then shows the consumers do so)."""

import random
from collections import Counter
from typing import cast

import pytest
from pydantic import ValidationError

from approval.handlers import build_handlers as approval_handlers
from approval.settings import ApprovalSettings
from customer.handlers import HANDLERS as CUSTOMER_HANDLERS
from ims_cli import poison
from ims_cli.main import main
from ims_cli.poison_cmd import Report, Sent, _reference_cleanup
from misa_sync.handlers import HANDLERS as MISA_SYNC_HANDLERS
from shared.events import topics
from shared.events.contracts import EVENT_TYPES
from shared.events.envelope import CloudEvent, MalformedEventError

HANDLED = {
    "customer": set(CUSTOMER_HANDLERS),
    "approval": set(approval_handlers(cast(ApprovalSettings, None))),
    "misa_sync": set(MISA_SYNC_HANDLERS),
}
#: Kinds that are valid to the model on reference but refused by PostgreSQL (NUL in text
#: or jsonb, a key too long for the primary-key index).
DATABASE_REFUSED = {"nul-byte", "huge-string", "huge-value"}


def header(message: poison.Message, name: str) -> str | None:
    return next((v.decode() for k, v in message.headers if k == name), None)


def test_the_consumer_table_matches_the_services_handlers() -> None:
    for topic, groups in poison.CONSUMERS.items():
        event_type = type(poison.valid_data(topic, random.Random(0), "r", 0)).TYPE
        for group in groups:
            assert event_type in HANDLED[group], (topic, group)


@pytest.mark.parametrize("topic", poison.CONSUMED_TOPICS)
def test_every_kind_is_generated_tagged_and_interleaved_with_valid_events(topic: str) -> None:
    messages = list(poison.generate(topic, 50, run_id="run1", valid_every=5))
    kinds = Counter(m.kind for m in messages)
    assert kinds[poison.VALID] == 11  # one after every five, one at the end
    assert set(kinds) - {poison.VALID} == set(poison.poison_kinds(topic))
    assert sum(n for k, n in kinds.items() if k != poison.VALID) == 50
    assert messages[-1].kind == poison.VALID
    assert len({m.poison_id for m in messages}) == len(messages)
    for m in messages:
        assert header(m, poison.RUN_HEADER) == "run1"
        assert header(m, poison.KIND_HEADER) == m.kind
        assert header(m, poison.ID_HEADER) == m.poison_id
        assert m.expect == poison.expected(m.kind)


def test_a_seed_repeats_its_keys() -> None:
    def keys(seed: int) -> list[bytes | None]:
        return [m.key for m in poison.generate(topics.MISA_EVENTS, 30, run_id="r", seed=seed)]

    assert keys(1) == keys(1) != keys(2)


@pytest.mark.parametrize("topic", poison.CONSUMED_TOPICS)
def test_every_record_fits_what_a_producer_may_publish(topic: str) -> None:
    sizes = {m.kind: m.size() for m in poison.generate(topic, 40, run_id="r")}
    assert max(sizes.values()) <= poison.MAX_RECORD_BYTES
    assert sizes["huge-value"] > poison.MAX_RECORD_BYTES - 1024  # just under the limit


@pytest.mark.parametrize("topic", poison.CONSUMED_TOPICS)
def test_each_message_is_refused_accepted_or_unknown_as_its_kind_says(topic: str) -> None:
    for m in poison.generate(topic, 200, run_id="r"):
        try:
            event = CloudEvent.from_kafka(m.headers, m.value)
        except MalformedEventError:
            assert m.expect == "dead-letter" and m.kind not in poison.FIELD_KINDS, m.kind
            continue
        model = EVENT_TYPES.get(event.type)
        if m.expect == "skip":
            assert all(event.type not in HANDLED[g] for g in poison.CONSUMERS[topic])
            continue
        assert model is not None, m.kind
        assert event.id == m.event_id
        try:
            model.model_validate(event.data)
        except ValidationError:
            assert m.expect == "dead-letter", m.kind
            continue
        if m.expect == "dead-letter":  # valid to the model: the database must refuse it
            assert topic == topics.REFERENCE_EVENTS and m.kind in DATABASE_REFUSED, m.kind
        else:
            assert m.kind == poison.VALID


def _report(outcomes: dict[str, str], *, reason: str = "malformed: x") -> Report:
    sent = [
        Sent(m, 0, i, 0.0)
        for i, m in enumerate(poison.generate(topics.MISA_EVENTS, 20, run_id="r"))
    ]
    report = Report(run_id="r", sent=sent, max_lag_s=5)
    for s in sent:
        got = outcomes.get(s.message.kind, s.message.expect)
        report.outcomes[(s.message.poison_id, "customer")] = got
        if got == "dead-letter":
            report.reasons[(s.message.poison_id, "customer")] = reason
    return report


def test_a_run_as_every_kind_expects_is_ok() -> None:
    report = _report({})
    assert report.ok
    row = report.counts()[(topics.MISA_EVENTS, "customer", "unknown-type")]
    assert row["sent"] == row["skip"] == 1


@pytest.mark.parametrize(
    ("outcomes", "reason", "problem"),
    [
        ({"not-json": "apply"}, "r", "(not-json) at customer: apply, expected dead-letter"),
        ({"wrong-type": "skip"}, "r", "(wrong-type) at customer: skip, expected dead-letter"),
        ({"unknown-type": "dead-letter"}, "r", "expected skip"),
        ({poison.VALID: "pending"}, "r", "(valid) at customer: pending, expected apply"),
        ({}, "", "dead-lettered without an x-error reason"),
    ],
)
def test_any_other_outcome_fails_the_run(
    outcomes: dict[str, str], reason: str, problem: str
) -> None:
    failures = _report(outcomes, reason=reason).failures()
    assert failures and all(problem in f for f in failures), failures


def test_a_valid_event_applied_too_late_fails_the_run() -> None:
    report = _report({})
    report.lags = [0.2, 6.0]
    assert report.failures() == ["a valid event took 6.0 s to apply (bound 5 s)"]


def test_the_probe_items_are_deleted_afterwards() -> None:
    sent = [Sent(m, 0, 0, 0.0) for m in poison.generate(topics.REFERENCE_EVENTS, 10, run_id="r")]
    report = Report(run_id="r", sent=sent)
    deletions = _reference_cleanup(report)
    assert len(deletions) == 3
    codes = [CloudEvent.from_kafka(d.headers, d.value).data for d in deletions]
    assert all(c["list"] == poison.PROBE_LIST and c["deleted"] for c in codes)
    assert {c["code"] for c in codes} == {
        poison.probe_code("r", int(s.message.poison_id.rsplit(":", 1)[1]))
        for s in sent
        if s.message.kind == poison.VALID
    }


def test_only_consumed_topics_are_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["poison", "--topics", "ims.nothing.v1"]) == 2
    assert "not a consumed topic: ims.nothing.v1" in capsys.readouterr().err
