"""Regressions from the issue-6 review of the sync, against PostgreSQL and a running simulator.

A: MISA upserting a new object into one it already had under the code (and the other two
   duplicate-code behaviours); B: two workers linking two customers to one MISA object;
C: tenant-wide errors (bad credentials) failing every link, and the bulk retry;
D: an unbounded Retry-After, and a manual retry resuming the worker; E: who reads links;
plus the mirror's incremental refresh and an expired token through the sync.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from misa_sync import mirror
from misa_sync.misa_client import MisaBusinessError, MisaClient, account_object_id_for
from misa_sync.models import MirrorObject
from misa_sync.sync_worker import Pause, SyncWorker
from tests.fixtures.apps import app_client, build_app
from tests.fixtures.misa_simulator import MisaSimulator
from tests.misa_sync.sync_support import (
    activated,
    arm_fault,
    attempts_of,
    deliver,
    link_of,
    make_due,
    misa_objects,
    outbox_types,
    seed_misa,
    sync_all,
    unique_code,
    updated,
    worker,
    worker_settings,
)

Auth = Callable[[str], dict[str, str]]
LINKED = "ims.misa.CustomerLinked.v1"
FAILED = "ims.misa.SyncFailed.v1"


@pytest.fixture
async def engine(service_databases: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(service_databases["misa_sync"])
    yield engine
    await engine.dispose()


@pytest.fixture
async def app(
    service_databases: dict[str, str], dev_keys: tuple[Path, Path], misa_sim: MisaSimulator
) -> FastAPI:
    return build_app(
        "misa_sync",
        service_databases["misa_sync"],
        dev_keys[1],
        misa_base_url=misa_sim.base_url,
        misa_rate_limit_per_s=0,
    )


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(app) as client:
        yield client


def config(sim: MisaSimulator, **values: object) -> None:
    httpx.post(f"{sim.base_url}/_sim/config", json=values, timeout=10).raise_for_status()


def sim_calls(sim: MisaSimulator) -> dict[str, int]:
    calls: dict[str, int] = httpx.get(f"{sim.base_url}/_sim/stats", timeout=10).json()["calls"]
    return calls


async def park_other_links(engine: AsyncEngine, *keep: uuid.UUID) -> None:
    """Earlier tests' pending links (the database is the session's) wait, out of the way."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE misa_links SET next_attempt_at = now() + interval '1 day' "
                "WHERE state = 'pending' AND NOT customer_id = ANY(:keep)"
            ),
            {"keep": list(keep)},
        )


async def linked_event(engine: AsyncEngine, customer_id: uuid.UUID) -> dict[str, Any]:
    async with engine.connect() as conn:
        payload: dict[str, Any] = (
            await conn.execute(
                text("SELECT payload FROM outbox WHERE key = :k AND event_type = :t"),
                {"k": str(customer_id), "t": LINKED},
            )
        ).scalar_one()
        return payload


async def mirrored(engine: AsyncEngine, account_object_id: str) -> MirrorObject | None:
    async with async_sessionmaker(engine)() as session:
        return await mirror.by_id(session, account_object_id)


