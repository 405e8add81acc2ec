"""Admin edits of the business lists (CONTRACT.md §7), the item reads they need, and a
snapshot of every list for a replica that bootstraps.

Each list gets its own routes (`/api/v1/channels/{code}` and so on) so that the body is
validated with that list's model and documented per list; an unknown list is a 404.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Response, status
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from reference.editing import (
    LIST_NAMES,
    SPECS,
    ItemCreate,
    ItemPatch,
    ListName,
    create_item,
    update_item,
)
from reference.models import ListItem, ListItemAudit
from reference.seeding import list_item_view
from shared.auth.dependencies import CurrentPrincipal, require_roles
from shared.auth.principal import Principal
from shared.concurrency import etag, if_match_versions
from shared.errors import API_PROBLEMS, not_found, problem_responses
from shared.web import DbSession

router = APIRouter(
    prefix="/api/v1", tags=["reference admin"], responses=problem_responses(*API_PROBLEMS)
)
# No extra roles: `require_roles` always admits admin, and only admin edits reference data.
Admin = Annotated[Principal, Depends(require_roles())]


class HistoryEntry(BaseModel):
    version: int
    action: str
    by: str
    at: datetime
    changes: dict[str, Any]


class HistoryPage(BaseModel):
    items: list[HistoryEntry]


class Snapshot(BaseModel):
    lists: dict[str, list[dict[str, Any]]]


def item_response(response: Response, item: ListItem) -> dict[str, Any]:
    response.headers["ETag"] = etag(item.version)
    return list_item_view(item)


async def load_item(session: AsyncSession, list_name: ListName, code: str) -> ListItem:
    item = await session.get(ListItem, (list_name, code))
    if item is None:
        raise not_found(SPECS[list_name].label)
    return item


def _add_routes(list_name: ListName) -> None:
    spec = SPECS[list_name]
    slug = list_name.replace("-", "_")

    async def create(
        body: ItemCreate, response: Response, principal: Admin, session: DbSession
    ) -> dict[str, Any]:
        async with session.begin():
            item = await create_item(
                session, list=list_name, data=body, actor=principal.employee_id
            )
        response.headers["Location"] = f"/api/v1/{list_name}/{item.code}"
        return item_response(response, item)

    async def patch(
        code: str,
        body: ItemPatch,
        response: Response,
        principal: Admin,
        session: DbSession,
        if_match: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        version = if_match_versions(if_match)
        async with session.begin():
            item = await update_item(
                session,
                list=list_name,
                code=code,
                patch=body,
                actor=principal.employee_id,
                expected_version=version,
            )
        return item_response(response, item)

    async def read(
        code: str, response: Response, _: CurrentPrincipal, session: DbSession
    ) -> dict[str, Any]:
        return item_response(response, await load_item(session, list_name, code))

    async def history(code: str, _: Admin, session: DbSession) -> HistoryPage:
        await load_item(session, list_name, code)
        rows = await session.scalars(
            select(ListItemAudit)
            .where(ListItemAudit.list == list_name, ListItemAudit.code == code)
            .order_by(ListItemAudit.id)
        )
        return HistoryPage(
            items=[
                HistoryEntry(
                    version=a.version, action=a.action, by=a.actor, at=a.at, changes=a.changes
                )
                for a in rows
            ]
        )

    # FastAPI reads the body model from the annotation: give each list its own models.
    create.__annotations__["body"] = spec.create
    patch.__annotations__["body"] = spec.patch
    Route = tuple[str, Callable[..., Awaitable[Any]], str, int, str, tuple[int, ...]]
    routes: list[Route] = [
        ("", create, "POST", status.HTTP_201_CREATED, f"Create a {spec.label} (admin)", (403, 409)),
        ("/{code}", read, "GET", status.HTTP_200_OK, f"One {spec.label}, with its ETag", (404,)),
        (
            "/{code}",
            patch,
            "PATCH",
            status.HTTP_200_OK,
            f"Change a {spec.label} (admin)",
            (403, 404, 409, 412, 428),
        ),
        (
            "/{code}/history",
            history,
            "GET",
            status.HTTP_200_OK,
            f"A {spec.label}'s audit (admin)",
            (403, 404),
        ),
    ]
    for suffix, endpoint, method, code_, summary, problems in routes:
        endpoint.__name__ = f"{endpoint.__name__}_{slug}"
        router.add_api_route(
            f"/{list_name}{suffix}",
            endpoint,
            methods=[method],
            status_code=code_,
            summary=summary,
            response_model=None if endpoint is not history else HistoryPage,
            responses=problem_responses(*problems),
        )


@router.get("/snapshot", response_model=Snapshot)
async def snapshot(_: CurrentPrincipal, session: DbSession) -> Snapshot:
    """Every item of every list, inactive ones included, ordered as the list endpoints."""
    rows = await session.scalars(
        select(ListItem)
        .where(ListItem.list.in_(LIST_NAMES))
        .order_by(ListItem.list, ListItem.sort_order, ListItem.code)
    )
    lists: dict[str, list[dict[str, Any]]] = {name: [] for name in LIST_NAMES}
    for item in rows:
        lists[item.list].append(list_item_view(item))
    return Snapshot(lists=lists)


for _name in LIST_NAMES:
    _add_routes(_name)
