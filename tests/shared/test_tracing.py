"""Traces across HTTP and Kafka: a caller's trace continues into the events a request
records, and into the consumer that applies them elsewhere (real PostgreSQL and Tansu)."""

import asyncio
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from opentelemetry import trace
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from shared.events.contracts import ReferenceItemChangedV1, to_cloud_event
from shared.events.envelope import CloudEvent
from shared.tracing import current_traceparent, setup_tracing
from tests.shared.test_consumer import consumer_for, produce, record_handler

TRACE_ID = uuid.uuid4().hex
CALLER = f"00-{TRACE_ID}-{'ab' * 8}-01"


def trace_id_of(traceparent: str | None) -> str | None:
    return traceparent.split("-")[1] if traceparent else None


async def test_an_event_recorded_by_a_request_continues_the_callers_trace(
    reference_api: httpx.AsyncClient, auth_header: object, service_databases: dict[str, str]
) -> None:
    code = f"T{uuid.uuid4().hex[:6].upper()}"
    created = await reference_api.post(
        "/api/v1/channels",
        json={"code": code, "name": "Kênh truy vết"},
        headers={**auth_header("admin1"), "traceparent": CALLER},  # type: ignore[operator]
    )
    assert created.status_code == 201, created.text
    engine = create_async_engine(service_databases["reference"])
    try:
        async with engine.connect() as conn:
            headers = await conn.scalar(
                text("SELECT headers FROM outbox WHERE key = :k"), {"k": f"channels/{code}"}
            )
    finally:
        await engine.dispose()
    traceparent = dict(headers)["traceparent"]
    assert trace_id_of(traceparent) == TRACE_ID
    assert traceparent != CALLER  # the server's own span, a child of the caller's


async def test_the_consumer_applies_an_event_inside_its_trace_and_passes_it_on(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    setup_tracing("test")  # as every service's app does (once per process)
    seen: dict[str, tuple[str, str | None]] = {}

    async def handler(session: AsyncSession, event: CloudEvent) -> None:
        span = trace.get_current_span().get_span_context()
        # What an event recorded here (the next hop) would carry.
        follow_up = to_cloud_event(ReferenceItemChangedV1(list="x", code="y", item=None))
        seen[event.data["code"]] = (format(span.trace_id, "032x"), follow_up.traceparent)
        await record_handler(session, event)

    event = to_cloud_event(ReferenceItemChangedV1(list="channels", code="traced", item={}))
    event = event.model_copy(update={"traceparent": CALLER})
    untraced = to_cloud_event(ReferenceItemChangedV1(list="channels", code="plain", item={}))
    assert current_traceparent() is None and untraced.traceparent is None
    await produce(producer, fresh_topic, event)
    await produce(producer, fresh_topic, untraced)
    consumer = consumer_for(engine, producer, kafka_bootstrap, fresh_topic, handler)
    task = asyncio.create_task(consumer.run())
    try:
        async with asyncio.timeout(30):
            while len(seen) < 2:
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    (traced_id, follow_up), (fresh_id, fresh_follow_up) = seen["traced"], seen["plain"]
    assert traced_id == TRACE_ID and trace_id_of(follow_up) == TRACE_ID
    # An event without a trace starts one, so its own consequences are traced together.
    assert fresh_id not in (TRACE_ID, "0" * 32) and trace_id_of(fresh_follow_up) == fresh_id


async def test_spans_keep_no_search_terms_or_caller_address(
    approval_api: httpx.AsyncClient, auth_header: object
) -> None:
    """Searches carry phones and names in the query string; spans leave the process."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    answer = await approval_api.get(
        "/api/v1/reviews",
        params={"q": "0912 345 678 Nguyễn Văn An"},
        headers=auth_header("cs1"),  # type: ignore[operator]
    )
    assert answer.status_code == 200
    spans = exporter.get_finished_spans()
    server = [s for s in spans if s.kind == trace.SpanKind.SERVER]
    assert server and server[0].name == "GET /api/v1/reviews"
    values = [str(v) for s in spans for v in (s.attributes or {}).values()]
    assert any(v.endswith("/api/v1/reviews") for v in values)  # the URL is there, cut
    assert not [v for v in values if "0912" in v or "Nguy" in v or v == "127.0.0.1"]
    exporter.shutdown()