def seed_just_before_the_save(
    monkeypatch: pytest.MonkeyPatch, base_url: str, **obj: Any
) -> dict[str, Any]:
    """Someone creates ``obj`` in MISA after the mirror was read and before our save lands."""
    real = MisaClient.save_account_objects
    seeded: dict[str, Any] = {}

    async def save(self: MisaClient, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not seeded:
            seeded.update(seed_misa(base_url, **obj))
        return await real(self, objects)

    monkeypatch.setattr(MisaClient, "save_account_objects", save)
    return seeded


# -- A: duplicate codes ----------------------------------------------------------------


async def test_an_object_created_in_misa_after_the_mirror_was_read_is_linked_not_duplicated(
    engine: AsyncEngine, misa_sim: MisaSimulator
) -> None:
    w = worker(engine, misa_sim, misa_mirror_max_age_s=3600)
    await w.mirror.refresh(full=True)
    data = activated()
    existing = seed_misa(
        misa_sim.base_url, account_object_code=data.customer_code, account_object_name="Tay"
    )
    await deliver(engine, data)
    await sync_all(w)
    link = await link_of(engine, data.customer_id)
    # The mirror was "fresh enough", but is read again before creating anything.
    assert link.state == "synced" and link.account_object_id == existing["account_object_id"]
    assert len(misa_objects(misa_sim.base_url, code=data.customer_code)) == 1
    assert (await linked_event(engine, data.customer_id))["created_in_misa"] is False


async def test_misa_upserting_by_code_makes_the_link_adopt_misa_s_object(
    engine: AsyncEngine, misa_sim: MisaSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    config(misa_sim, duplicate_code_mode="upsert")
    data = activated()
    await deliver(engine, data)
    seeded = seed_just_before_the_save(
        monkeypatch, misa_sim.base_url, account_object_code=data.customer_code
    )
    w = worker(engine, misa_sim)
    await sync_all(w)
    theirs, own = seeded["account_object_id"], account_object_id_for(str(data.customer_id))
    link = await link_of(engine, data.customer_id)
    assert link.state == "synced" and link.attempts == 1
    assert link.account_object_id == theirs and link.misa_code == data.customer_code
    (stored,) = misa_objects(misa_sim.base_url, code=data.customer_code)
    assert stored["account_object_id"] == theirs
    assert stored["account_object_name"] == data.customer["full_name"]
    event = await linked_event(engine, data.customer_id)
    assert event["misa_account_object_id"] == theirs and event["created_in_misa"] is False
    assert await mirrored(engine, own) is None  # no phantom row under the id MISA lacks
    assert await mirrored(engine, theirs) is not None
    # Later pushes go to that object; the code coming back changes nothing.
    await deliver(engine, updated(data, 4, ["misa_code"], misa_code=data.customer_code))
    assert (await link_of(engine, data.customer_id)).state == "synced"
    await deliver(
        engine, updated(data, 5, ["phone"], misa_code=data.customer_code, phone="+84900000005")
    )
    await sync_all(w)
    (stored,) = misa_objects(misa_sim.base_url, code=data.customer_code)
    assert stored["account_object_id"] == theirs and stored["tel"] == "+84900000005"
    assert await outbox_types(engine, data.customer_id) == [LINKED]


async def test_misa_refusing_a_duplicate_code_fails_the_link_once_with_a_clear_code(
    engine: AsyncEngine, misa_sim: MisaSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    config(misa_sim, duplicate_code_mode="invalid_param")
    data = activated()
    await deliver(engine, data)
    seeded = seed_just_before_the_save(
        monkeypatch, misa_sim.base_url, account_object_code=data.customer_code
    )
    w = worker(engine, misa_sim, sync_max_attempts=5)
    await sync_all(w)
    link = await link_of(engine, data.customer_id)
    assert link.state == "failed" and link.attempts == 1
    assert link.last_error_code == "DuplicateCodeError"
    assert await attempts_of(engine, data.customer_id) == [("failed", "DuplicateCodeError")]
    assert await outbox_types(engine, data.customer_id) == [FAILED]
    assert not await w.sync_one()  # no retry storm
    assert [o["account_object_id"] for o in misa_objects(misa_sim.base_url)] == [
        seeded["account_object_id"]
    ]
    # An accountant's retry then finds the object and links to it.
    await deliver(engine, updated(data, 4, ["phone"], phone="+84900000004"))
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE misa_links SET state = 'pending', attempts = 0 WHERE customer_id = :c"),
            {"c": data.customer_id},
        )
    await sync_all(w)
    link = await link_of(engine, data.customer_id)
    assert link.state == "synced" and link.account_object_id == seeded["account_object_id"]


async def test_misa_storing_a_silent_duplicate_still_gets_one_object_per_customer_from_us(
    engine: AsyncEngine, misa_sim: MisaSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MISA then holds two objects with the code: theirs, untouched, and ours, under the
    customer's derived id. IMS writes only its own, however often it pushes."""
    config(misa_sim, duplicate_code_mode="duplicate")
    data = activated()
    await deliver(engine, data)
    seeded = seed_just_before_the_save(
        monkeypatch, misa_sim.base_url, account_object_code=data.customer_code
    )
    w = worker(engine, misa_sim)
    await sync_all(w)
    own = account_object_id_for(str(data.customer_id))
    link = await link_of(engine, data.customer_id)
    assert link.state == "synced" and link.account_object_id == own
    assert (await linked_event(engine, data.customer_id))["created_in_misa"] is True
    await deliver(engine, data)  # redelivered
    await deliver(engine, updated(data, 4, ["phone"], phone="+84900000004"))
    await sync_all(w)
    await sync_all(worker(engine, misa_sim))  # a restarted worker
    by_id = {o["account_object_id"]: o for o in misa_objects(misa_sim.base_url)}
    assert set(by_id) == {own, seeded["account_object_id"]}
    assert by_id[own]["tel"] == "+84900000004"
    assert by_id[seeded["account_object_id"]]["modified_by"] != "OpenAPI"


# -- B: one MISA object, one customer ----------------------------------------------------


async def test_two_workers_never_link_two_customers_to_one_misa_object(
    engine: AsyncEngine, misa_sim: MisaSimulator, service_databases: dict[str, str]
) -> None:
    tax = f"03{uuid.uuid4().int % 10**8:08d}"
    existing = seed_misa(
        misa_sim.base_url,
        account_object_code=unique_code("OLD-"),
        account_object_name="X (cũ)",
        company_tax_code=tax,
    )
    a = activated(company_name="Cty A", tax_code=tax, customer_type_code="DN")
    b = activated(company_name="Cty B chi nhánh", tax_code=tax, customer_type_code="DN")
    for data in (a, b):
        await deliver(engine, data)
    await park_other_links(engine, a.customer_id, b.customer_id)
    other_engine = create_async_engine(service_databases["misa_sync"])
    try:
        w1 = worker(engine, misa_sim, misa_mirror_max_age_s=3600, misa_timeout_s=5.0)
        w2 = worker(other_engine, misa_sim, misa_mirror_max_age_s=3600, misa_timeout_s=5.0)
        await w1.mirror.refresh(full=True)
        # Every MISA call answers after a second: both workers are mid-push together.
        config(misa_sim, timeout_delay_s=1.0)
        arm_fault(misa_sim.base_url, "timeout", 20)
        await asyncio.gather(w1.sync_one(), w2.sync_one())
        await sync_all(w1)
    finally:
        await other_engine.dispose()
    links = {d.customer_id: await link_of(engine, d.customer_id) for d in (a, b)}
    assert all(link.state == "synced" for link in links.values())
    winners = [
        c for c, link in links.items() if link.account_object_id == existing["account_object_id"]
    ]
    assert len(winners) == 1
    (loser,) = set(links) - set(winners)
    assert links[loser].account_object_id == account_object_id_for(str(loser))
    names = {
        o["account_object_id"]: o["account_object_name"] for o in misa_objects(misa_sim.base_url)
    }
    winner = a if winners[0] == a.customer_id else b
    assert names[existing["account_object_id"]] == winner.customer["company_name"]
    for data in (a, b):
        assert await attempts_of(engine, data.customer_id) == [("synced", None)]


# -- C: tenant-wide errors ----------------------------------------------------------------


@pytest.mark.parametrize("wrong", [{"misa_app_id": "wrong-app"}, {"misa_access_code": "wrong"}])
async def test_wrong_credentials_leave_links_pending_until_they_are_fixed(
    engine: AsyncEngine, misa_sim: MisaSimulator, wrong: dict[str, str]
) -> None:
    first, second = activated(), activated()
    for data in (first, second):
        await deliver(engine, data)
    await park_other_links(engine, first.customer_id, second.customer_id)
    broken = worker(engine, misa_sim, sync_max_attempts=1, sync_max_backoff_s=60, **wrong)
    for _ in range(3):
        broken.resume()
        for data in (first, second):
            await make_due(engine, data.customer_id)
        await sync_all(broken)
        assert broken.paused
        assert broken.pause.until - time.monotonic() <= 60
    links = [await link_of(engine, d.customer_id) for d in (first, second)]
    assert all(link.state == "pending" and link.attempts == 0 for link in links)
    codes = {link.last_error_code for link in links}
    assert codes & {"InvalidAppID", "InvalidParam"}
    for data in (first, second):
        assert FAILED not in await outbox_types(engine, data.customer_id)
        assert {o for o, _ in await attempts_of(engine, data.customer_id)} <= {"deferred"}

    fixed = worker(engine, misa_sim)  # the accountant fixes the credentials
    for data in (first, second):
        await make_due(engine, data.customer_id)
    await sync_all(fixed)
    for data in (first, second):
        assert (await link_of(engine, data.customer_id)).state == "synced"
        assert await outbox_types(engine, data.customer_id) == [LINKED]


@pytest.mark.parametrize(
    ("code", "waits"),
    [
        ("InvalidAppID", True),
        ("AppIDDisconnect", True),
        ("DBAmisNotConnectDBACT", True),
        ("Exception", True),
        ("InvalidParam", False),
        ("IsCreatedVoucher", False),
    ],
)
async def test_tenant_level_codes_wait_and_per_object_codes_fail(
    engine: AsyncEngine, code: str, waits: bool
) -> None:
    settings = worker_settings("http://127.0.0.1:1")
    async with MisaClient.from_settings(settings) as client:
        w = SyncWorker(sessionmaker=async_sessionmaker(engine), client=client, settings=settings)
        assert w.waits_for_misa(MisaBusinessError(code)) is waits


async def test_bulk_retry_resets_failed_links_for_accountants(
    engine: AsyncEngine, misa_sim: MisaSimulator, api: httpx.AsyncClient, auth_header: Auth
) -> None:
    failed = [activated(), activated()]
    for data in failed:
        await deliver(engine, data)
    await park_other_links(engine, *(d.customer_id for d in failed))
    arm_fault(misa_sim.base_url, "http_500", 10)
    await sync_all(worker(engine, misa_sim, sync_max_attempts=1))
    for data in failed:
        assert (await link_of(engine, data.customer_id)).state == "failed"
    url = "/api/v1/misa-links/retry"
    for user in ("cs1", "sales1"):
        denied = await api.post(url, params={"state": "failed"}, headers=auth_header(user))
        assert denied.status_code == 403
    bad = await api.post(url, params={"state": "synced"}, headers=auth_header("accountant1"))
    assert bad.status_code == 422
    retried = await api.post(url, params={"state": "failed"}, headers=auth_header("accountant1"))
    assert retried.status_code == 200, retried.text
    assert retried.json()["state"] == "failed" and retried.json()["count"] >= len(failed)
    for data in failed:
        link = await link_of(engine, data.customer_id)
        assert link.state == "pending" and link.attempts == 0
    arm_fault(misa_sim.base_url, "http_500", 0)
    await sync_all(worker(engine, misa_sim))
    for data in failed:
        assert (await link_of(engine, data.customer_id)).state == "synced"
    again = await api.post(url, headers=auth_header("admin1"))  # state=failed by default
    assert again.status_code == 200 and again.json()["state"] == "failed"


# -- D: Retry-After ---------------------------------------------------------------------


@pytest.mark.parametrize("http_date", [False, True])
async def test_a_huge_retry_after_is_capped(
    engine: AsyncEngine, misa_sim: MisaSimulator, http_date: bool
) -> None:
    data = activated()
    await deliver(engine, data)
    await park_other_links(engine, data.customer_id)
    arm_fault(
        misa_sim.base_url,
        "rate_limit",
        1,
        retry_after_s=100_000_000,
        retry_after_http_date=http_date,
    )
    w = worker(engine, misa_sim, sync_max_backoff_s=60)
    await sync_all(w)
    link = await link_of(engine, data.customer_id)
    assert link.state == "pending" and link.last_error_code == "RateLimited"
    assert link.next_attempt_at <= datetime.now(UTC) + timedelta(seconds=61)
    assert w.paused and w.pause.until - time.monotonic() <= 60


async def test_a_manual_retry_resumes_the_paused_worker(
    engine: AsyncEngine,
    misa_sim: MisaSimulator,
    app: FastAPI,
    api: httpx.AsyncClient,
    auth_header: Auth,
) -> None:
    data = activated()
    await deliver(engine, data)
    await park_other_links(engine, data.customer_id)
    settings = worker_settings(misa_sim.base_url)
    pause = app.state.misa_pause
    assert isinstance(pause, Pause)
    w = SyncWorker(
        sessionmaker=async_sessionmaker(engine, expire_on_commit=False),
        client=MisaClient.from_settings(settings),
        settings=settings,
        pause=pause,
    )
    arm_fault(misa_sim.base_url, "rate_limit", 1, retry_after_s=120)
    await sync_all(w)
    assert w.paused
    retried = await api.post(
        f"/api/v1/misa-links/{data.customer_id}/retry", headers=auth_header("accountant1")
    )
    assert retried.status_code == 200 and retried.json()["state"] == "pending"
    assert not w.paused
    await sync_all(w)
    assert (await link_of(engine, data.customer_id)).state == "synced"


# -- E: who sees links --------------------------------------------------------------------


async def test_links_are_for_accounting_not_cs(
    engine: AsyncEngine, api: httpx.AsyncClient, auth_header: Auth
) -> None:
    data = activated()
    await deliver(engine, data)
    for url in ("/api/v1/misa-links", f"/api/v1/misa-links/{data.customer_id}"):
        assert (await api.get(url, headers=auth_header("cs1"))).status_code == 403
        assert (await api.get(url, headers=auth_header("sales1"))).status_code == 403
        for user in ("accountant1", "admin1"):
            assert (await api.get(url, headers=auth_header(user))).status_code == 200


# -- the sync's use of the mirror and the token -------------------------------------------


async def test_the_sync_reads_only_what_changed_since_the_last_read(
    engine: AsyncEngine, misa_sim: MisaSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = [seed_misa(misa_sim.base_url, account_object_code=unique_code("OLD-")) for _ in range(3)]
    await asyncio.sleep(1.1)  # LastSyncTime has whole seconds
    w = worker(engine, misa_sim)
    await w.mirror.refresh(full=True)
    async with async_sessionmaker(engine)() as session:
        mark = (await mirror.state(session)).last_sync_time
    assert mark is not None
    await asyncio.sleep(1.1)
    new = seed_misa(misa_sim.base_url, account_object_code=unique_code("NEW-"))

    reads: list[tuple[str | None, list[str]]] = []
    real = MisaClient.get_dictionary

    async def spy(
        self: MisaClient, skip: int = 0, take: int = 100, last_sync_time: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        items, sync_time = await real(self, skip, take, last_sync_time)
        reads.append((last_sync_time, [str(i["account_object_id"]) for i in items]))
        return items, sync_time

    monkeypatch.setattr(MisaClient, "get_dictionary", spy)
    data = activated()
    await deliver(engine, data)
    await park_other_links(engine, data.customer_id)
    await sync_all(w)
    assert (await link_of(engine, data.customer_id)).state == "synced"
    assert reads and all(since == mark for since, _ in reads)
    read_ids = {i for _, ids in reads for i in ids}
    assert new["account_object_id"] in read_ids
    assert not read_ids & {o["account_object_id"] for o in old}
    async with async_sessionmaker(engine)() as session:
        advanced = (await mirror.state(session)).last_sync_time
        assert advanced is not None and advanced > mark
        assert await mirror.by_id(session, new["account_object_id"]) is not None


async def test_an_expired_token_during_the_sync_is_renewed_once(
    engine: AsyncEngine, misa_sim: MisaSimulator
) -> None:
    w = worker(engine, misa_sim)
    await w.mirror.refresh()  # connected
    arm_fault(misa_sim.base_url, "expired_token", 1)
    data = activated()
    await deliver(engine, data)
    await park_other_links(engine, data.customer_id)
    await sync_all(w)
    link = await link_of(engine, data.customer_id)
    assert link.state == "synced" and link.attempts == 1
    assert await attempts_of(engine, data.customer_id) == [("synced", None)]
    assert sim_calls(misa_sim)["connect"] == 2


async def test_a_token_refused_even_after_reconnecting_defers_instead_of_failing(
    engine: AsyncEngine, misa_sim: MisaSimulator
) -> None:
    data = activated()
    await deliver(engine, data)
    await park_other_links(engine, data.customer_id)
    arm_fault(misa_sim.base_url, "expired_token", 2)
    w = worker(engine, misa_sim, sync_max_attempts=1)
    await sync_all(w)
    link = await link_of(engine, data.customer_id)
    assert link.state == "pending" and link.attempts == 0 and w.paused
    assert await attempts_of(engine, data.customer_id) == [("deferred", "ExpiredToken")]
    await make_due(engine, data.customer_id)
    w.resume()
    await sync_all(w)
    assert (await link_of(engine, data.customer_id)).state == "synced"
