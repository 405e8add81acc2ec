"""REST endpoints of CONTRACT.md §5."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import and_, or_, select

from approval.models import Review
from approval.schemas import RejectIn, ReviewOut, ReviewPage
from approval.service import ReviewService
from shared.auth.dependencies import require_roles
from shared.auth.principal import Principal
from shared.errors import not_found
from shared.pagination import MAX_LIMIT, decode_cursor, page_of
from shared.web import DbSession

router = APIRouter(prefix="/api/v1/reviews", tags=["reviews"])

Reader = Annotated[Principal, Depends(require_roles("cs"))]
Decider = Annotated[Principal, Depends(require_roles("cs"))]


def out(review: Review) -> ReviewOut:
    return ReviewOut.model_validate(review, from_attributes=True)


@router.get("", response_model=ReviewPage)
async def list_reviews(
    _: Reader,
    session: DbSession,
    status: Literal["pending", "approved", "rejected", "superseded"] | None = None,
    customer_id: uuid.UUID | None = None,
    kind: Literal["new", "change"] | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: str | None = None,
) -> ReviewPage:
    stmt = select(Review)
    if status:
        stmt = stmt.where(Review.status == status)
    if customer_id:
        stmt = stmt.where(Review.customer_id == customer_id)
    if kind:
        stmt = stmt.where(Review.kind == kind)
    if cursor:  # oldest first: the queue is worked in arrival order
        at, last_id = decode_cursor(cursor)
        stmt = stmt.where(
            or_(Review.created_at > at, and_(Review.created_at == at, Review.id > last_id))
        )
    rows = list(
        (await session.scalars(stmt.order_by(Review.created_at, Review.id).limit(limit + 1))).all()
    )
    items, next_cursor = page_of(rows, limit, at="created_at")
    return ReviewPage(items=[out(r) for r in items], next_cursor=next_cursor)


@router.get("/{review_id}", response_model=ReviewOut)
async def get_review(review_id: uuid.UUID, _: Reader, session: DbSession) -> ReviewOut:
    review = await session.get(Review, review_id)
    if review is None:
        raise not_found("review")
    return out(review)


@router.post("/{review_id}/approve", response_model=ReviewOut)
async def approve_review(
    review_id: uuid.UUID, principal: Decider, session: DbSession, request: Request
) -> ReviewOut:
    async with session.begin():
        review = await ReviewService(session, request.app.state.runtime.settings).approve(
            principal, review_id
        )
    return out(review)


@router.post("/{review_id}/reject", response_model=ReviewOut)
async def reject_review(
    review_id: uuid.UUID, body: RejectIn, principal: Decider, session: DbSession, request: Request
) -> ReviewOut:
    reason = f"[{body.reason_code}] {body.reason}" if body.reason_code else body.reason
    async with session.begin():
        review = await ReviewService(session, request.app.state.runtime.settings).reject(
            principal, review_id, reason=reason
        )
    return out(review)
