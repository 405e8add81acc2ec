"""The reference lists the customer form needs, served from the migrated database."""

from collections.abc import Callable

import httpx
import pytest

Auth = Callable[[str], dict[str, str]]


@pytest.mark.parametrize(("scheme", "count"), [("2025", 34), ("legacy", 63)])
async def test_provinces_of_both_schemes(
    reference_api: httpx.AsyncClient, auth_header: Auth, scheme: str, count: int
) -> None:
    response = await reference_api.get(
        "/api/v1/provinces", params={"scheme": scheme}, headers=auth_header("sales1")
    )
    assert response.status_code == 200
    provinces = response.json()
    assert len(provinces) == count
    assert any(p["code"] == "01" and "Hà Nội" in p["name"] for p in provinces)


async def test_wards_and_districts(reference_api: httpx.AsyncClient, auth_header: Auth) -> None:
    h = auth_header("sales1")
    wards = (await reference_api.get("/api/v1/provinces/01/wards", headers=h)).json()
    assert wards and all(w["province_code"] == "01" and w["district_code"] is None for w in wards)
    districts = (await reference_api.get("/api/v1/provinces/01/districts", headers=h)).json()
    assert districts and all(d["province_code"] == "01" for d in districts)
    legacy_wards = (
        await reference_api.get(f"/api/v1/districts/{districts[0]['code']}/wards", headers=h)
    ).json()
    assert legacy_wards and all(w["district_code"] == districts[0]["code"] for w in legacy_wards)
    assert (await reference_api.get("/api/v1/provinces/99/wards", headers=h)).status_code == 404
    assert (await reference_api.get("/api/v1/districts/99999/wards", headers=h)).status_code == 404
    assert (
        await reference_api.get("/api/v1/provinces", params={"scheme": "1990"}, headers=h)
    ).status_code == 422


@pytest.mark.parametrize(
    ("path", "must_have"),
    [
        ("customer-types", "is_company"),
        ("customer-groups", "default_payment_term_code"),
        ("channels", "parent_code"),
        ("payment-terms", "days"),
        ("payment-methods", "kind"),
        ("sales-units", "manager_employee_id"),
        ("employees", "roles"),
    ],
)
async def test_sales_lists(
    reference_api: httpx.AsyncClient, auth_header: Auth, path: str, must_have: str
) -> None:
    items = (await reference_api.get(f"/api/v1/{path}", headers=auth_header("sales1"))).json()
    assert items and all(
        must_have in item and "name" in item and "active" in item for item in items
    )


async def test_reads_need_a_token(reference_api: httpx.AsyncClient) -> None:
    assert (await reference_api.get("/api/v1/channels")).status_code == 401


async def test_seeding_announced_every_list_item(service_databases: dict[str, str]) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(service_databases["reference"])
    async with engine.connect() as conn:
        events = await conn.scalar(
            text("SELECT count(*) FROM outbox WHERE event_type = 'ims.reference.ItemChanged.v1'")
        )
        items = await conn.scalar(text("SELECT count(*) FROM list_items"))
    await engine.dispose()
    assert events == items > 0


async def test_a_nul_in_the_path_is_a_400(
    reference_api: httpx.AsyncClient, auth_header: Auth
) -> None:
    response = await reference_api.get(
        "/api/v1/provinces/a%00b/wards", headers=auth_header("sales1")
    )
    assert (
        response.status_code == 400
        and response.headers["content-type"] == "application/problem+json"
    )


async def test_each_start_announces_a_snapshot_of_every_list(
    service_databases: dict[str, str],
) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from reference.snapshot import announce_snapshot

    engine = create_async_engine(service_databases["reference"])
    async with engine.connect() as conn:
        before = await conn.scalar(text("SELECT count(*) FROM outbox"))
        items = await conn.scalar(text("SELECT count(*) FROM list_items"))
    assert await announce_snapshot(async_sessionmaker(engine)) == items
    async with engine.connect() as conn:
        after = await conn.scalar(text("SELECT count(*) FROM outbox"))
        lists = set(await conn.scalars(text("SELECT DISTINCT payload->>'list' FROM outbox")))
    await engine.dispose()
    assert after - before == items
    assert {"sales-units", "employees", "channels"} <= lists


async def test_units_carry_their_validity(
    reference_api: httpx.AsyncClient, auth_header: Auth
) -> None:
    h = auth_header("sales1")
    new = (await reference_api.get("/api/v1/provinces", headers=h)).json()[0]
    old = (
        await reference_api.get("/api/v1/provinces", params={"scheme": "legacy"}, headers=h)
    ).json()[0]
    assert (new["valid_from"], new["valid_to"]) == ("2025-07-01", None)
    assert (old["valid_from"], old["valid_to"]) == (None, "2025-06-30")
    districts = (await reference_api.get("/api/v1/provinces/01/districts", headers=h)).json()
    assert districts[0]["valid_to"] == "2025-06-30"
