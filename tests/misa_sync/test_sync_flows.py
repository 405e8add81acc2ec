"""The sync's triggers and failure modes against PostgreSQL and a running MISA simulator."""

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from misa_sync.handlers import HANDLERS
from misa_sync.misa_client import account_object_id_for
from misa_sync.models import messaging
from shared.events.contracts import to_cloud_event
from shared.messaging.consumer import EventConsumer
from tests.fixtures.misa_simulator import MisaSimulator, start_misa_simulator
from tests.misa_sync.sync_support import (
    activated,
    arm_fault,
    attempts_of,
    deactivated,
    deliver,
    link_of,
    make_due,
    misa_objects,
    outbox_types,
    reactivated,
    seed_misa,
    sync_all,
    unique_code,
    updated,
    worker,
)
from tests.shared.kafka_helpers import read_all


@pytest.fixture
async def engine(service_databases: dict[str, str]) -> AsyncEngine:
    return create_async_engine(service_databases["misa_sync"])


@pytest.fixture
def own_sim(tmp_path: Path) -> Iterator[MisaSimulator]:
    """A simulator of this test's own, so it can be stopped and started again."""
    sim = start_misa_simulator(tmp_path / "misa.json")
    try:
        yield sim
    finally:
        sim.stop()


def config(sim: MisaSimulator, **values: object) -> None:
    httpx.post(f"{sim.base_url}/_sim/config", json=values, timeout=10).raise_for_status()


async def test_link_to_an_existing_misa_customer_by_tax_code(
    engine: AsyncEngine, misa_sim: MisaSimulator
) -> None:
    tax = f"01{uuid.uuid4().int % 10**8:08d}"
    existing = seed_misa(
        misa_sim.base_url,
        account_object_code=unique_code("OLD-"),
        account_object_name="Cty Hoa Sen (cũ)",
        company_tax_code=f" {tax} ",
    )
    data = activated(company_name="Công ty TNHH Hoa Sen", tax_code=tax, customer_type_code="DN")
    await deliver(engine, data)
    await sync_all(worker(engine, misa_sim))
    link = await link_of(engine, data.customer_id)
    # The existing object keeps its id and its code: vouchers in MISA refer to that code.
    assert link.state == "synced" and link.account_object_id == existing["account_object_id"]
    assert link.misa_code == existing["account_object_code"]
    stored = [o for o in misa_objects(misa_sim.base_url) if o.get("company_tax_code") == tax]
    assert len(stored) == 1 and stored[0]["account_object_name"] == "Công ty TNHH Hoa Sen"
    assert not misa_objects(misa_sim.base_url, code=data.customer_code)


async def test_link_to_an_existing_misa_customer_by_code(
    engine: AsyncEngine, misa_sim: MisaSimulator
) -> None:
    data = activated()
    existing = seed_misa(
        misa_sim.base_url, account_object_code=data.customer_code.lower(), account_object_name="X"
    )
    await deliver(engine, data)
    await sync_all(worker(engine, misa_sim))
    link = await link_of(engine, data.customer_id)
    assert link.state == "synced" and link.account_object_id == existing["account_object_id"]
    assert len(misa_objects(misa_sim.base_url)) == 1


async def test_a_tax_code_shared_by_two_misa_customers_fails_for_a_person_to_decide(
    engine: AsyncEngine, misa_sim: MisaSimulator
) -> None:
    tax = f"02{uuid.uuid4().int % 10**8:08d}"
    for _ in range(2):
        seed_misa(misa_sim.base_url, account_object_code=unique_code("D-"), company_tax_code=tax)
    data = activated(tax_code=tax)
    await deliver(engine, data)
    await sync_all(worker(engine, misa_sim))
    link = await link_of(engine, data.customer_id)
    assert link.state == "failed" and link.last_error_code == "AmbiguousMatchError"
    assert await outbox_types(engine, data.customer_id) == ["ims.misa.SyncFailed.v1"]


