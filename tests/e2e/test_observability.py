"""Metrics and traces on the real stack (issue 9): one trace follows a customer across the
services and Kafka; every service's /metrics counts what it did."""

import asyncio
import uuid

import httpx
from aiokafka import AIOKafkaConsumer
from opentelemetry.instrumentation.utils import suppress_http_instrumentation
from prometheus_client.parser import text_string_to_metric_families

from shared.events import topics
from tests.e2e.conftest import Stack
from tests.e2e.test_thin_path import customer, eventually, new_customer, pending_review


async def _traceparents(
    stack: Stack, topic: str, key: str, wanted: set[str], timeout_s: float = 60
) -> dict[str, str]:
    """ce_type -> traceparent of the events of `key` on `topic`, read from the start until
    every type in `wanted` is seen (an empty fetch is not the end on a loaded broker)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=f"127.0.0.1:{stack.ports['kafka']}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: dict[str, str] = {}
    try:
        async with asyncio.timeout(timeout_s):
            while not wanted <= set(found):
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    for r in records:
                        if r.key == key.encode():
                            headers = {k: v.decode() for k, v in r.headers}
                            found[headers["ce_type"]] = headers.get("traceparent", "")
    finally:
        await consumer.stop()
    return found


def trace_id(traceparent: str) -> str:
    return traceparent.split("-")[1]


def test_one_trace_follows_an_approval_across_services_and_kafka(stack: Stack) -> None:
    # Apps built in this test process instrument httpx, which would replace our
    # `traceparent` with its own: these calls play a caller that is not traced by us.
    with suppress_http_instrumentation():
        _follow_one_trace(stack)


def _follow_one_trace(stack: Stack) -> None:
    cid = new_customer(stack)["id"]
    submitted_trace, approval_trace = uuid.uuid4().hex, uuid.uuid4().hex
    submitted = httpx.post(
        f"{stack.url('customer')}/api/v1/customers/{cid}/submit",
        headers={**stack.auth("sales1"), "traceparent": f"00-{submitted_trace}-{'1' * 16}-01"},
    )
    assert submitted.status_code == 200, submitted.text
    review = pending_review(stack, cid)
    approved = httpx.post(
        f"{stack.url('approval')}/api/v1/reviews/{review['id']}/approve",
        headers={**stack.auth("cs1"), "traceparent": f"00-{approval_trace}-{'2' * 16}-01"},
    )
    assert approved.status_code == 200, approved.text
    eventually(lambda: customer(stack, cid)["status"] == "active", what="activation")

    submitted_type, activated_type = (
        "ims.customer.CustomerSubmitted.v1",
        "ims.customer.CustomerActivated.v1",
    )
    customer_events = asyncio.run(
        _traceparents(stack, topics.CUSTOMER_EVENTS, cid, {submitted_type, activated_type})
    )
    approval_events = asyncio.run(
        _traceparents(stack, topics.APPROVAL_EVENTS, cid, {"ims.approval.CustomerApproved.v1"})
    )
    assert trace_id(customer_events["ims.customer.CustomerSubmitted.v1"]) == submitted_trace
    assert trace_id(approval_events["ims.approval.CustomerApproved.v1"]) == approval_trace
    # Recorded by the customer service's consumer, applying approval's event: same trace.
    assert trace_id(customer_events["ims.customer.CustomerActivated.v1"]) == approval_trace


def _samples(stack: Stack, part: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = httpx.get(f"{stack.url(part)}/metrics").text
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def test_every_service_reports_what_it_did(stack: Stack) -> None:
    new_customer(stack)  # at least one request and one event of our own
    for part in ("customer", "approval", "misa_sync", "reference"):
        requests = _samples(stack, part, "ims_http_requests_total")
        assert any(dict(k)["service"] == part for k in requests), part
        backlog = _samples(stack, part, "ims_outbox_backlog")
        assert set(backlog.values()) <= {0.0, 1.0, 2.0, 3.0}, (part, backlog)  # relays keep up
    applied = _samples(stack, "approval", "ims_events_consumed_total")
    assert any(
        dict(k)["outcome"] == "applied" and dict(k)["topic"] == topics.CUSTOMER_EVENTS and v > 0
        for k, v in applied.items()
    )
    lag = _samples(stack, "misa_sync", "ims_consumer_lag")
    assert {dict(k)["topic"] for k in lag} == {topics.CUSTOMER_EVENTS}
