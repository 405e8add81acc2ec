"""CloudEvents 1.0 in Kafka binary mode (CONTRACT.md §8).

Attributes travel as `ce_*` headers; the Kafka value is the event's `data` as JSON; the key
is the aggregate id. The correlation id and `traceparent` ride along as extra headers.
"""

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.logging import CORRELATION_HEADER

SPEC_VERSION = "1.0"
Headers = list[tuple[str, bytes]]


class MalformedEventError(ValueError):
    """A Kafka record that is not a CloudEvent we can read; it goes to the DLQ."""


class CloudEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    source: str
    type: str
    subject: str
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    data: dict[str, Any]
    correlation_id: str | None = None
    traceparent: str | None = None

    def kafka_headers(self) -> Headers:
        headers: Headers = [
            ("ce_specversion", SPEC_VERSION.encode()),
            ("ce_id", str(self.id).encode()),
            ("ce_source", self.source.encode()),
            ("ce_type", self.type.encode()),
            ("ce_time", self.time.isoformat().encode()),
            ("ce_subject", self.subject.encode()),
            ("content-type", b"application/json"),
        ]
        if self.correlation_id:
            headers.append((CORRELATION_HEADER, self.correlation_id.encode()))
        if self.traceparent:
            headers.append(("traceparent", self.traceparent.encode()))
        return headers

    def kafka_value(self) -> bytes:
        return json.dumps(self.data, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_kafka(
        cls, headers: Sequence[tuple[str, bytes]] | None, value: bytes | None
    ) -> "CloudEvent":
        h: dict[str, str] = {}
        try:
            for key, raw in headers or ():
                h[key] = raw.decode() if raw is not None else ""
        except UnicodeDecodeError as exc:
            raise MalformedEventError("a header is not UTF-8") from exc
        if h.get("ce_specversion") != SPEC_VERSION:
            raise MalformedEventError(
                f"ce_specversion is {h.get('ce_specversion')!r}, expected 1.0"
            )
        missing = [k for k in ("ce_id", "ce_source", "ce_type", "ce_subject") if not h.get(k)]
        if missing:
            raise MalformedEventError(f"missing headers: {', '.join(missing)}")
        try:
            data = json.loads(value or b"")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MalformedEventError(f"value is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise MalformedEventError("value must be a JSON object")
        try:
            return cls(
                id=uuid.UUID(h["ce_id"]),
                source=h["ce_source"],
                type=h["ce_type"],
                subject=h["ce_subject"],
                time=datetime.fromisoformat(h["ce_time"])
                if h.get("ce_time")
                else datetime.now(UTC),
                data=data,
                correlation_id=h.get(CORRELATION_HEADER),
                traceparent=h.get("traceparent"),
            )
        except (ValueError, ValidationError) as exc:
            raise MalformedEventError(f"invalid attribute: {exc}") from exc
