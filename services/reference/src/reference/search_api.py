"""`GET /api/v1/admin-units/search`: type-ahead over provinces and wards of both schemes.

Served from the in-memory index of `reference.unit_search` (static official data), not
from the database, so it stays fast under type-ahead traffic.
"""

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from reference.unit_search import Kind, UnitIndex, index_is_built, unit_index
from shared.admin_units import Scheme
from shared.auth.dependencies import CurrentPrincipal
from shared.errors import API_PROBLEMS, problem_responses

router = APIRouter(
    prefix="/api/v1/admin-units", tags=["admin-units"], responses=problem_responses(*API_PROBLEMS)
)


class UnitHit(BaseModel):
    kind: Kind
    scheme: Scheme
    code: str
    name: str
    province_code: str
    province_name: str
    district_code: str | None
    """Legacy wards only."""
    district_name: str | None


class UnitSearchResult(BaseModel):
    items: list[UnitHit]


async def _index() -> UnitIndex:
    if index_is_built():
        return unit_index()
    # The first request builds the index (about half a second of CPU): do it in a worker
    # thread so that other requests are not held up meanwhile.
    return await run_in_threadpool(unit_index)


@router.get("/search", response_model=UnitSearchResult)
async def search_admin_units(
    _: CurrentPrincipal,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=100,
            description="What the user typed; accents and case are ignored.",
        ),
    ],
    scheme: Scheme | None = None,
    kind: Kind | None = None,
    province_code: Annotated[
        str | None, Query(pattern=r"^\d{2}$", description="Only units of this province.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> UnitSearchResult:
    """Provinces first, then wards; best matches first. A query without letters or digits
    (only spaces or punctuation) answers an empty list."""
    index = await _index()
    hits = index.search(q, scheme=scheme, kind=kind, province_code=province_code, limit=limit)
    return UnitSearchResult(items=[UnitHit.model_validate(h, from_attributes=True) for h in hits])
