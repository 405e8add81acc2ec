"""Prometheus metrics (/metrics): HTTP by route template, the outbox, consumers' outcomes
and lag, with real PostgreSQL and Tansu; the endpoint's token."""

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.events.envelope import CloudEvent
from tests.fixtures.apps import app_client, build_app
from tests.shared.test_consumer import an_event, consumer_for, produce, record_handler

Auth = object


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def parsed(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    families: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            families.setdefault(s.name, []).append((s.labels, s.value))
    return families


async def test_http_requests_are_counted_by_route_template_without_ids(
    customer_api: httpx.AsyncClient, auth_header: object
) -> None:
    missing = uuid.uuid4()
    headers = auth_header("sales1")  # type: ignore[operator]
    before = sample(
        "ims_http_requests_total",
        service="customer",
        method="GET",
        route="/api/v1/customers/{customer_id}",
        status="404",
    )
    answer = await customer_api.get(f"/api/v1/customers/{missing}", headers=headers)
    assert answer.status_code == 404
    scraped = await customer_api.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert str(missing) not in scraped.text  # a template, never the raw path
    families = parsed(scraped.text)
    counted = {
        (labels["route"], labels["status"]): value
        for labels, value in families["ims_http_requests_total"]
        if labels["service"] == "customer" and labels["method"] == "GET"
    }
    assert counted[("/api/v1/customers/{customer_id}", "404")] == before + 1
    assert any(
        labels["route"] == "/api/v1/customers/{customer_id}"
        for labels, _ in families["ims_http_request_duration_seconds_count"]
    )


async def test_the_outbox_backlog_is_read_from_the_database_at_each_scrape(
    reference_api: httpx.AsyncClient, auth_header: object
) -> None:
    """The apps in these tests run no relay, so whatever is recorded stays unpublished."""

    def backlog(text: str) -> float:
        return next(
            v
            for labels, v in parsed(text)["ims_outbox_backlog"]
            if labels["service"] == "reference"
        )

    first = backlog((await reference_api.get("/metrics")).text)
    created = await reference_api.post(
        "/api/v1/channels",
        json={"code": f"M{uuid.uuid4().hex[:6].upper()}", "name": "Kênh đo"},
        headers=auth_header("admin1"),  # type: ignore[operator]
    )
    assert created.status_code == 201, created.text
    scraped = (await reference_api.get("/metrics")).text
    assert backlog(scraped) == first + 1  # its ItemChanged event waits in the outbox
    ages = parsed(scraped)["ims_outbox_oldest_age_seconds"]
    assert any(labels["service"] == "reference" and v >= 0 for labels, v in ages)


async def test_service_gauges_answer_on_approval_and_misa_sync(
    approval_api: httpx.AsyncClient, misa_sync_api: httpx.AsyncClient
) -> None:
    approval = parsed((await approval_api.get("/metrics")).text)
    assert {labels["kind"] for labels, _ in approval["ims_reviews_pending"]} == {"new", "change"}
    assert "ims_reviews_oldest_pending_age_seconds" in approval
    links = parsed((await misa_sync_api.get("/metrics")).text)["ims_misa_links"]
    assert {labels["state"] for labels, _ in links} == {"pending", "synced", "failed"}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, 401),
        ("Bearer wrong", 401),
        ("Bearer s3cret-scrape-token-000", 401),  # a prefix
        ("Bearer s3cret-scrape-token-0001", 200),
    ],
)
async def test_a_metrics_token_is_required_once_set(
    service_databases: dict[str, str],
    dev_keys: tuple[Path, Path],
    given: str | None,
    expected: int,
) -> None:
    app = build_app(
        "reference",
        service_databases["reference"],
        dev_keys[1],
        metrics_token="s3cret-scrape-token-0001",
    )
    async with app_client(app) as client:
        headers = {"Authorization": given} if given else {}
        answer = await client.get("/metrics", headers=headers)
    assert answer.status_code == expected
    if expected != 200:
        assert answer.headers["content-type"] == "application/problem+json"


async def test_metrics_are_off_in_production_without_a_token(
    service_databases: dict[str, str], dev_keys: tuple[Path, Path]
) -> None:
    app = build_app("reference", service_databases["reference"], dev_keys[1], env="prod")
    async with app_client(app) as client:
        assert (await client.get("/metrics")).status_code == 404


async def test_consumer_outcomes_and_lag_are_counted(
    engine: AsyncEngine, producer: AIOKafkaProducer, fresh_topic: str, kafka_bootstrap: str
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    event = an_event("metrics")
    await produce(producer, fresh_topic, event)
    await produce(producer, fresh_topic, event)  # a duplicate
    await produce(
        producer, fresh_topic, CloudEvent(source="/x", type="x.y.v1", subject="s", data={})
    )
    await producer.send_and_wait(fresh_topic, b"{", key=b"k", headers=[("ce_specversion", b"1.0")])
    consumer = consumer_for(
        engine, producer, kafka_bootstrap, fresh_topic, record_handler, group=group
    )
    task = asyncio.create_task(consumer.run())

    def outcome(name: str) -> float:
        return sample("ims_events_consumed_total", service=group, topic=fresh_topic, outcome=name)

    try:
        async with asyncio.timeout(30):
            while outcome("dead_lettered") < 1:
                await asyncio.sleep(0.05)
            # Measured when scraped, from the running client: everything read.
            while (await consumer.measure_lag()).get(fresh_topic) != 0:
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert [outcome(o) for o in ("applied", "duplicate", "skipped", "dead_lettered")] == [1] * 4
    assert await consumer.measure_lag() == {}  # stopped: nothing to measure


def test_the_grafana_dashboard_queries_only_metrics_that_exist() -> None:
    """deploy/grafana/ims-dashboard.json: every series it charts is one shared.metrics
    defines (a renamed metric would leave an empty panel, not an error)."""
    import json
    import re

    from prometheus_client.metrics import MetricWrapperBase

    from shared import metrics

    root = Path(__file__).resolve().parents[2]
    dashboard = json.loads((root / "deploy" / "grafana" / "ims-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {name for e in exprs for name in re.findall(r"\bims_[a-z_]+", e)}
    defined: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                defined |= {s.name for s in family.samples} | {family.name}
                kind = family.type
                if kind == "counter":
                    defined.add(f"{family.name}_total")
                if kind == "histogram":
                    defined |= {f"{family.name}_{s}" for s in ("bucket", "count", "sum")}
    assert used and used <= defined, used - defined
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_a_short_metrics_token_is_refused_at_start(
    service_databases: dict[str, str], dev_keys: tuple[Path, Path]
) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="metrics_token"):
        build_app("reference", service_databases["reference"], dev_keys[1], metrics_token="x")


async def test_unknown_http_methods_share_one_label(reference_api: httpx.AsyncClient) -> None:
    await reference_api.request("FOOBARBAZ", "/api/v1/provinces")
    scraped = parsed((await reference_api.get("/metrics")).text)["ims_http_requests_total"]
    methods = {labels["method"] for labels, _ in scraped}
    assert "FOOBARBAZ" not in methods and "other" in methods


async def test_a_hung_refresher_does_not_hold_the_scrape(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared import metrics

    monkeypatch.setattr(metrics, "REFRESH_TIMEOUT_S", 0.05)

    async def hung() -> None:
        await asyncio.sleep(60)

    errors = sample("ims_metrics_refresh_errors_total")
    async with asyncio.timeout(5):
        body = await metrics.exposition([hung])
    assert b"ims_http_requests" in body
    assert sample("ims_metrics_refresh_errors_total") == errors + 1
