"""REST endpoints of CONTRACT.md §5."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from approval import queries
from approval.models import Review
from approval.queries import ReviewFilters
from approval.schemas import RejectIn, RejectReasonOut, ReviewOut, ReviewPage
from approval.service import ReviewService, reject_input_problem
from approval.settings import ApprovalSettings
from shared.auth.dependencies import require_roles
from shared.auth.principal import Principal
from shared.errors import API_PROBLEMS, not_found, problem_responses, wants_vietnamese
from shared.pagination import MAX_LIMIT
from shared.web import DbSession

# Every route is CS-only: 403 for the other roles.
router = APIRouter(
    prefix="/api/v1/reviews",
    tags=["reviews"],
    responses=problem_responses(*API_PROBLEMS, 403),
)

Reader = Annotated[Principal, Depends(require_roles("cs"))]
Decider = Annotated[Principal, Depends(require_roles("cs"))]


def out(review: Review) -> ReviewOut:
    return ReviewOut.model_validate(review, from_attributes=True)


def settings_of(request: Request) -> ApprovalSettings:
    settings = request.app.state.runtime.settings
    assert isinstance(settings, ApprovalSettings)
    return settings


@router.get("", response_model=ReviewPage)
async def list_reviews(
    _: Reader,
    session: DbSession,
    status: Literal["pending", "approved", "rejected", "superseded"] | None = None,
    customer_id: uuid.UUID | None = None,
    kind: Literal["new", "change"] | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    sales_unit: Annotated[str | None, Query(max_length=40)] = None,
    submitted_by: Annotated[str | None, Query(max_length=100)] = None,
    has_duplicates: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> ReviewPage:
    """The queue, oldest first; without `status`, reviews of every status."""
    filters = ReviewFilters(
        status=status,
        kind=kind,
        customer_id=customer_id,
        q=q,
        sales_unit=sales_unit,
        submitted_by=submitted_by,
        has_duplicates=has_duplicates,
    )
    items, next_cursor = await queries.list_reviews(session, filters, limit=limit, cursor=cursor)
    return ReviewPage(items=[out(r) for r in items], next_cursor=next_cursor)


@router.get("/reject-reasons", response_model=list[RejectReasonOut])
async def reject_reasons(_: Reader, request: Request) -> list[RejectReasonOut]:
    """The codes `reject` accepts as `reason_code`, in the order CS sees them."""
    vietnamese = wants_vietnamese(request)
    return [
        RejectReasonOut(
            code=code,
            label=reason.label(vietnamese=vietnamese),
            label_vi=reason.vi,
            label_en=reason.en,
        )
        for code, reason in settings_of(request).reject_reasons.items()
    ]


@router.get("/{review_id}", response_model=ReviewOut, responses=problem_responses(404))
async def get_review(review_id: uuid.UUID, _: Reader, session: DbSession) -> ReviewOut:
    review = await queries.get_review(session, review_id)
    if review is None:
        raise not_found("review")
    return out(review)


@router.post(
    "/{review_id}/approve", response_model=ReviewOut, responses=problem_responses(404, 409)
)
async def approve_review(
    review_id: uuid.UUID, principal: Decider, session: DbSession, request: Request
) -> ReviewOut:
    async with session.begin():
        review = await ReviewService(session, settings_of(request)).approve(principal, review_id)
    return out(review)


@router.post("/{review_id}/reject", response_model=ReviewOut, responses=problem_responses(404, 409))
async def reject_review(
    review_id: uuid.UUID, body: RejectIn, principal: Decider, session: DbSession, request: Request
) -> ReviewOut:
    settings = settings_of(request)
    reason_code = body.reason_code or None
    problem = reject_input_problem(
        settings, body.reason, reason_code, vietnamese=wants_vietnamese(request)
    )
    if problem is not None:
        raise problem
    async with session.begin():
        review = await ReviewService(session, settings).reject(
            principal, review_id, reason=body.reason, reason_code=reason_code
        )
    return out(review)