async def test_an_update_is_pushed_and_our_own_misa_code_coming_back_is_not(
    engine: AsyncEngine, misa_sim: MisaSimulator
) -> None:
    data = activated()
    await deliver(engine, data)
    w = worker(engine, misa_sim)
    await sync_all(w)
    # customer stores the MISA code it was told, and says so: nothing MISA sees changed
    await deliver(
        engine, updated(data, 4, ["misa_code"], misa_code=data.customer_code, customer_code=None)
    )
    await deliver(engine, updated(data, 5, ["misa_code"], misa_code=data.customer_code))
    assert (await link_of(engine, data.customer_id)).state == "synced"
    assert not await w.sync_one()
    await deliver(
        engine, updated(data, 6, ["phone"], misa_code=data.customer_code, phone="+84987654321")
    )
    assert (await link_of(engine, data.customer_id)).state == "pending"
    await sync_all(w)
    (stored,) = misa_objects(misa_sim.base_url, code=data.customer_code)
    assert stored["tel"] == "+84987654321"
    link = await link_of(engine, data.customer_id)
    assert link.state == "synced" and link.pushed_version == 6
    assert [o for o, _ in await attempts_of(engine, data.customer_id)] == ["synced", "synced"]
    # CustomerLinked once: later pushes are plain updates
    assert await outbox_types(engine, data.customer_id) == ["ims.misa.CustomerLinked.v1"]


async def test_deactivate_and_reactivate_follow_in_misa(
    engine: AsyncEngine, misa_sim: MisaSimulator
) -> None:
    data = activated()
    w = worker(engine, misa_sim)
    await deliver(engine, data)
    await sync_all(w)
    await deliver(engine, deactivated(data, 4))
    await sync_all(w)
    assert misa_objects(misa_sim.base_url, code=data.customer_code)[0]["inactive"] is True
    await deliver(engine, reactivated(data, 5))
    await sync_all(w)
    (stored,) = misa_objects(misa_sim.base_url, code=data.customer_code)
    assert stored["inactive"] is False
    assert stored["account_object_id"] == account_object_id_for(str(data.customer_id))


async def test_an_older_event_never_overwrites_a_newer_state(
    engine: AsyncEngine, misa_sim: MisaSimulator
) -> None:
    data = activated()
    await deliver(engine, data)
    await deliver(engine, updated(data, 6, ["email"], email="moi@example.vn"))
    await deliver(engine, updated(data, 5, ["email"], email="cu@example.vn"))  # late
    await deliver(engine, deactivated(data, 4))  # even later
    await sync_all(worker(engine, misa_sim))
    (stored,) = misa_objects(misa_sim.base_url, code=data.customer_code)
    assert stored["email_address"] == "moi@example.vn" and stored["inactive"] is False
    assert (await link_of(engine, data.customer_id)).customer_version == 6


async def test_an_update_arriving_during_a_push_waits_and_is_pushed_after_it(
    engine: AsyncEngine, misa_sim: MisaSimulator
) -> None:
    data = activated()
    await deliver(engine, data)
    config(misa_sim, timeout_delay_s=0.7)
    arm_fault(misa_sim.base_url, "timeout", 3)  # connect, read, save: each answers late
    w = worker(engine, misa_sim, misa_timeout_s=5.0)
    push = asyncio.create_task(w.sync_one())
    await asyncio.sleep(0.3)  # the worker holds the link now
    await deliver(engine, updated(data, 4, ["phone"], phone="+84900000004"))
    assert push.done()  # the handler waited for the push to commit
    assert (await link_of(engine, data.customer_id)).state == "pending"
    await sync_all(w)
    (stored,) = misa_objects(misa_sim.base_url, code=data.customer_code)
    assert stored["tel"] == "+84900000004"
    assert (await link_of(engine, data.customer_id)).pushed_version == 4


async def test_a_worker_killed_mid_call_is_finished_by_a_new_one_without_duplicates(
    service_databases: dict[str, str], engine: AsyncEngine, misa_sim: MisaSimulator
) -> None:
    data = activated()
    await deliver(engine, data)
    config(misa_sim, timeout_delay_s=3)
    arm_fault(misa_sim.base_url, "timeout", 3)
    doomed_engine = create_async_engine(service_databases["misa_sync"])
    doomed = worker(doomed_engine, misa_sim, misa_timeout_s=10.0)
    task = asyncio.create_task(doomed.sync_one())
    await asyncio.sleep(7)  # connect and read are done; MISA is saving, not yet answered
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await doomed_engine.dispose()
    link = await link_of(engine, data.customer_id)
    assert link.state == "pending" and link.attempts == 0  # rolled back with the process
    assert len(misa_objects(misa_sim.base_url, code=data.customer_code)) == 1  # MISA saved it
    await sync_all(worker(engine, misa_sim))
    link = await link_of(engine, data.customer_id)
    assert link.state == "synced" and link.attempts == 1
    assert len(misa_objects(misa_sim.base_url, code=data.customer_code)) == 1


