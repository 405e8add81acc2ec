"""Reconciliation: links against MISA's dictionary, as a job and through the API, with a
running MISA."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from misa_sync.mirror import Mirror
from misa_sync.misa_client import MisaClient, account_object_id_for
from misa_sync.models import MisaReconciliation
from misa_sync.reconciliation import MAX_ITEMS_PER_KIND, ReconciliationJob
from tests.fixtures.apps import app_client, build_app
from tests.fixtures.misa_simulator import MisaSimulator
from tests.fixtures.openapi import assert_documented_problem
from tests.misa_sync.sync_support import (
    activated,
    arm_fault,
    deliver,
    misa_objects,
    seed_misa,
    sync_all,
    unique_code,
    worker,
    worker_settings,
)

Auth = Callable[[str], dict[str, str]]
URL = "/api/v1/misa-links/reconciliation"
RUNS = f"{URL}/runs"
DOWN = "http://127.0.0.1:1"


@pytest.fixture
async def engine(service_databases: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(service_databases["misa_sync"])
    # The session's database outlives a test: every test here starts without runs.
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM misa_reconciliations"))
    yield engine
    await engine.dispose()


def job(
    engine: AsyncEngine,
    sim: MisaSimulator | str,
    max_items_per_kind: int = MAX_ITEMS_PER_KIND,
    **overrides: Any,
) -> ReconciliationJob:
    base_url = sim if isinstance(sim, str) else sim.base_url
    settings = worker_settings(base_url, **({"reconcile_interval_s": 600.0} | overrides))
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    return ReconciliationJob(
        sessionmaker=sessionmaker,
        mirror=Mirror(sessionmaker, MisaClient.from_settings(settings)),
        settings=settings,
        max_items_per_kind=max_items_per_kind,
    )


async def stored_runs(engine: AsyncEngine) -> list[MisaReconciliation]:
    """Newest first."""
    async with AsyncSession(engine) as session:
        rows = await session.scalars(
            select(MisaReconciliation).order_by(MisaReconciliation.started_at.desc())
        )
        return list(rows)


def misa_calls(sim: MisaSimulator) -> int:
    calls: dict[str, int] = httpx.get(f"{sim.base_url}/_sim/stats", timeout=10).json()["calls"]
    return sum(calls.values())


@pytest.fixture
async def api(
    service_databases: dict[str, str], dev_keys: tuple[Path, Path], misa_sim: MisaSimulator
) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(
        "misa_sync",
        service_databases["misa_sync"],
        dev_keys[1],
        misa_base_url=misa_sim.base_url,
        misa_rate_limit_per_s=0,
    )
    async with app_client(app) as client:
        yield client


def drift_of(report: dict[str, Any], account_object_id: str) -> list[dict[str, Any]]:
    return [i for i in report["items"] if i["account_object_id"] == account_object_id]


async def test_reconciliation_reports_missing_changed_and_extra(
    engine: AsyncEngine, misa_sim: MisaSimulator, api: httpx.AsyncClient, auth_header: Auth
) -> None:
    gone = activated()
    await deliver(engine, gone)
    await sync_all(worker(engine, misa_sim))
    misa_sim.reset()  # MISA loses the object (deleted there)
    fine, edited = activated(), activated(company_name="Cty Sửa", customer_type_code="DN")
    for data in (fine, edited):
        await deliver(engine, data)
    await sync_all(worker(engine, misa_sim))
    # Someone edits a customer in MISA by hand
    (held,) = misa_objects(misa_sim.base_url, code=edited.customer_code)
    seed_misa(misa_sim.base_url, **(held | {"tel": "+84911111111", "address": "Khác"}))
    # ... and creates one with a code like ours, and one with an id we would derive
    stray = seed_misa(misa_sim.base_url, account_object_code=unique_code())
    orphan_id = account_object_id_for(str(uuid.uuid4()))
    seed_misa(misa_sim.base_url, account_object_id=orphan_id, account_object_code="TỰ-TẠO")
    not_ours = seed_misa(misa_sim.base_url, account_object_code="KHÁCH LẺ")

    response = await api.get(URL, params={"refresh": "full"}, headers=auth_header("accountant1"))
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["refreshed"] == "full" and report["mirror_full_refreshed_at"]

    gone_id = account_object_id_for(str(gone.customer_id))
    assert [(d["kind"], d["customer_id"]) for d in drift_of(report, gone_id)] == [
        ("missing", str(gone.customer_id))
    ]
    (changed,) = drift_of(report, account_object_id_for(str(edited.customer_id)))
    assert changed["kind"] == "changed" and changed["fields"] == ["address", "tel"]
    assert not drift_of(report, account_object_id_for(str(fine.customer_id)))
    assert [d["kind"] for d in drift_of(report, stray["account_object_id"])] == ["extra"]
    # An id ours would look like is only "ours" when it derives from a known customer
    assert not drift_of(report, orphan_id)
    assert not drift_of(report, not_ours["account_object_id"])
    assert report["counts"]["missing"] >= 1 and report["counts"]["changed"] >= 1

    only_extra = (
        await api.get(
            URL, params={"kind": "extra", "refresh": "none"}, headers=auth_header("admin1")
        )
    ).json()
    assert {d["kind"] for d in only_extra["items"]} == {"extra"}
    assert only_extra["counts"] == report["counts"]


async def test_an_object_with_our_derived_id_but_another_link_is_extra(
    engine: AsyncEngine, misa_sim: MisaSimulator, api: httpx.AsyncClient, auth_header: Auth
) -> None:
    existing_code = unique_code("OLD-")
    seed_misa(misa_sim.base_url, account_object_code=existing_code)
    data = activated(misa_code=existing_code)
    await deliver(engine, data)
    await sync_all(worker(engine, misa_sim))
    # Later, an object under the id IMS would have derived appears (a second system?)
    derived = account_object_id_for(str(data.customer_id))
    seed_misa(misa_sim.base_url, account_object_id=derived, account_object_code="X-1")
    report = (
        await api.get(URL, params={"refresh": "full"}, headers=auth_header("accountant1"))
    ).json()
    assert [d["kind"] for d in drift_of(report, derived)] == ["extra"]


async def test_reconciliation_is_for_accounting_and_checks_its_parameters(
    api: httpx.AsyncClient, auth_header: Auth
) -> None:
    document = (await api.get("/openapi.json")).json()
    for user in ("cs1", "sales1"):
        denied = await api.get(URL, headers=auth_header(user))
        # The 403 (and the 422 below) were missing from the OpenAPI document (issue 8).
        assert denied.status_code == 403
        assert_documented_problem(document, "GET", URL, denied)
    for params in ({"kind": "lost"}, {"refresh": "sometimes"}, {"limit": "0"}):
        bad = await api.get(URL, params=params, headers=auth_header("accountant1"))
        assert bad.status_code == 422
        assert_documented_problem(document, "GET", URL, bad)


async def test_reconciliation_says_when_misa_cannot_be_read(
    engine: AsyncEngine,
    service_databases: dict[str, str],
    dev_keys: tuple[Path, Path],
    auth_header: Auth,
) -> None:
    app = build_app(
        "misa_sync",
        service_databases["misa_sync"],
        dev_keys[1],
        misa_base_url=DOWN,
        misa_retry_max_attempts=1,
    )
    async with app_client(app) as api:
        document = (await api.get("/openapi.json")).json()
        # No run yet: the default runs one, which fails; so does an asked-for refresh.
        for params in ({}, {"refresh": "incremental"}):
            down = await api.get(URL, params=params, headers=auth_header("accountant1"))
            assert down.status_code == 503
            assert down.headers["content-type"].startswith("application/problem+json")
            assert "ConnectionError" in down.json()["detail"]
            # Found by the fuzzer (issue 8): this 503 was not in the OpenAPI document.
            assert_documented_problem(document, "GET", URL, down)
        cached = await api.get(URL, params={"refresh": "none"}, headers=auth_header("accountant1"))
        assert cached.status_code == 200 and cached.json()["run_id"] is None
        runs = (await api.get(RUNS, headers=auth_header("accountant1"))).json()["items"]
    # Both failed runs are recorded (refresh=none stores nothing)
    assert [(r["outcome"], r["error_code"], r["trigger"]) for r in runs] == [
        ("failed", "ConnectionError", "api")
    ] * 2


# -- the job -----------------------------------------------------------------------------


async def test_the_job_finds_each_kind_of_drift_and_stores_it(
    engine: AsyncEngine, misa_sim: MisaSimulator, api: httpx.AsyncClient, auth_header: Auth
) -> None:
    gone = activated()
    await deliver(engine, gone)
    await sync_all(worker(engine, misa_sim))
    misa_sim.reset()  # MISA loses the object
    edited = activated(company_name="Cty Sửa", customer_type_code="DN")
    await deliver(engine, edited)
    await sync_all(worker(engine, misa_sim))
    (held,) = misa_objects(misa_sim.base_url, code=edited.customer_code)
    seed_misa(misa_sim.base_url, **(held | {"tel": "+84911111111", "address": "Khác"}))
    stray = seed_misa(misa_sim.base_url, account_object_code=unique_code())

    # The mirror's full scan is due (it is the only read that sees the lost object)
    with structlog.testing.capture_logs() as logs:
        run = await job(engine, misa_sim, misa_mirror_full_refresh_interval_s=0.001).run_if_due()
    assert isinstance(run, MisaReconciliation)
    assert (run.outcome, run.refresh, run.trigger, run.error_code) == (
        "ok",
        "full",
        "schedule",
        None,
    )
    assert run.missing >= 1 and run.changed >= 1 and run.extra >= 1 and not run.truncated

    (stored,) = await stored_runs(engine)
    assert stored.id == run.id and stored.finished_at >= stored.started_at
    by_id = {i["account_object_id"]: i for i in stored.items}
    gone_id = account_object_id_for(str(gone.customer_id))
    assert by_id[gone_id]["kind"] == "missing"
    assert by_id[gone_id]["customer_id"] == str(gone.customer_id)
    changed = by_id[account_object_id_for(str(edited.customer_id))]
    assert changed["kind"] == "changed" and changed["fields"] == ["address", "tel"]
    assert by_id[stray["account_object_id"]]["kind"] == "extra"
    # Ids, codes and field names only: no values from either side
    assert all(
        set(i)
        == {"kind", "account_object_id", "misa_code", "customer_id", "customer_code", "fields"}
        for i in stored.items
    )
    assert "+8491" not in str(stored.items) and "Khác" not in str(stored.items)

    (line,) = [e for e in logs if e["event"] == "misa_reconciliation"]
    assert line["log_level"] == "warning"
    assert (line["missing"], line["changed"], line["extra"]) == (
        run.missing,
        run.changed,
        run.extra,
    )
    assert line["duration_ms"] >= 0 and line["outcome"] == "ok"

    # The API answers the stored run, without calling MISA
    calls = misa_calls(misa_sim)
    report = (await api.get(URL, params={"limit": 1000}, headers=auth_header("accountant1"))).json()
    assert misa_calls(misa_sim) == calls
    assert report["run_id"] == str(run.id) and report["outcome"] == "ok"
    assert report["refreshed"] == "full" and report["started_at"] and report["finished_at"]
    assert report["counts"] == {"missing": run.missing, "changed": run.changed, "extra": run.extra}
    assert {i["account_object_id"] for i in report["items"]} == set(by_id)
    only_missing = (
        await api.get(URL, params={"kind": "missing", "limit": 1}, headers=auth_header("admin1"))
    ).json()
    assert [i["kind"] for i in only_missing["items"]] == ["missing"]
    assert only_missing["truncated"] == (run.missing > 1)


async def test_a_clean_run_logs_at_info_and_a_run_stores_at_most_its_cap_per_kind(
    engine: AsyncEngine, misa_sim: MisaSimulator
) -> None:
    # No links and an empty MISA: nothing to report (other tests' links go; none of them
    # relies on an earlier test's).
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM misa_links"))
    with structlog.testing.capture_logs() as logs:
        run = await job(engine, misa_sim).run_now("full")
    assert (run.outcome, run.missing, run.changed, run.extra) == ("ok", 0, 0, 0)
    (line,) = [e for e in logs if e["event"] == "misa_reconciliation"]
    assert line["log_level"] == "info" and line["refresh"] == "full"
    for _ in range(3):
        seed_misa(misa_sim.base_url, account_object_code=unique_code())
    run = await job(engine, misa_sim, max_items_per_kind=2).run_now("incremental")
    assert run.extra >= 3 and run.truncated
    assert len([i for i in run.items if i["kind"] == "extra"]) == 2


async def test_two_job_instances_at_once_make_one_run(
    engine: AsyncEngine, misa_sim: MisaSimulator
) -> None:
    first, second = job(engine, misa_sim), job(engine, misa_sim)
    outcomes = await asyncio.gather(first.run_if_due(), second.run_if_due())
    assert sorted(type(o).__name__ for o in outcomes) == ["MisaReconciliation", "str"]
    assert len(await stored_runs(engine)) == 1
    # The run counts for every replica: nothing is due for another interval
    assert await first.run_if_due() == "not_due"
    assert 590 < await second.seconds_until_due() <= 600

    # A run in progress elsewhere (the lock held): skipped, not waited for
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE misa_reconciliations SET started_at = now() - '1 h'::interval")
        )
    async with engine.connect() as holder, holder.begin():
        await holder.execute(text("SELECT pg_advisory_xact_lock(x'4d4953415245434f'::bigint)"))
        assert await first.run_if_due() == "locked"
    assert isinstance(await first.run_if_due(), MisaReconciliation)
    assert len(await stored_runs(engine)) == 2


async def test_misa_down_records_a_failed_run_and_the_next_run_succeeds(
    engine: AsyncEngine, misa_sim: MisaSimulator, api: httpx.AsyncClient, auth_header: Auth
) -> None:
    flaky = job(
        engine,
        misa_sim,
        reconcile_interval_s=0.01,
        misa_circuit_failure_threshold=1,
        # Long enough that the next run still finds the circuit open on a loaded machine.
        misa_circuit_cooldown_s=2.0,
    )
    arm_fault(misa_sim.base_url, "http_500", 1)
    with structlog.testing.capture_logs() as logs:
        failed = await flaky.run_if_due()
    assert isinstance(failed, MisaReconciliation)
    assert (failed.outcome, failed.error_code) == ("failed", "HTTP500")
    assert (failed.missing, failed.changed, failed.extra, failed.items) == (0, 0, 0, [])
    (line,) = [e for e in logs if e["event"] == "misa_reconciliation"]
    assert line["log_level"] == "warning" and line["error_code"] == "HTTP500"
    # The circuit is open now: the next interval's run fails fast, without calling MISA
    await asyncio.sleep(0.02)
    calls = misa_calls(misa_sim)
    fast = await flaky.run_if_due()
    assert isinstance(fast, MisaReconciliation) and fast.error_code == "CircuitOpen"
    assert misa_calls(misa_sim) == calls
    # MISA recovers: the next run is fine
    await asyncio.sleep(2.05)
    ok = await flaky.run_if_due()
    assert isinstance(ok, MisaReconciliation) and ok.outcome == "ok"
    assert [r.outcome for r in await stored_runs(engine)] == ["ok", "failed", "failed"]

    runs = (await api.get(RUNS, headers=auth_header("accountant1"))).json()
    assert [(r["outcome"], r["error_code"]) for r in runs["items"]] == [
        ("ok", None),
        ("failed", "CircuitOpen"),
        ("failed", "HTTP500"),
    ]
    failures = (
        await api.get(RUNS, params={"outcome": "failed"}, headers=auth_header("admin1"))
    ).json()
    assert [r["error_code"] for r in failures["items"]] == ["CircuitOpen", "HTTP500"]
    latest = (await api.get(URL, headers=auth_header("accountant1"))).json()
    assert latest["run_id"] == str(ok.id)


async def test_the_worker_survives_an_outage_and_keeps_its_schedule(engine: AsyncEngine) -> None:
    task = asyncio.create_task(job(engine, DOWN, reconcile_interval_s=0.05).run())
    try:
        for _ in range(200):
            if len(await stored_runs(engine)) >= 3:
                break
            await asyncio.sleep(0.05)
        assert not task.done()
        runs = await stored_runs(engine)
        assert len(runs) >= 3
        assert {(r.outcome, r.error_code, r.trigger) for r in runs} == {
            ("failed", "ConnectionError", "schedule")
        }
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_an_interval_of_zero_disables_the_job(engine: AsyncEngine) -> None:
    await asyncio.wait_for(job(engine, DOWN, reconcile_interval_s=0).run(), timeout=5)
    assert await stored_runs(engine) == []


async def test_only_the_last_runs_are_kept_and_always_the_latest_successful_one(
    engine: AsyncEngine, misa_sim: MisaSimulator
) -> None:
    keep_three = job(engine, misa_sim, reconcile_keep_runs=3)
    made = [await keep_three.run_now("incremental") for _ in range(5)]
    assert [r.id for r in await stored_runs(engine)] == [r.id for r in reversed(made[2:])]

    keep_two_down = job(engine, DOWN, reconcile_keep_runs=2)
    failed = [await keep_two_down.run_now() for _ in range(3)]
    assert [r.id for r in await stored_runs(engine)] == [
        failed[2].id,
        failed[1].id,
        made[4].id,  # beyond the two newest, but the only successful one left
    ]


# -- the endpoints -----------------------------------------------------------------------


async def test_the_default_runs_one_when_none_has_run_yet(
    engine: AsyncEngine, misa_sim: MisaSimulator, api: httpx.AsyncClient, auth_header: Auth
) -> None:
    first = await api.get(URL, headers=auth_header("accountant1"))
    assert first.status_code == 200, first.text
    report = first.json()
    assert report["run_id"] and report["outcome"] == "ok"
    assert report["refreshed"] in ("full", "incremental")
    (stored,) = await stored_runs(engine)
    assert str(stored.id) == report["run_id"] and stored.trigger == "api"
    calls = misa_calls(misa_sim)
    again = (await api.get(URL, headers=auth_header("admin1"))).json()
    assert again["run_id"] == report["run_id"] and misa_calls(misa_sim) == calls

    # An asked-for refresh is a new stored run, and the default answers it from then on
    fresh = (
        await api.get(URL, params={"refresh": "incremental"}, headers=auth_header("accountant1"))
    ).json()
    assert fresh["run_id"] != report["run_id"] and fresh["refreshed"] == "incremental"
    assert (await api.get(URL, headers=auth_header("accountant1"))).json()["run_id"] == fresh[
        "run_id"
    ]
    assert len(await stored_runs(engine)) == 2


async def test_runs_are_listed_newest_first_page_by_page(
    engine: AsyncEngine, misa_sim: MisaSimulator, api: httpx.AsyncClient, auth_header: Auth
) -> None:
    reconciler = job(engine, misa_sim)
    made = [await reconciler.run_now("incremental") for _ in range(3)]
    page = (await api.get(RUNS, params={"limit": 2}, headers=auth_header("accountant1"))).json()
    assert [r["run_id"] for r in page["items"]] == [str(made[2].id), str(made[1].id)]
    assert page["next_cursor"]
    first = page["items"][0]
    assert first["trigger"] == "api" and first["refreshed"] == "incremental"
    assert set(first) >= {"started_at", "finished_at", "duration_ms", "counts", "truncated"}
    assert "items" not in first
    rest = (
        await api.get(
            RUNS,
            params={"limit": 2, "cursor": page["next_cursor"]},
            headers=auth_header("admin1"),
        )
    ).json()
    assert [r["run_id"] for r in rest["items"]] == [str(made[0].id)]
    assert rest["next_cursor"] is None


async def test_runs_are_for_accounting_and_check_their_parameters(
    api: httpx.AsyncClient, auth_header: Auth
) -> None:
    for role in ("cs1", "sales1"):
        assert (await api.get(RUNS, headers=auth_header(role))).status_code == 403
    for params in ({"limit": "0"}, {"limit": "201"}, {"outcome": "maybe"}):
        bad = await api.get(RUNS, params=params, headers=auth_header("accountant1"))
        assert bad.status_code == 422, params
        assert bad.headers["content-type"].startswith("application/problem+json")
    bad_cursor = await api.get(RUNS, params={"cursor": "nope"}, headers=auth_header("admin1"))
    assert bad_cursor.status_code == 400
    assert bad_cursor.headers["content-type"].startswith("application/problem+json")
