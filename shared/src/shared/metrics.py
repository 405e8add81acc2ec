"""Prometheus metrics of every service, served at `/metrics`.

One process is one service, so the metrics live in the default registry, each labelled with
the service's name (tests build several services in one process; the label keeps them
apart). Counters and histograms are updated where things happen; gauges that describe
the database (outbox backlog, pending reviews…) are read when Prometheus scrapes, by the
refreshers the runtime holds, so they are never stale and cost nothing between scrapes.

Labels never carry personal data or ids: routes are path templates, never raw paths.
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import Table, func, select

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["CONTENT_TYPE_LATEST", "exposition"]

#: Milliseconds to seconds: the API answers in 5–50 ms; a slow MISA call takes seconds.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter(
    "ims_http_requests",
    "HTTP requests answered, by route template and status code.",
    ["service", "method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "ims_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["service", "method", "route"],
    buckets=_LATENCY_BUCKETS,
)
OUTBOX_BACKLOG = Gauge(
    "ims_outbox_backlog", "Events recorded but not yet published to Kafka.", ["service"]
)
OUTBOX_OLDEST_AGE = Gauge(
    "ims_outbox_oldest_age_seconds",
    "Age of the oldest unpublished event (0 when none).",
    ["service"],
)
EVENTS_PUBLISHED = Counter(
    "ims_events_published", "Events the outbox relay published, by topic.", ["service", "topic"]
)
EVENTS_CONSUMED = Counter(
    "ims_events_consumed",
    "Records a consumer finished with, by outcome: applied, duplicate (already in the "
    "inbox), skipped (unknown type) or dead_lettered.",
    ["service", "topic", "outcome"],
)
CONSUMER_LAG = Gauge(
    "ims_consumer_lag",
    "Records on the topic after the consumer's position, summed over its partitions.",
    ["service", "topic"],
)
MISA_CALLS = Counter(
    "ims_misa_calls",
    "Calls to MISA AMIS by operation and outcome (ok, or the error's kind).",
    ["operation", "outcome"],
)
MISA_CALL_DURATION = Histogram(
    "ims_misa_call_duration_seconds",
    "Time of one call to MISA AMIS, retries excluded.",
    ["operation"],
    buckets=_LATENCY_BUCKETS,
)
MISA_CIRCUIT_OPEN = Gauge(
    "ims_misa_circuit_open", "1 while the circuit breaker fails calls to MISA fast, else 0."
)
MISA_LINKS = Gauge("ims_misa_links", "MISA links by state.", ["state"])
REVIEWS_PENDING = Gauge("ims_reviews_pending", "Reviews waiting for CS, by kind.", ["kind"])
REVIEWS_OLDEST_AGE = Gauge(
    "ims_reviews_oldest_pending_age_seconds",
    "Age of the oldest review waiting for CS (0 when none).",
)

REFRESH_TIMEOUT_S = 2.0
#: HTTP methods kept as labels; anything else a client sends counts as "other".
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

#: Reads the database (or anything else) and sets gauges; run at each scrape.
Refresher = Callable[[], Awaitable[None]]


def outbox_refresher(
    service: str, sessions: Callable[[], "AsyncSession"], outbox: Table
) -> Refresher:
    """Backlog and age of the oldest unpublished event, from the outbox table."""

    async def refresh() -> None:
        async with sessions() as session:
            row = (
                await session.execute(
                    select(
                        func.count(),
                        func.extract("epoch", func.now() - func.min(outbox.c.created_at)),
                    ).where(outbox.c.published_at.is_(None))
                )
            ).one()
        OUTBOX_BACKLOG.labels(service).set(row[0])
        OUTBOX_OLDEST_AGE.labels(service).set(float(row[1] or 0))

    return refresh


async def exposition(refreshers: Iterable[Refresher]) -> bytes:
    """The text format Prometheus scrapes, after refreshing the database gauges. A
    refresher that fails (the database is down) leaves its gauges as they were."""
    for refresh in refreshers:
        try:
            # Bounded like readiness: a hung database must not hold the scrape (Prometheus
            # gives up after 10 s) nor pile up pooled connections.
            async with asyncio.timeout(REFRESH_TIMEOUT_S):
                await refresh()
        except Exception:  # a scrape must answer even when PostgreSQL is down
            SCRAPE_ERRORS.inc()
    return generate_latest(REGISTRY)


SCRAPE_ERRORS = Counter(
    "ims_metrics_refresh_errors", "Scrapes where reading a gauge's source failed."
)
