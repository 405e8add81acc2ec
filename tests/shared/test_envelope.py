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


def _valid_headers(**extra: bytes) -> list[tuple[str, bytes]]:
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", str(uuid.uuid4()).encode()),
        ("ce_source", b"/x"),
        ("ce_type", b"t"),
        ("ce_subject", b"s"),
    ]
    return headers + [(k.replace("content_type", "content-type"), v) for k, v in extra.items()]


@pytest.mark.parametrize(
    ("headers", "value", "reason"),
    [
        # json.loads accepts these, but PostgreSQL, pydantic or json.dumps would choke later.
        (_valid_headers(), b'{"n": NaN}', "not JSON"),
        (_valid_headers(), b'{"n": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested deeper"),
        (_valid_headers(), b'{"n": ' + b"[" * 200 + b"]" * 200 + b"}", "nested deeper"),
        (_valid_headers(), b'{"n": "\\ud800"}', "not valid Unicode"),
        (_valid_headers(content_type=b"application/avro"), b"{}", "content-type"),
    ],
)
def test_values_nothing_downstream_could_handle_are_refused(
    headers: list[tuple[str, bytes]], value: bytes, reason: str
) -> None:
    with pytest.raises(MalformedEventError, match=reason):
        CloudEvent.from_kafka(headers, value)


@pytest.mark.parametrize(
    "content_type",
    [b"application/json", b"application/json; charset=utf-8", b"application/cloudevents+json"],
)
def test_json_content_types_are_read(content_type: bytes) -> None:
    assert CloudEvent.from_kafka(_valid_headers(content_type=content_type), b"{}").data == {}


def test_refusals_do_not_quote_the_offending_values() -> None:
    headers = _valid_headers()
    headers[0] = ("ce_specversion", b"0912345678")
    for broken, value in [
        (headers, b"{}"),
        (_valid_headers(ce_time=b"0912345678"), b"{}"),
        ([*_valid_headers()[1:], ("ce_specversion", b"1.0"), ("ce_id", b"0912345678")], b"{}"),
    ]:
        with pytest.raises(MalformedEventError) as refused:
            CloudEvent.from_kafka(broken, value)
        assert "0912345678" not in str(refused.value)
