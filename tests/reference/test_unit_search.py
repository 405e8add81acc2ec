"""Type-ahead search over provinces and wards (both schemes), on the real official data."""

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from reference.search_api import router
from reference.unit_search import (
    PROVINCE_ALIASES,
    Hit,
    UnitIndex,
    search_units,
    tokenize,
    unit_index,
)
from shared.auth.dev_issuer import DEV_AUDIENCE, DEV_ISSUER
from shared.auth.verify import TokenVerifier
from shared.errors import install_error_handlers
from shared.text import fold

HCM_2025 = ("province", "2025", "79")


def key(hit: Hit) -> tuple[str, str, str]:
    return hit.kind, hit.scheme, hit.code


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("hcm", HCM_2025),
        ("HCM", HCM_2025),
        ("tphcm", HCM_2025),
        ("tp hcm", HCM_2025),
        ("TP.HCM", HCM_2025),
        ("sai gon", HCM_2025),
        ("Sài Gòn", HCM_2025),
        ("saigon", HCM_2025),
        ("sg", HCM_2025),
        ("Hồ Chí Minh", HCM_2025),
        ("hn", ("province", "2025", "01")),
        ("hanoi", ("province", "2025", "01")),
        ("ha noi", ("province", "2025", "01")),
        ("Hà Nội", ("province", "2025", "01")),
        ("dn", ("province", "2025", "48")),
        ("danang", ("province", "2025", "48")),
        ("hp", ("province", "2025", "31")),
        ("ct", ("province", "2025", "92")),
        ("cantho", ("province", "2025", "92")),
        ("hue", ("province", "2025", "46")),
        ("tth", ("province", "2025", "46")),
        ("thua thien hue", ("province", "2025", "46")),
        ("brvt", ("province", "legacy", "77")),
        ("vung tau", ("province", "legacy", "77")),
        ("Bà Rịa–Vũng Tàu", ("province", "legacy", "77")),
    ],
)
def test_aliases_and_names_find_the_province_first(
    query: str, expected: tuple[str, str, str]
) -> None:
    hits = search_units(query)
    assert hits
    assert key(hits[0]) == expected


def test_the_legacy_province_follows_its_2025_namesake() -> None:
    hits = search_units("hcm")
    assert [key(h) for h in hits[:2]] == [HCM_2025, ("province", "legacy", "79")]
    assert key(search_units("hcm", scheme="legacy")[0]) == ("province", "legacy", "79")
    assert key(search_units("tth", scheme="legacy")[0]) == ("province", "legacy", "46")


@pytest.mark.parametrize(("name", "aliases"), sorted(PROVINCE_ALIASES.items()))
def test_every_alias_finds_its_province_first(name: str, aliases: tuple[str, ...]) -> None:
    for alias in aliases:
        first = search_units(alias, kind="province")[0]
        assert " ".join(tokenize(first.name)).endswith(name), alias


def test_sai_gon_finds_the_city_and_the_ward() -> None:
    hits = search_units("sai gon")
    keys = [key(h) for h in hits]
    assert keys[0] == HCM_2025
    ward = next(h for h in hits if h.kind == "ward")
    assert (ward.scheme, ward.code, ward.name) == ("2025", "26740", "Phường Sài Gòn")
    assert ward.province_code == "79"
    assert ward.province_name == "Thành phố Hồ Chí Minh"
    assert ward.district_code is None and ward.district_name is None
    # Provinces come before wards.
    kinds = [h.kind for h in hits]
    assert kinds == sorted(kinds, key=lambda k: k != "province")


def test_accents_case_and_spacing_do_not_matter() -> None:
    expected = search_units("da nang")
    assert expected and key(expected[0]) == ("province", "2025", "48")
    for variant in ("Đà Nẵng", "ĐÀ NẴNG", "  đà   nẵng ", "Da Nang", "Đà-Nẵng"):
        assert search_units(variant) == expected, variant


def test_a_legacy_ward_comes_with_its_district() -> None:
    hits = search_units("ben nghe", scheme="legacy")
    assert hits
    ward = hits[0]
    assert (ward.kind, ward.scheme, ward.code, ward.name) == (
        "ward",
        "legacy",
        "26740",
        "Phường Bến Nghé",
    )
    assert (ward.district_code, ward.district_name) == ("760", "Quận 1")
    assert (ward.province_code, ward.province_name) == ("79", "Thành phố Hồ Chí Minh")
    assert search_units("ben nghe", scheme="2025") == []


def test_typing_letter_by_letter_keeps_the_city_on_top() -> None:
    for typed in ("ho c", "ho ch", "ho chi", "ho chi m", "ho chi minh"):
        assert key(search_units(typed)[0]) == HCM_2025, typed
    assert all(h.kind == "province" for h in search_units("h", limit=5))


def test_exact_then_whole_word_then_prefix_matches() -> None:
    hits = search_units("tan an", kind="ward")
    assert " ".join(tokenize(hits[0].name)).endswith(" tan an")  # Xã/Phường Tân An itself
    names = [" ".join(tokenize(h.name)) for h in search_units("ha", kind="province", limit=50)]
    whole = [i for i, n in enumerate(names) if "ha" in n.split()]
    prefix_only = [i for i, n in enumerate(names) if "ha" not in n.split()]
    assert whole and prefix_only  # Hà Nội, Hà Tĩnh… and Hải Phòng, Hậu Giang…
    assert max(whole) < min(prefix_only)
    # Within a tier, names starting with the query come first: An Giang before Nghệ An.
    provinces = [h.code for h in search_units("an", kind="province", scheme="2025")]
    assert provinces.index("91") < provinces.index("40")


