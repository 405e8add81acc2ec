"""What the customer service does with other services' events."""

from sqlalchemy.ext.asyncio import AsyncSession

from customer.models import ref_items
from customer.service import CustomerService
from shared.events.contracts import (
    ApprovalCustomerRejectedV1,
    CustomerApprovedV1,
    MisaCustomerLinkedV1,
    ReferenceItemChangedV1,
    parse_data,
)
from shared.events.envelope import CloudEvent
from shared.logging import get_logger
from shared.messaging.consumer import Handler
from shared.replica import reference_replica_handler

log = get_logger(__name__)


async def on_customer_approved(session: AsyncSession, event: CloudEvent) -> None:
    data = parse_data(event, CustomerApprovedV1)
    applied = await CustomerService(session).on_approved(
        customer_id=data.customer_id,
        customer_version=data.customer_version,
        customer_code=data.customer_code,
        approved_by=data.approved_by,
        approved_at=data.approved_at,
    )
    if not applied:
        log.info("approval_ignored_stale", customer_id=str(data.customer_id))


async def on_customer_rejected(session: AsyncSession, event: CloudEvent) -> None:
    data = parse_data(event, ApprovalCustomerRejectedV1)
    applied = await CustomerService(session).on_rejected(
        customer_id=data.customer_id,
        customer_version=data.customer_version,
        reason=data.reason,
        rejected_by=data.rejected_by,
        rejected_at=data.rejected_at,
    )
    if not applied:
        log.info("rejection_ignored_stale", customer_id=str(data.customer_id))


async def on_misa_linked(session: AsyncSession, event: CloudEvent) -> None:
    data = parse_data(event, MisaCustomerLinkedV1)
    await CustomerService(session).on_misa_linked(
        customer_id=data.customer_id, misa_code=data.misa_code
    )


HANDLERS: dict[str, Handler] = {
    CustomerApprovedV1.TYPE: on_customer_approved,
    ApprovalCustomerRejectedV1.TYPE: on_customer_rejected,
    MisaCustomerLinkedV1.TYPE: on_misa_linked,
    ReferenceItemChangedV1.TYPE: reference_replica_handler(ref_items),
}
