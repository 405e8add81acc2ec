import json
import uuid
from datetime import UTC, datetime

import pytest

from shared.events.contracts import EVENT_TYPES, CustomerSubmittedV1, parse_data, to_cloud_event
from shared.events.envelope import CloudEvent, MalformedEventError
from shared.logging import bind_correlation_id


def submitted() -> CustomerSubmittedV1:
    return CustomerSubmittedV1(
        customer_id=uuid.uuid4(),
        version=3,
        review_kind="new",
        submitted_by="NV001",
        submitted_at=datetime(2026, 7, 1, 8, 30, tzinfo=UTC),
        customer={"full_name": "Tạp hóa Minh Anh"},
    )


def test_binary_mode_headers_and_value_round_trip() -> None:
    bind_correlation_id("corr-123")
    data = submitted()
    event = to_cloud_event(data)
    headers = dict(event.kafka_headers())
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_type"] == b"ims.customer.CustomerSubmitted.v1"
    assert headers["ce_source"] == b"/ims/customer"
    assert headers["ce_subject"] == str(data.customer_id).encode()
    assert headers["content-type"] == b"application/json"
    assert headers["x-correlation-id"] == b"corr-123"
    assert json.loads(event.kafka_value())["customer"]["full_name"] == "Tạp hóa Minh Anh"

    back = CloudEvent.from_kafka(event.kafka_headers(), event.kafka_value())
    assert back == event
    assert parse_data(back, CustomerSubmittedV1) == data


def test_every_contract_type_is_registered_once() -> None:
    assert len(EVENT_TYPES) == 11
    assert all(name.endswith(".v1") for name in EVENT_TYPES)


@pytest.mark.parametrize(
    ("headers", "value", "reason"),
    [
        ([], b"{}", "ce_specversion"),
        ([("ce_specversion", b"1.0")], b"{}", "missing headers"),
        (
            [
                ("ce_specversion", b"1.0"),
                ("ce_id", b"not-a-uuid"),
                ("ce_source", b"/x"),
                ("ce_type", b"t"),
                ("ce_subject", b"s"),
            ],
            b"{}",
            "invalid attribute",
        ),
        (
            [
                ("ce_specversion", b"1.0"),
                ("ce_id", str(uuid.uuid4()).encode()),
                ("ce_source", b"/x"),
                ("ce_type", b"t"),
                ("ce_subject", b"s"),
            ],
            b"{not json",
            "not JSON",
        ),
        (
            [
                ("ce_specversion", b"1.0"),
                ("ce_id", str(uuid.uuid4()).encode()),
                ("ce_source", b"/x"),
                ("ce_type", b"t"),
                ("ce_subject", b"s"),
            ],
            b"[1, 2]",
            "JSON object",
        ),
        ([("ce_specversion", b"\xff\xfe")], b"{}", "UTF-8"),
    ],
)
def test_malformed_records_are_refused_with_a_reason(
    headers: list[tuple[str, bytes]], value: bytes, reason: str
) -> None:
    with pytest.raises(MalformedEventError, match=reason):
        CloudEvent.from_kafka(headers, value)
