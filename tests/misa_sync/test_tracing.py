"""The MISA push continues the trace of the event that asked for it (real PostgreSQL and
MISA simulator): the worker picks the link up later, in another task, yet its calls to
MISA and the CustomerLinked it records belong to the salesperson's trace."""

import uuid

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from misa_sync.handlers import HANDLERS
from shared.events.contracts import to_cloud_event
from shared.events.topics import CUSTOMER_EVENTS
from shared.tracing import consuming, setup_tracing
from tests.fixtures.misa_simulator import MisaSimulator
from tests.misa_sync.sync_support import activated, link_of, sync_all, updated, worker


@pytest.fixture
async def engine(service_databases: dict[str, str]) -> AsyncEngine:
    return create_async_engine(service_databases["misa_sync"])


def traced_by(trace_id: str) -> str:
    return f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"


async def linked_traceparent(engine: AsyncEngine, customer_id: uuid.UUID) -> str:
    async with engine.connect() as conn:
        headers = await conn.scalar(
            text(
                "SELECT headers FROM outbox WHERE key = :k"
                " AND event_type = 'ims.misa.CustomerLinked.v1'"
            ),
            {"k": str(customer_id)},
        )
    return str(dict(headers)["traceparent"])


async def apply_traced(engine: AsyncEngine, data: object, traceparent: str) -> None:
    """As the consumer applies an event that arrived with `traceparent`."""
    event = to_cloud_event(data).model_copy(update={"traceparent": traceparent})  # type: ignore[arg-type]
    with consuming(CUSTOMER_EVENTS, event.type, event.traceparent):
        async with AsyncSession(engine) as session, session.begin():
            await HANDLERS[event.type](session, event)


async def test_the_push_and_customer_linked_continue_the_events_trace(
    engine: AsyncEngine, misa_sim: MisaSimulator
) -> None:
    setup_tracing("test")  # as the service's app does (once per process)
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    activation, change = uuid.uuid4().hex, uuid.uuid4().hex
    data = activated()
    await apply_traced(engine, data, traced_by(activation))
    link = await link_of(engine, data.customer_id)
    assert link.traceparent is not None and link.traceparent.split("-")[1] == activation

    await sync_all(worker(engine, misa_sim))
    assert (await linked_traceparent(engine, data.customer_id)).split("-")[1] == activation
    pushes = [s for s in spans.get_finished_spans() if s.name == "misa_sync push"]
    assert [format(s.context.trace_id, "032x") for s in pushes] == [activation]
    # The calls to MISA are inside the push: same trace, below it.
    calls = [
        s
        for s in spans.get_finished_spans()
        if s.parent is not None and s.parent.span_id == pushes[0].context.span_id
    ]
    assert calls and all(format(s.context.trace_id, "032x") == activation for s in calls)

    # A later change brings its own trace to the link, and the next push follows it.
    await apply_traced(
        engine, updated(data, 4, ["full_name"], full_name="Tạp hóa Đổi Tên"), traced_by(change)
    )
    assert (await link_of(engine, data.customer_id)).traceparent.split("-")[1] == change  # type: ignore[union-attr]
    spans.clear()
    await sync_all(worker(engine, misa_sim))
    pushes = [s for s in spans.get_finished_spans() if s.name == "misa_sync push"]
    assert [format(s.context.trace_id, "032x") for s in pushes] == [change]
