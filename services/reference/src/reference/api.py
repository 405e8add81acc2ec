"""REST endpoints of CONTRACT.md §7 (reads; admin edits arrive with the reference issue)."""

from typing import Any, Literal

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from reference.editing import LIST_NAMES, ListName
from reference.models import District, ListItem, Province, Ward
from reference.seeding import list_item_view
from shared.auth.dependencies import CurrentPrincipal
from shared.errors import API_PROBLEMS, not_found, problem_responses
from shared.web import DbSession

router = APIRouter(
    prefix="/api/v1", tags=["reference"], responses=problem_responses(*API_PROBLEMS, 404)
)
Scheme = Literal["2025", "legacy"]


def province_view(p: Province) -> dict[str, Any]:
    return {
        "code": p.code,
        "name": p.name,
        "short_name": p.short_name,
        "name_ascii": p.name_ascii,
        "division_type": p.division_type,
        "codename": p.codename,
        "phone_area_code": p.phone_area_code,
        "scheme": p.scheme,
        "valid_from": p.valid_from,
        "valid_to": p.valid_to,
    }


def ward_view(w: Ward) -> dict[str, Any]:
    return {
        "code": w.code,
        "name": w.name,
        "province_code": w.province_code,
        "district_code": w.district_code,
        "division_type": w.division_type,
        "scheme": w.scheme,
        "valid_from": w.valid_from,
        "valid_to": w.valid_to,
    }


def district_view(d: District) -> dict[str, Any]:
    return {
        "code": d.code,
        "name": d.name,
        "province_code": d.province_code,
        "division_type": d.division_type,
        "valid_from": d.valid_from,
        "valid_to": d.valid_to,
    }


@router.get("/provinces")
async def list_provinces(
    _: CurrentPrincipal, session: DbSession, scheme: Scheme = "2025"
) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(Province).where(Province.scheme == scheme).order_by(Province.code)
    )
    return [province_view(p) for p in rows]


async def _province(session: AsyncSession, code: str, scheme: str) -> Province:
    province = await session.get(Province, (scheme, code))
    if province is None:
        raise not_found("province")
    return province


@router.get("/provinces/{code}/wards")
async def province_wards(
    code: str, _: CurrentPrincipal, session: DbSession, scheme: Scheme = "2025"
) -> list[dict[str, Any]]:
    await _province(session, code, scheme)
    rows = await session.scalars(
        select(Ward).where(Ward.scheme == scheme, Ward.province_code == code).order_by(Ward.code)
    )
    return [ward_view(w) for w in rows]


@router.get("/provinces/{code}/districts")
async def province_districts(
    code: str, _: CurrentPrincipal, session: DbSession
) -> list[dict[str, Any]]:
    await _province(session, code, "legacy")
    rows = await session.scalars(
        select(District).where(District.province_code == code).order_by(District.code)
    )
    return [district_view(d) for d in rows]


@router.get("/districts/{code}/wards")
async def district_wards(
    code: str, _: CurrentPrincipal, session: DbSession
) -> list[dict[str, Any]]:
    if await session.get(District, code) is None:
        raise not_found("district")
    rows = await session.scalars(
        select(Ward).where(Ward.scheme == "legacy", Ward.district_code == code).order_by(Ward.code)
    )
    return [ward_view(w) for w in rows]


async def _list(session: AsyncSession, name: str) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(ListItem).where(ListItem.list == name).order_by(ListItem.sort_order, ListItem.code)
    )
    return [list_item_view(i) for i in rows]


def _list_endpoint(name: ListName) -> None:
    async def endpoint(_: CurrentPrincipal, session: DbSession) -> list[dict[str, Any]]:
        return await _list(session, name)

    endpoint.__name__ = "list_" + name.replace("-", "_")
    router.add_api_route(f"/{name}", endpoint, methods=["GET"], summary=f"The {name} list")


for _name in LIST_NAMES:
    _list_endpoint(_name)