async def test_rate_limiting_defers_without_spending_attempts(
    engine: AsyncEngine, misa_sim: MisaSimulator
) -> None:
    data = activated()
    await deliver(engine, data)
    arm_fault(misa_sim.base_url, "rate_limit", 1, retry_after_s=30)
    w = worker(engine, misa_sim, sync_max_attempts=1)
    await sync_all(w)
    link = await link_of(engine, data.customer_id)
    assert link.state == "pending" and link.attempts == 0 and link.last_error_code == "RateLimited"
    assert w.paused
    assert await attempts_of(engine, data.customer_id) == [("deferred", "RateLimited")]
    await make_due(engine, data.customer_id)
    w.resume()
    await sync_all(w)
    assert (await link_of(engine, data.customer_id)).state == "synced"


async def test_an_outage_delays_syncs_and_loses_none(
    engine: AsyncEngine, own_sim: MisaSimulator
) -> None:
    first = activated()
    await deliver(engine, first)
    await sync_all(worker(engine, own_sim))
    own_sim.stop()  # MISA is down
    second = activated()
    await deliver(engine, second)
    await deliver(engine, updated(first, 4, ["email"], email="sau@example.vn"))
    await deliver(
        engine, updated(first, 5, ["phone"], email="sau@example.vn", phone="+84900000005")
    )
    down = worker(engine, own_sim, sync_max_attempts=1)
    for _ in range(3):  # hours of retries, compressed
        for customer_id in (first.customer_id, second.customer_id):
            await make_due(engine, customer_id)
        down.resume()
        await sync_all(down)
    links = [await link_of(engine, c) for c in (first.customer_id, second.customer_id)]
    assert all(link.state == "pending" and link.attempts == 0 for link in links)
    # The worker pauses after the first refusal instead of knocking for every link.
    assert "ConnectionError" in {link.last_error_code for link in links}
    assert "ims.misa.SyncFailed.v1" not in await outbox_types(engine, second.customer_id)

    back = start_misa_simulator(own_sim.state_file)  # MISA is back, with its data
    try:
        for customer_id in (first.customer_id, second.customer_id):
            await make_due(engine, customer_id)
        await sync_all(worker(engine, back))
        (one,) = misa_objects(back.base_url, code=first.customer_code)
        assert one["email_address"] == "sau@example.vn" and one["tel"] == "+84900000005"
        assert len(misa_objects(back.base_url, code=second.customer_code)) == 1
        for customer_id in (first.customer_id, second.customer_id):
            assert (await link_of(engine, customer_id)).state == "synced"
    finally:
        back.stop()


async def test_customer_events_from_the_broker_reach_misa(
    engine: AsyncEngine,
    misa_sim: MisaSimulator,
    producer: AIOKafkaProducer,
    fresh_topic: str,
    kafka_bootstrap: str,
) -> None:
    data = activated()
    for event in (
        to_cloud_event(data),
        to_cloud_event(data),  # delivered twice
        to_cloud_event(deactivated(data, 4)),
    ):
        await producer.send_and_wait(
            fresh_topic,
            event.kafka_value(),
            key=event.subject.encode(),
            headers=event.kafka_headers(),
        )
    consumer = EventConsumer(
        name="misa-test",
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        topics=[fresh_topic],
        handlers=HANDLERS,
        sessionmaker=async_sessionmaker(engine),
        inbox=messaging.inbox,
        producer=producer,
        bootstrap_servers=kafka_bootstrap,
    )
    records = await read_all(kafka_bootstrap, fresh_topic, expect=3)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        await consumer.process(record)
    await sync_all(worker(engine, misa_sim))
    (stored,) = misa_objects(misa_sim.base_url, code=data.customer_code)
    assert stored["inactive"] is True
    assert (await link_of(engine, data.customer_id)).customer_version == 4
