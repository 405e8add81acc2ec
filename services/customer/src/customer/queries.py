"""Read-side answers shared by the REST API and the salesperson UI, so both say the same."""

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from customer.models import Customer, CustomerHistory
from customer.schemas import OrderEligibility


def eligibility_of(customer: Customer) -> OrderEligibility:
    """The seed's rule: only a customer CS approved (and nobody stopped since) may order."""
    if customer.status == "active":
        return OrderEligibility(eligible=True, reason=None)
    return OrderEligibility(
        eligible=False, reason="inactive" if customer.status == "inactive" else "not_approved"
    )


async def history_of(session: AsyncSession, customer_id: uuid.UUID) -> Sequence[CustomerHistory]:
    """Every change of a customer, oldest first (the caller checks visibility)."""
    rows = await session.scalars(
        select(CustomerHistory)
        .where(CustomerHistory.customer_id == customer_id)
        .order_by(CustomerHistory.id)
    )
    return rows.all()
