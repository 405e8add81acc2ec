"""Reviews: created from submissions, decided by CS, announced through the outbox."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from approval.codes import code_for_customer
from approval.duplicates import find_duplicates
from approval.matchkeys import review_search_text
from approval.models import Review, messaging
from approval.replica import apply_snapshot, in_force
from approval.settings import ApprovalSettings
from shared.auth.principal import Principal
from shared.errors import FieldError, ProblemError, conflict, forbidden, not_found
from shared.events.contracts import (
    ApprovalCustomerRejectedV1,
    CustomerApprovedV1,
    CustomerSubmittedV1,
)
from shared.messaging.outbox import record_event

MAX_REASON_LENGTH = 2000


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class CreatedReview:
    """What a submission's new review is, for the log line (no customer values)."""

    id: uuid.UUID
    kind: str
    duplicates: int


# Built once: the consumer runs them for every submission.
_REVIEW_OF_VERSION = (
    select(Review.id)
    .where(
        Review.customer_id == bindparam("of_customer"),
        Review.customer_version >= bindparam("of_version"),
    )
    .limit(1)
)
_SUPERSEDE_PENDING = (
    update(Review)
    .where(Review.customer_id == bindparam("of_customer"), Review.status == "pending")
    .values(status="superseded", decided_at=bindparam("at"))
    .execution_options(synchronize_session=False)
)
#: clock_timestamp(), not now(): a consumer creates a fetch's reviews in one transaction,
#: and the queue lists them oldest first by created_at.
_INSERT_REVIEW = insert(cast(Table, Review.__table__)).values(created_at=func.clock_timestamp())


def reject_input_problem(
    settings: ApprovalSettings, reason: str, reason_code: str | None, *, vietnamese: bool
) -> ProblemError | None:
    """The 422 for a reject without a reason or with an unknown code; None when fine."""
    errors = []
    if not reason or len(reason) > MAX_REASON_LENGTH or "\x00" in reason:
        message = (
            f"Bắt buộc, tối đa {MAX_REASON_LENGTH} ký tự."
            if vietnamese
            else f"required, at most {MAX_REASON_LENGTH} characters"
        )
        errors.append(FieldError("reason", message, "invalid_reason"))
    if reason_code is not None and reason_code not in settings.reject_reasons:
        known = ", ".join(settings.reject_reasons)
        message = f"Phải là một trong: {known}." if vietnamese else f"must be one of: {known}"
        errors.append(FieldError("reason_code", message, "unknown_reason_code"))
    if not errors:
        return None
    title = "Dữ liệu không hợp lệ" if vietnamese else "Invalid request"
    return ProblemError(422, title, None, "validation-error", errors)


class ReviewService:
    def __init__(self, session: AsyncSession, settings: ApprovalSettings) -> None:
        self.session = session
        self.settings = settings

    async def on_submitted(self, data: CustomerSubmittedV1) -> CreatedReview | None:
        """A review per submitted version; a newer submission supersedes the pending one.

        The replica takes the customer as it now stands, and the review its duplicate
        candidates, in the same transaction as the review."""
        await apply_snapshot(
            self.session, data.customer_id, data.version, in_force(data.customer, data.changes)
        )
        of = {"of_customer": data.customer_id, "of_version": data.version}
        if await self.session.scalar(_REVIEW_OF_VERSION, of) is not None:
            return None  # this version (or a newer one) is already under review
        await self.session.execute(
            _SUPERSEDE_PENDING, {"of_customer": data.customer_id, "at": now()}
        )
        duplicates = [
            c.as_json()
            for c in await find_duplicates(self.session, data.customer_id, data.customer)
        ]
        sales_unit = data.customer.get("sales_unit_code")
        created = CreatedReview(id=uuid.uuid4(), kind=data.review_kind, duplicates=len(duplicates))
        # A Core insert, not the ORM's unit of work: a replay creates reviews by the
        # hundred thousand, and the flush cost more than the insert (ADR 0015).
        await self.session.execute(
            _INSERT_REVIEW,
            {
                "id": created.id,
                "customer_id": data.customer_id,
                "customer_version": data.version,
                "kind": data.review_kind,
                "status": "pending",
                "submitted_by": data.submitted_by,
                "submitted_at": data.submitted_at,
                "customer": data.customer,
                "changes": data.changes,
                "duplicates": duplicates,
                "has_duplicates": bool(duplicates),
                "full_name": str(data.customer.get("full_name") or ""),
                "sales_unit": str(sales_unit) if sales_unit else None,
                "search_text": review_search_text(data.customer),
            },
        )
        return created

    async def _lock_for_decision(self, principal: Principal, review_id: uuid.UUID) -> Review:
        review = (
            await self.session.scalars(
                select(Review)
                .where(Review.id == review_id)
                .with_for_update()
                # The row as it is once the lock is ours, not a copy this session read
                # earlier (a page that showed the review): a decision taken meanwhile counts.
                .execution_options(populate_existing=True)
            )
        ).one_or_none()
        if review is None:
            raise not_found("review")
        if review.status == "superseded":
            raise conflict("A newer submission replaced this review; decide the newer one.")
        if review.status != "pending":
            raise conflict(f"The review is already {review.status}.")
        if review.submitted_by == principal.employee_id:
            raise forbidden("Four-eyes rule: whoever submitted a customer may not decide on it.")
        return review

    async def approve(self, principal: Principal, review_id: uuid.UUID) -> Review:
        review = await self._lock_for_decision(principal, review_id)
        code = await code_for_customer(
            self.session,
            customer_id=review.customer_id,
            review_id=review.id,
            prefix=self.settings.code_prefix,
            digits=self.settings.code_digits,
        )
        review.status = "approved"
        review.decided_by = principal.employee_id
        review.decided_at = now()
        review.customer_code = code
        review.search_text = review_search_text(review.customer, code)  # findable by code
        await record_event(
            self.session,
            messaging.outbox,
            CustomerApprovedV1(
                review_id=review.id,
                customer_id=review.customer_id,
                customer_version=review.customer_version,
                customer_code=code,
                approved_by=principal.employee_id,
                approved_at=review.decided_at,
            ),
        )
        return review

    async def reject(
        self,
        principal: Principal,
        review_id: uuid.UUID,
        *,
        reason: str,
        reason_code: str | None = None,
    ) -> Review:
        """Reject with free text and, optionally, one of settings.reject_reasons ('' is
        no code, as a form sends it)."""
        reason = reason.strip()
        reason_code = (reason_code or "").strip() or None
        problem = reject_input_problem(self.settings, reason, reason_code, vietnamese=False)
        if problem is not None:
            raise problem
        review = await self._lock_for_decision(principal, review_id)
        review.status = "rejected"
        review.decided_by = principal.employee_id
        review.decided_at = now()
        review.reason = reason
        review.reason_code = reason_code
        # The customer service shows the event's reason to the salesperson as it is: the
        # code's Vietnamese label goes in front of the free text.
        told = (
            f"{self.settings.reject_reasons[reason_code].vi}: {reason}" if reason_code else reason
        )
        await record_event(
            self.session,
            messaging.outbox,
            ApprovalCustomerRejectedV1(
                review_id=review.id,
                customer_id=review.customer_id,
                customer_version=review.customer_version,
                reason=told,
                reason_code=reason_code,  # added, optional (CONTRACT.md §8: extend)
                rejected_by=principal.employee_id,
                rejected_at=review.decided_at,
            ),
        )
        return review
