"""Legacy → 2025 conversion against the real official data in a migrated database."""

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from reference.conversion_api import router
from shared import admin_units
from tests.fixtures.apps import app_client, build_app

Auth = Callable[[str], dict[str, str]]


@pytest.fixture
async def api(
    service_databases: dict[str, str], dev_keys: tuple
) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app("reference", service_databases["reference"], dev_keys[1])
    if not any(getattr(r, "path", "") == "/api/v1/admin-units/convert" for r in app.routes):
        app.include_router(router)
    async with app_client(app) as client:
        yield client


async def convert(api: httpx.AsyncClient, auth: Auth, **params: str) -> httpx.Response:
    return await api.get(
        "/api/v1/admin-units/convert", params={"scheme": "legacy", **params}, headers=auth("sales1")
    )


async def test_ben_nghe_became_phuong_sai_gon(api: httpx.AsyncClient, auth_header: Auth) -> None:
    body = (await convert(api, auth_header, ward_code="26740")).json()
    assert body["from"]["ward_name"] == "Phường Bến Nghé" and body["from"]["district_code"] == "760"
    assert [w["name"] for w in body["to"]["wards"]] == ["Phường Sài Gòn"]
    assert body["to"]["provinces"] == [
        {"code": "79", "name": admin_units.province_by_code("2025")["79"].name}
    ]
    assert body["ambiguous"] is False


async def test_a_split_ward_is_flagged_ambiguous_with_every_candidate(
    api: httpx.AsyncClient, auth_header: Auth
) -> None:
    split = next(
        c
        for c in admin_units.legacy_to_2025_ward_mapping().values()
        if c.ambiguous and c.in_legacy_list
    )
    body = (await convert(api, auth_header, ward_code=split.legacy_ward_code)).json()
    assert body["ambiguous"] is True
    assert [w["code"] for w in body["to"]["wards"]] == sorted(split.new_ward_codes)
    assert all(w["province_code"] == split.new_province_code for w in body["to"]["wards"])


async def test_every_ambiguity_flag_matches_the_official_table(
    api: httpx.AsyncClient, auth_header: Auth
) -> None:
    table = admin_units.legacy_to_2025_ward_mapping()
    sample = [c for c in table.values() if c.in_legacy_list][::250]  # ~40 wards across the country
    for conv in sample:
        body = (await convert(api, auth_header, ward_code=conv.legacy_ward_code)).json()
        assert body["ambiguous"] == (len(set(conv.new_ward_codes)) > 1), conv.legacy_ward_code


async def test_districts_and_provinces(api: httpx.AsyncClient, auth_header: Auth) -> None:
    district = (await convert(api, auth_header, district_code="760")).json()  # Quận 1
    assert district["from"]["district_name"]
    assert {p["code"] for p in district["to"]["provinces"]} == {"79"}
    table = admin_units.legacy_to_2025_ward_mapping().values()
    split_in_q1 = sorted(
        c.legacy_ward_code for c in table if c.legacy_district_code == "760" and c.ambiguous
    )
    assert district["split_wards"] == split_in_q1 and district["ambiguous"] is bool(split_in_q1)
    whole = next(
        d
        for d in admin_units.districts()
        if not any(c.ambiguous for c in table if c.legacy_district_code == d.code)
    )
    unsplit = (await convert(api, auth_header, district_code=whole.code)).json()
    assert unsplit["ambiguous"] is False and unsplit["split_wards"] == []
    # Legacy Bình Dương (74) and Bà Rịa–Vũng Tàu (77) joined Hồ Chí Minh City (79).
    for legacy in ("74", "77"):
        province = (await convert(api, auth_header, province_code=legacy)).json()
        assert [p["code"] for p in province["to"]["provinces"]] == ["79"]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 422),
        ({"ward_code": "26740", "district_code": "760"}, 422),
        ({"ward_code": "abc"}, 422),
        ({"ward_code": "99999"}, 404),
        ({"district_code": "999"}, 404),
        ({"province_code": "99"}, 404),
        ({"ward_code": "26740", "scheme": "2025"}, 422),
    ],
)
async def test_bad_requests(
    api: httpx.AsyncClient, auth_header: Auth, params: dict[str, str], status: int
) -> None:
    response = await api.get(
        "/api/v1/admin-units/convert",
        params={"scheme": "legacy", **params},
        headers=auth_header("sales1"),
    )
    assert (
        response.status_code == status
        and response.headers["content-type"] == "application/problem+json"
    )


async def test_needs_a_token(api: httpx.AsyncClient) -> None:
    assert (
        await api.get("/api/v1/admin-units/convert", params={"ward_code": "26740"})
    ).status_code == 401
