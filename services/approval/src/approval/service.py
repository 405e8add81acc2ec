"""Reviews: created from submissions, decided by CS, announced through the outbox."""

import uuid
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from approval.codes import code_for_customer
from approval.models import Review, messaging
from approval.settings import ApprovalSettings
from shared.auth.principal import Principal
from shared.errors import conflict, forbidden, not_found
from shared.events.contracts import (
    ApprovalCustomerRejectedV1,
    CustomerApprovedV1,
    CustomerSubmittedV1,
)
from shared.messaging.outbox import record_event


def now() -> datetime:
    return datetime.now(UTC)


class ReviewService:
    def __init__(self, session: AsyncSession, settings: ApprovalSettings) -> None:
        self.session = session
        self.settings = settings

    async def on_submitted(self, data: CustomerSubmittedV1) -> Review | None:
        """A review per submitted version; a newer submission supersedes the pending one."""
        existing = await self.session.scalar(
            select(Review).where(
                Review.customer_id == data.customer_id, Review.customer_version >= data.version
            )
        )
        if existing is not None:
            return None  # this version (or a newer one) is already under review
        await self.session.execute(
            update(Review)
            .where(Review.customer_id == data.customer_id, Review.status == "pending")
            .values(status="superseded", decided_at=now())
        )
        review = Review(
            id=uuid.uuid4(),
            customer_id=data.customer_id,
            customer_version=data.version,
            kind=data.review_kind,
            status="pending",
            submitted_by=data.submitted_by,
            submitted_at=data.submitted_at,
            customer=data.customer,
        )
        self.session.add(review)
        await self.session.flush()
        return review

    async def _lock_for_decision(self, principal: Principal, review_id: uuid.UUID) -> Review:
        review = (
            await self.session.scalars(
                select(Review).where(Review.id == review_id).with_for_update()
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

    async def reject(self, principal: Principal, review_id: uuid.UUID, *, reason: str) -> Review:
        review = await self._lock_for_decision(principal, review_id)
        review.status = "rejected"
        review.decided_by = principal.employee_id
        review.decided_at = now()
        review.reason = reason
        await record_event(
            self.session,
            messaging.outbox,
            ApprovalCustomerRejectedV1(
                review_id=review.id,
                customer_id=review.customer_id,
                customer_version=review.customer_version,
                reason=reason,
                rejected_by=principal.employee_id,
                rejected_at=review.decided_at,
            ),
        )
        return review