def test_punctuated_names_match_with_and_without_the_apostrophe() -> None:
    with_apostrophe = search_units("m'drak", kind="ward")
    assert with_apostrophe and all("drak" in fold(h.name) for h in with_apostrophe)
    assert search_units("mdrak", kind="ward")[0] == with_apostrophe[0]


def test_filters() -> None:
    assert all(h.scheme == "2025" for h in search_units("phu", scheme="2025", limit=50))
    assert all(h.scheme == "legacy" for h in search_units("phu", scheme="legacy", limit=50))
    assert all(h.kind == "ward" for h in search_units("ha noi", kind="ward", limit=50))
    assert all(h.kind == "province" for h in search_units("a", kind="province", limit=50))
    in_hcm = search_units("phuong", province_code="79", limit=50)
    assert len(in_hcm) == 50 and all(h.province_code == "79" for h in in_hcm)
    assert search_units("phuong", province_code="99") == []
    only = search_units("sai gon", scheme="2025", kind="ward", province_code="79")
    assert [h.code for h in only][:1] == ["26740"]
    with pytest.raises(ValueError, match="scheme"):
        search_units("hcm", scheme="1990")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kind"):
        search_units("hcm", kind="district")  # type: ignore[arg-type]


def test_limit() -> None:
    assert len(search_units("x", limit=3)) == 3
    assert len(search_units("x", limit=50)) == 50
    assert search_units("x", limit=0) == []
    assert len(search_units("x")) == 10


@pytest.mark.parametrize(
    "junk", ["%%%", "'; drop", "'; DROP TABLE ward; --", "\u0000", "a" * 100, "", "   ", "zzzqqq"]
)
def test_junk_answers_an_empty_list(junk: str) -> None:
    assert search_units(junk) == []


@pytest.mark.parametrize(
    ("query", "filters"),
    [
        ("h", {}),
        ("ho c", {}),
        ("x", {"limit": 50}),
        ("phuong 1", {"scheme": "legacy", "limit": 40}),
        ("an", {"kind": "ward", "limit": 30}),
        ("tan", {"province_code": "79", "limit": 20}),
        ("sai gon", {}),
        ("hue", {"limit": 30}),
        ("thi tran", {"limit": 15}),
        ("tt xuan", {}),
        ("b", {"scheme": "2025", "kind": "province", "limit": 50}),
    ],
)
def test_the_index_agrees_with_a_linear_scan(query: str, filters: dict[str, str | int]) -> None:
    index = unit_index()
    fast = index.search(query, **filters)  # type: ignore[arg-type]
    assert fast
    assert fast == index.search_linear(query, **filters)  # type: ignore[arg-type]


def test_the_index_is_built_once_and_covers_every_unit() -> None:
    assert unit_index() is unit_index()
    assert isinstance(unit_index(), UnitIndex)
    # 34 + 63 provinces, 3,321 + 10,051 wards.
    assert len(unit_index().units) == 34 + 63 + 3321 + 10051


# ---- the HTTP endpoint -------------------------------------------------------------------


@pytest.fixture
async def search_client(dev_keys: tuple[Path, Path]) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_error_handlers(app)
    app.state.token_verifier = TokenVerifier(
        issuer=DEV_ISSUER, audience=DEV_AUDIENCE, public_key=dev_keys[1].read_text()
    )
    app.include_router(router)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        yield client


URL = "/api/v1/admin-units/search"
Auth = Callable[[str], dict[str, str]]


async def test_the_endpoint_answers_items(
    search_client: httpx.AsyncClient, auth_header: Auth
) -> None:
    response = await search_client.get(URL, params={"q": "hcm"}, headers=auth_header("sales1"))
    assert response.status_code == 200
    items = response.json()["items"]
    assert items[0] == {
        "kind": "province",
        "scheme": "2025",
        "code": "79",
        "name": "Thành phố Hồ Chí Minh",
        "province_code": "79",
        "province_name": "Thành phố Hồ Chí Minh",
        "district_code": None,
        "district_name": None,
    }
    response = await search_client.get(
        URL,
        params={"q": "Bến Nghé", "scheme": "legacy", "kind": "ward", "province_code": "79"},
        headers=auth_header("cs1"),
    )
    ward = response.json()["items"][0]
    assert (ward["code"], ward["district_code"], ward["district_name"]) == (
        "26740",
        "760",
        "Quận 1",
    )
    response = await search_client.get(
        URL, params={"q": "x", "limit": 50}, headers=auth_header("sales1")
    )
    assert len(response.json()["items"]) == 50


async def test_the_endpoint_needs_a_token(search_client: httpx.AsyncClient) -> None:
    response = await search_client.get(URL, params={"q": "hcm"})
    assert response.status_code == 401
    bad = await search_client.get(
        URL, params={"q": "hcm"}, headers={"Authorization": "Bearer nope"}
    )
    assert bad.status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        {"q": "hcm", "limit": "0"},
        {"q": "hcm", "limit": "51"},
        {"q": "hcm", "limit": "ten"},
        {"q": ""},
        {"q": "a" * 101},
        {},
        {"q": "hcm", "scheme": "1990"},
        {"q": "hcm", "kind": "district"},
        {"q": "hcm", "province_code": "7"},
        {"q": "hcm", "province_code": "79'; --"},
    ],
)
async def test_bad_parameters_are_422(
    search_client: httpx.AsyncClient, auth_header: Auth, params: dict[str, str]
) -> None:
    response = await search_client.get(URL, params=params, headers=auth_header("sales1"))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("junk", ["   ", "%%%", "'; drop", "\u0000", "đ" * 100])
async def test_junk_queries_answer_an_empty_list(
    search_client: httpx.AsyncClient, auth_header: Auth, junk: str
) -> None:
    response = await search_client.get(URL, params={"q": junk}, headers=auth_header("sales1"))
    assert response.status_code == 200
    assert response.json() == {"items": []}
