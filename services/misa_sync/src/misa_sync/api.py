"""REST endpoints of CONTRACT.md §6."""

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import and_, or_, select

from misa_sync.models import MisaLink
from misa_sync.schemas import LinkState, MisaLinkOut, MisaLinkPage
from shared.auth.dependencies import require_roles
from shared.auth.principal import Principal
from shared.errors import not_found
from shared.pagination import MAX_LIMIT, decode_cursor, page_of
from shared.web import DbSession

router = APIRouter(prefix="/api/v1/misa-links", tags=["misa-links"])

Reader = Annotated[Principal, Depends(require_roles("accountant", "cs"))]
Retrier = Annotated[Principal, Depends(require_roles("accountant"))]


def out(link: MisaLink) -> MisaLinkOut:
    return MisaLinkOut.model_validate(link, from_attributes=True)


@router.get("", response_model=MisaLinkPage)
async def list_links(
    _: Reader,
    session: DbSession,
    state: LinkState | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: str | None = None,
) -> MisaLinkPage:
    stmt = select(MisaLink)
    if state:
        stmt = stmt.where(MisaLink.state == state)
    if cursor:
        at, last_id = decode_cursor(cursor)
        stmt = stmt.where(
            or_(
                MisaLink.created_at > at,
                and_(MisaLink.created_at == at, MisaLink.customer_id > last_id),
            )
        )
    stmt = stmt.order_by(MisaLink.created_at, MisaLink.customer_id).limit(limit + 1)
    rows = list((await session.scalars(stmt)).all())
    items, next_cursor = page_of(rows, limit, at="created_at", key="customer_id")
    return MisaLinkPage(items=[out(link) for link in items], next_cursor=next_cursor)


@router.get("/{customer_id}", response_model=MisaLinkOut)
async def get_link(customer_id: uuid.UUID, _: Reader, session: DbSession) -> MisaLinkOut:
    link = await session.get(MisaLink, customer_id)
    if link is None:
        raise not_found("MISA link")
    return out(link)


@router.post("/{customer_id}/retry", response_model=MisaLinkOut)
async def retry_link(customer_id: uuid.UUID, _: Retrier, session: DbSession) -> MisaLinkOut:
    async with session.begin():
        link = await session.get(MisaLink, customer_id, with_for_update=True)
        if link is None:
            raise not_found("MISA link")
        if link.state != "synced":
            link.state = "pending"
            link.attempts = 0
            link.next_attempt_at = datetime.now(UTC)
            link.updated_at = datetime.now(UTC)
    return out(link)
