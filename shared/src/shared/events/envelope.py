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
#: Deeper than any event of the contract; a deeper value is hostile and would exhaust the
#: stack of whatever walks it next (pydantic, json.dumps, PostgreSQL's JSONB parser).
MAX_DEPTH = 64


def _reject_constant(name: str) -> object:
    # NaN and Infinity are not JSON (RFC 8259), and PostgreSQL refuses them in jsonb.
    raise ValueError(f"{name} is not JSON")


def _check_tree(value: object, depth: int = 0) -> None:
    """Refuse what json.loads accepts but nothing downstream can store or re-encode."""
    if depth > MAX_DEPTH:
        raise MalformedEventError(f"value is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            # A lone surrogate (\ud800): valid JSON escape, not encodable as UTF-8.
            raise MalformedEventError("a string is not valid Unicode") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_tree(key, depth + 1)
            _check_tree(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_tree(item, depth + 1)


def _is_json_media_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


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
        # Reasons name what is wrong, never the offending value: they end up in the DLQ.
        if h.get("ce_specversion") != SPEC_VERSION:
            got = "missing" if "ce_specversion" not in h else "not 1.0"
            raise MalformedEventError(f"ce_specversion is {got}")
        missing = [k for k in ("ce_id", "ce_source", "ce_type", "ce_subject") if not h.get(k)]
        if missing:
            raise MalformedEventError(f"missing headers: {', '.join(missing)}")
        content_type = h.get("content-type")
        if content_type is not None and not _is_json_media_type(content_type):
            raise MalformedEventError("content-type is not application/json")
        try:
            data = json.loads(value or b"", parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
            raise MalformedEventError(f"value is not JSON: {exc}") from exc
        except RecursionError:
            raise MalformedEventError(f"value is nested deeper than {MAX_DEPTH} levels") from None
        if not isinstance(data, dict):
            raise MalformedEventError("value must be a JSON object")
        _check_tree(data)
        try:
            event_id = uuid.UUID(h["ce_id"])
        except ValueError:
            raise MalformedEventError("invalid attribute: ce_id is not a UUID") from None
        try:
            time = datetime.fromisoformat(h["ce_time"]) if h.get("ce_time") else datetime.now(UTC)
        except ValueError:
            raise MalformedEventError("invalid attribute: ce_time is not RFC 3339") from None
        try:
            return cls(
                id=event_id,
                source=h["ce_source"],
                type=h["ce_type"],
                subject=h["ce_subject"],
                time=time,
                data=data,
                correlation_id=h.get(CORRELATION_HEADER),
                traceparent=h.get("traceparent"),
            )
        except ValidationError as exc:
            fields = ", ".join(sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]}))
            raise MalformedEventError(f"invalid attribute: {fields}") from None
