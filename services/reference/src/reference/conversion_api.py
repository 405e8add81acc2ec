"""Where an old (pre-1 July 2025) address now belongs: `GET /api/v1/admin-units/convert`.

A legacy ward maps to one 2025 ward, or to several when it was split (ambiguous: only a
person who knows the street can choose). A legacy district or province maps to the 2025
units its wards went to.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from reference.models import District, Province, Ward, WardConversion
from shared.auth.dependencies import CurrentPrincipal
from shared.errors import API_PROBLEMS, FieldError, ProblemError, not_found, problem_responses
from shared.web import DbSession

router = APIRouter(
    prefix="/api/v1/admin-units",
    tags=["admin-units"],
    responses=problem_responses(*API_PROBLEMS, 404),
)
Code = Annotated[str | None, Query(min_length=1, max_length=10, pattern=r"^\d+$")]


async def _names(
    session: AsyncSession, model: type[Province] | type[Ward], scheme: str, codes: set[str]
) -> dict[str, str]:
    rows = await session.execute(
        select(model.code, model.name).where(model.scheme == scheme, model.code.in_(codes))
    )
    return {code: name for code, name in rows}


async def _targets(session: AsyncSession, conversions: list[WardConversion]) -> dict[str, Any]:
    ward_codes = sorted({c for conv in conversions for c in conv.new_ward_codes})
    province_codes = {conv.new_province_code for conv in conversions}
    ward_names = await _names(session, Ward, "2025", set(ward_codes))
    province_names = await _names(session, Province, "2025", province_codes)
    wards = await session.execute(
        select(Ward.code, Ward.province_code).where(
            Ward.scheme == "2025", Ward.code.in_(ward_codes)
        )
    )
    ward_province = {code: province for code, province in wards}
    return {
        "provinces": [{"code": c, "name": province_names.get(c)} for c in sorted(province_codes)],
        "wards": [
            {"code": c, "name": ward_names.get(c), "province_code": ward_province.get(c)}
            for c in ward_codes
        ],
    }


@router.get("/convert")
async def convert(
    _: CurrentPrincipal,
    session: DbSession,
    scheme: Literal["legacy"] = "legacy",
    ward_code: Code = None,
    district_code: Code = None,
    province_code: Code = None,
) -> dict[str, Any]:
    given = [
        (name, value)
        for name, value in (
            ("ward_code", ward_code),
            ("district_code", district_code),
            ("province_code", province_code),
        )
        if value
    ]
    if len(given) != 1:
        raise ProblemError(
            422,
            "Invalid request",
            "Give exactly one of ward_code, district_code or province_code.",
            "validation-error",
            [
                FieldError(name, "give exactly one")
                for name in ("ward_code", "district_code", "province_code")
            ],
        )
    field, code = given[0]
    if field == "ward_code":
        source = await session.get(Ward, ("legacy", code))
        if source is None:
            raise not_found("legacy ward")
        conversion = await session.get(WardConversion, code)
        if conversion is None:
            raise ProblemError(
                404, "Not Found", "This legacy ward has no known 2025 equivalent.", "no-conversion"
            )
        conversions = [conversion]
        origin = {
            "ward_code": code,
            "ward_name": source.name,
            "district_code": source.district_code,
            "province_code": source.province_code,
        }
    elif field == "district_code":
        district = await session.get(District, code)
        if district is None:
            raise not_found("legacy district")
        conversions = list(
            await session.scalars(
                select(WardConversion).where(WardConversion.legacy_district_code == code)
            )
        )
        origin = {
            "district_code": code,
            "district_name": district.name,
            "province_code": district.province_code,
        }
    else:
        province = await session.get(Province, ("legacy", code))
        if province is None:
            raise not_found("legacy province")
        conversions = list(
            await session.scalars(
                select(WardConversion).where(WardConversion.legacy_province_code == code)
            )
        )
        origin = {"province_code": code, "province_name": province.name}
    targets = await _targets(session, conversions)
    return {
        "from": {"scheme": scheme, **origin},
        "to": {"scheme": "2025", **targets},
        # A legacy ward split between several 2025 wards: only the street address can tell
        # which one, so a person must choose. For a district or province: some ward of it.
        "ambiguous": any(c.ambiguous for c in conversions),
        "split_wards": sorted(c.legacy_ward_code for c in conversions if c.ambiguous),
        "partly_merged": any(c.partly_merged for c in conversions),
    }
