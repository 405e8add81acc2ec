"""OpenTelemetry traces across HTTP and Kafka.

A request's trace follows it everywhere the customer goes: FastAPI's server span (the
caller's `traceparent` continued), outgoing httpx calls (MISA, the customer service behind
approval's attachment proxy), every event recorded meanwhile (its CloudEvent carries the
`traceparent` header, CONTRACT.md §8), and the consumer span that applies the event in
another service, whose own events continue the same trace.

Spans are exported by OTLP over HTTP only when an endpoint is configured with the standard
variables (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; the
exporter reads the rest of its `OTEL_*` settings itself). Without one, spans are still made
so `traceparent` propagates, and dropped.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI
from opentelemetry import context, propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

from shared.logging import get_logger

log = get_logger(__name__)

_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
#: Probes and scrapes would drown the traces that matter.
_UNTRACED_URLS = "healthz,readyz,metrics,asyncapi.json"
_tracer = trace.get_tracer("ims")
#: Search queries carry phones, names and tax codes (`?q=0912…`): spans keep the path only.
_URL_ATTRIBUTES = ("http.url", "url.full", "http.target")
#: Neither the query on its own nor the caller's address leaves the process.
_DROPPED_ATTRIBUTES = ("url.query", "net.peer.ip", "client.address", "http.client_ip")


def scrub(span: trace.Span, *_: object) -> None:
    """Overwrite what the HTTP instrumentations record that may hold personal data."""
    attributes = getattr(span, "attributes", None) or {}
    for key in _URL_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(key, value.split("?", 1)[0])
    for key in _DROPPED_ATTRIBUTES:
        if key in attributes:
            span.set_attribute(key, "")


def setup_tracing(service_name: str) -> None:
    """Install the process's tracer provider and the httpx instrumentation, once per
    process (one process is one service; tests build several apps and keep the first)."""
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: f"ims-{service_name}"}))
    if any(os.environ.get(name) for name in _ENDPOINT_VARS):
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        log.info("tracing_exported", protocol="otlp/http")
    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument(request_hook=scrub, async_request_hook=_async_scrub)


def instrument_app(app: FastAPI) -> None:
    FastAPIInstrumentor.instrument_app(app, excluded_urls=_UNTRACED_URLS, server_request_hook=scrub)


async def _async_scrub(span: trace.Span, *_: object) -> None:
    scrub(span)


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the current span, for an event recorded now."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def _child_of(traceparent: str | None) -> Iterator[None]:
    """Make `traceparent` the current parent (none: what starts here starts a trace)."""
    token = context.attach(propagate.extract({"traceparent": traceparent} if traceparent else {}))
    try:
        yield
    finally:
        context.detach(token)


@contextmanager
def consuming(topic: str, event_type: str, traceparent: str | None) -> Iterator[None]:
    """A consumer span for applying one event, child of the span that recorded it."""
    with (
        _child_of(traceparent),
        _tracer.start_as_current_span(
            f"{topic} process",
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": topic,
                "messaging.operation.type": "process",
                "cloudevents.event_type": event_type,
            },
        ),
    ):
        yield


@contextmanager
def continuing(name: str, traceparent: str | None) -> Iterator[None]:
    """A span for work a row left for later (a worker's pick-up), child of the span that
    wrote the row: its calls and events then belong to the trace that asked for them."""
    with _child_of(traceparent), _tracer.start_as_current_span(name, kind=SpanKind.INTERNAL):
        yield
