"""Reading reviews: the CS queue, one review, a customer's history. Used by the REST API
and the CS web UI alike, so both show the same queue.

The queue is worked oldest first; every filter is a column of `reviews` (denormalised
from the snapshot when the review is created) with an index that starts with it and
ends with (created_at, id), so a page is a range scan however long the queue.
"""

import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from approval.models import Review
from shared.errors import FieldError, ProblemError
from shared.pagination import MAX_LIMIT, decode_cursor, page_of
from shared.text import fold

STATUSES = ("pending", "approved", "rejected", "superseded")
KINDS = ("new", "change")
#: Shorter words have no trigram: they must start a word of the text.
MIN_INDEXED_WORD = 3


@dataclass(frozen=True)
class ReviewFilters:
    status: str | None = "pending"  # pending|approved|rejected|superseded|None (all)
    kind: str | None = None  # new|change
    customer_id: uuid.UUID | None = None
    q: str | None = None  # accent-insensitive over customer name, company, code, phone, tax code
    sales_unit: str | None = None
    submitted_by: str | None = None
    has_duplicates: bool | None = None


def _invalid(field: str, message: str, code: str) -> ProblemError:
    return ProblemError(
        422, "Invalid request", None, "validation-error", [FieldError(field, message, code)]
    )


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def text_condition(q: str | None) -> ColumnElement[bool] | None:
    """Every word of `q`, folded, somewhere in the review's search text ('hai yen' finds
    'Hải Yến'; '0912 345 678' finds '+84912345678', whose local form is in the text)."""
    words = dict.fromkeys(fold(q).split())
    if not words:
        return None
    text = Review.search_text
    return and_(
        *(
            text.like(f"%{_like_escape(w)}%")
            if len(w) >= MIN_INDEXED_WORD
            else or_(text.like(f"{_like_escape(w)}%"), text.like(f"% {_like_escape(w)}%"))
            for w in words
        )
    )


def filter_conditions(filters: ReviewFilters) -> list[ColumnElement[bool]]:
    """The WHERE of a queue query; a 422 problem naming the field for a bad value."""
    if filters.status is not None and filters.status not in STATUSES:
        raise _invalid("status", f"must be one of: {', '.join(STATUSES)}", "enum")
    if filters.kind is not None and filters.kind not in KINDS:
        raise _invalid("kind", f"must be one of: {', '.join(KINDS)}", "enum")
    for name in ("q", "sales_unit", "submitted_by"):
        if "\x00" in (getattr(filters, name) or ""):
            # PostgreSQL text cannot hold U+0000 (HTTP refuses it earlier; forms may not).
            raise _invalid(name, "must not contain the NUL character", "nul")
    conditions: list[ColumnElement[bool]] = []
    if filters.status is not None:
        conditions.append(Review.status == filters.status)
    if filters.kind is not None:
        conditions.append(Review.kind == filters.kind)
    if filters.customer_id is not None:
        conditions.append(Review.customer_id == filters.customer_id)
    if filters.sales_unit:
        conditions.append(Review.sales_unit == filters.sales_unit)
    if filters.submitted_by:
        conditions.append(Review.submitted_by == filters.submitted_by)
    if filters.has_duplicates is not None:
        conditions.append(Review.has_duplicates.is_(filters.has_duplicates))
    matched = text_condition(filters.q)
    if matched is not None:
        conditions.append(matched)
    return conditions


async def list_reviews(
    session: AsyncSession, filters: ReviewFilters, *, limit: int, cursor: str | None
) -> tuple[list[Review], str | None]:
    """A page of the queue, oldest first, and the cursor of the next page (None at the
    end). `limit` is capped at shared.pagination.MAX_LIMIT; a cursor this function did
    not issue is the shared invalid-cursor problem."""
    if limit < 1:
        raise ValueError("limit must be positive")
    limit = min(limit, MAX_LIMIT)
    stmt = select(Review).where(*filter_conditions(filters))
    if cursor:
        at, last_id = decode_cursor(cursor)
        stmt = stmt.where(
            tuple_(Review.created_at, Review.id) > tuple_(literal(at), literal(last_id))
        )
    rows = list(
        (await session.scalars(stmt.order_by(Review.created_at, Review.id).limit(limit + 1))).all()
    )
    return page_of(rows, limit, at="created_at")


async def get_review(session: AsyncSession, review_id: uuid.UUID) -> Review | None:
    return await session.get(Review, review_id)


async def reviews_of_customer(session: AsyncSession, customer_id: uuid.UUID) -> list[Review]:
    """Every review of the customer, newest first: its approval history."""
    stmt = (
        select(Review)
        .where(Review.customer_id == customer_id)
        .order_by(Review.customer_version.desc(), Review.created_at.desc(), Review.id.desc())
    )
    return list((await session.scalars(stmt)).all())


async def pending_count(session: AsyncSession) -> int:
    count = await session.scalar(
        select(func.count()).select_from(Review).where(Review.status == "pending")
    )
    return int(count or 0)
