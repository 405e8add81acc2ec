"""misa_sync end to end inside the service: event → link → MISA simulator → CustomerLinked."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from misa_sync.misa_client import account_object_id_for
from tests.fixtures.misa_simulator import MisaSimulator
from tests.misa_sync.sync_support import (
    activated,
    attempts_of,
    deliver,
    link_of,
    make_due,
    outbox_types,
    seed_misa,
    sync_all,
    unique_code,
    worker,
)

Auth = Callable[[str], dict[str, str]]


@pytest.fixture
async def engine(service_databases: dict[str, str]) -> AsyncEngine:
    return create_async_engine(service_databases["misa_sync"])


async def test_an_activated_customer_is_created_in_misa_and_linked(
    engine: AsyncEngine, misa_sim: MisaSimulator
) -> None:
    data = activated()
    await deliver(engine, data)
    await deliver(engine, data)  # a repeat changes nothing
    await sync_all(worker(engine, misa_sim))
    link = await link_of(engine, data.customer_id)
    assert link.state == "synced" and link.misa_code == data.customer_code and link.attempts == 1
    stored = httpx.get(f"{misa_sim.base_url}/_sim/account-objects").json()["items"]
    mine = [o for o in stored if o["account_object_code"] == data.customer_code]
    assert len(mine) == 1 and mine[0]["account_object_id"] == account_object_id_for(
        str(data.customer_id)
    )
    assert await outbox_types(engine, data.customer_id) == ["ims.misa.CustomerLinked.v1"]


async def test_a_customer_already_in_misa_is_linked_not_duplicated(
    engine: AsyncEngine, misa_sim: MisaSimulator
) -> None:
    existing_id = str(uuid.uuid4())
    code = unique_code("KH-MISA-")
    seed_misa(
        misa_sim.base_url,
        account_object_id=existing_id,
        account_object_code=code,
        account_object_name="Thu Trang",
        is_customer=True,
    )
    data = activated(misa_code=code)
    await deliver(engine, data)
    await sync_all(worker(engine, misa_sim))
    link = await link_of(engine, data.customer_id)
    assert (
        link.state == "synced" and link.misa_code == code and link.account_object_id == existing_id
    )
    stored = httpx.get(f"{misa_sim.base_url}/_sim/account-objects").json()["items"]
    assert [o["account_object_id"] for o in stored if o["account_object_code"] == code] == [
        existing_id
    ]
    assert await outbox_types(engine, data.customer_id) == ["ims.misa.CustomerLinked.v1"]


async def test_transient_failures_back_off_then_fail_with_an_event(
    engine: AsyncEngine, misa_sim: MisaSimulator
) -> None:
    httpx.post(f"{misa_sim.base_url}/_sim/faults", json={"mode": "http_500", "count": 10})
    data = activated()
    await deliver(engine, data)
    w = worker(engine, misa_sim, sync_max_attempts=2)
    assert await w.sync_one()
    link = await link_of(engine, data.customer_id)
    assert link.state == "pending" and link.attempts == 1 and link.last_error
    assert link.next_attempt_at > datetime.now(UTC)  # backing off: not due again yet
    await make_due(engine, data.customer_id)
    await sync_all(w)
    link = await link_of(engine, data.customer_id)
    assert link.state == "failed" and link.attempts == 2 and link.last_error_code == "HTTP500"
    assert await outbox_types(engine, data.customer_id) == ["ims.misa.SyncFailed.v1"]
    assert await attempts_of(engine, data.customer_id) == [
        ("retry", "HTTP500"),
        ("failed", "HTTP500"),
    ]


async def test_links_api_roles_and_retry(
    engine: AsyncEngine,
    misa_sim: MisaSimulator,
    misa_sync_api: httpx.AsyncClient,
    auth_header: Auth,
) -> None:
    httpx.post(f"{misa_sim.base_url}/_sim/faults", json={"mode": "http_500", "count": 1})
    data = activated()
    await deliver(engine, data)
    await sync_all(worker(engine, misa_sim, sync_max_attempts=1))
    url = f"/api/v1/misa-links/{data.customer_id}"
    assert (await misa_sync_api.get(url, headers=auth_header("sales1"))).status_code == 403
    failed = await misa_sync_api.get(url, headers=auth_header("accountant1"))
    assert failed.json()["state"] == "failed"
    listed = await misa_sync_api.get(
        "/api/v1/misa-links", params={"state": "failed"}, headers=auth_header("accountant1")
    )
    assert str(data.customer_id) in [i["customer_id"] for i in listed.json()["items"]]
    assert (await misa_sync_api.post(f"{url}/retry", headers=auth_header("cs1"))).status_code == 403
    retried = await misa_sync_api.post(f"{url}/retry", headers=auth_header("accountant1"))
    assert retried.status_code == 200 and retried.json()["state"] == "pending"
    await sync_all(worker(engine, misa_sim))
    assert (await misa_sync_api.get(url, headers=auth_header("accountant1"))).json()[
        "state"
    ] == "synced"
    assert (
        await misa_sync_api.get(
            f"/api/v1/misa-links/{uuid.uuid4()}", headers=auth_header("accountant1")
        )
    ).status_code == 404


async def test_a_misa_code_linked_to_another_customer_fails_cleanly_and_blocks_nobody(
    engine: AsyncEngine, misa_sim: MisaSimulator
) -> None:
    shared_code = unique_code("KH-SHARED-")
    seed_misa(
        misa_sim.base_url,
        account_object_id=str(uuid.uuid4()),
        account_object_code=shared_code,
        account_object_name="X",
        is_customer=True,
    )
    first, second, bystander = (
        activated(misa_code=shared_code),
        activated(misa_code=shared_code),
        activated(),
    )
    for data in (first, second, bystander):
        await deliver(engine, data)
    await sync_all(worker(engine, misa_sim))
    states = {
        d.customer_id: (await link_of(engine, d.customer_id)).state
        for d in (first, second, bystander)
    }
    assert sorted(states[c] for c in (first.customer_id, second.customer_id)) == [
        "failed",
        "synced",
    ]
    assert states[bystander.customer_id] == "synced"
    loser = first if states[first.customer_id] == "failed" else second
    link = await link_of(engine, loser.customer_id)
    assert link.last_error and link.last_error.startswith("LinkConflictError")
    async with engine.connect() as conn:
        payload = (
            await conn.execute(
                text("SELECT payload FROM outbox WHERE key = :k"), {"k": str(loser.customer_id)}
            )
        ).scalar_one()
    assert payload["error"] == "LinkConflictError"


async def test_an_unexpected_error_backs_off_instead_of_blocking_the_queue(
    engine: AsyncEngine, misa_sim: MisaSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import misa_sync.sync_worker as module

    broken = activated()
    await deliver(engine, broken)
    from misa_sync.mapping import customer_to_account_object as real

    def explode(customer: dict[str, Any], **kw: Any) -> dict[str, Any]:
        if customer["id"] == str(broken.customer_id):
            raise KeyError("unexpected shape")
        return real(customer, **kw)

    monkeypatch.setattr(module, "customer_to_account_object", explode)
    healthy = activated()
    await deliver(engine, healthy)
    await sync_all(worker(engine, misa_sim))
    bad = await link_of(engine, broken.customer_id)
    assert bad.state == "pending" and bad.attempts == 1 and bad.last_error == "Unexpected: KeyError"
    assert bad.next_attempt_at > datetime.now(UTC)
    assert (await link_of(engine, healthy.customer_id)).state == "synced"
