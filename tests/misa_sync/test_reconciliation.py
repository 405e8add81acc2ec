"""Reconciliation: links against MISA's dictionary, through the API, with a running MISA."""

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from misa_sync.misa_client import account_object_id_for
from tests.fixtures.apps import app_client, build_app
from tests.fixtures.misa_simulator import MisaSimulator
from tests.misa_sync.sync_support import (
    activated,
    deliver,
    misa_objects,
    seed_misa,
    sync_all,
    unique_code,
    worker,
)

Auth = Callable[[str], dict[str, str]]
URL = "/api/v1/misa-links/reconciliation"


@pytest.fixture
async def engine(service_databases: dict[str, str]) -> AsyncEngine:
    return create_async_engine(service_databases["misa_sync"])


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
    assert (await api.get(URL, headers=auth_header("cs1"))).status_code == 403
    assert (await api.get(URL, headers=auth_header("sales1"))).status_code == 403
    for params in ({"kind": "lost"}, {"refresh": "sometimes"}, {"limit": "0"}):
        bad = await api.get(URL, params=params, headers=auth_header("accountant1"))
        assert bad.status_code == 422
        assert bad.headers["content-type"].startswith("application/problem+json")


async def test_reconciliation_says_when_misa_cannot_be_read(
    service_databases: dict[str, str], dev_keys: tuple[Path, Path], auth_header: Auth
) -> None:
    app = build_app(
        "misa_sync",
        service_databases["misa_sync"],
        dev_keys[1],
        misa_base_url="http://127.0.0.1:1",
        misa_retry_max_attempts=1,
    )
    async with app_client(app) as api:
        down = await api.get(URL, headers=auth_header("accountant1"))
        assert down.status_code == 503
        assert down.headers["content-type"].startswith("application/problem+json")
        cached = await api.get(URL, params={"refresh": "none"}, headers=auth_header("accountant1"))
        assert cached.status_code == 200
