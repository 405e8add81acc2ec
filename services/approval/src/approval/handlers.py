"""What the approval service does with customer and reference events."""

from sqlalchemy.ext.asyncio import AsyncSession

from approval.models import ref_items
from approval.replica import apply_snapshot, apply_status
from approval.service import ReviewService
from approval.settings import ApprovalSettings
from shared.events.contracts import (
    CustomerActivatedV1,
    CustomerDeactivatedV1,
    CustomerReactivatedV1,
    CustomerRejectedV1,
    CustomerSubmittedV1,
    CustomerUpdatedV1,
    ReferenceItemChangedV1,
    parse_data,
)
from shared.events.envelope import CloudEvent
from shared.logging import get_logger
from shared.messaging.consumer import Handler
from shared.replica import reference_replica_handler

log = get_logger(__name__)


async def on_customer_activated(session: AsyncSession, event: CloudEvent) -> None:
    data = parse_data(event, CustomerActivatedV1)
    await apply_snapshot(session, data.customer_id, data.version, data.customer, status="active")


async def on_customer_updated(session: AsyncSession, event: CloudEvent) -> None:
    # Active customers, and inactive ones (a MISA code linked): the snapshot says which.
    data = parse_data(event, CustomerUpdatedV1)
    await apply_snapshot(session, data.customer_id, data.version, data.customer)


async def on_customer_deactivated(session: AsyncSession, event: CloudEvent) -> None:
    data = parse_data(event, CustomerDeactivatedV1)
    await apply_snapshot(session, data.customer_id, data.version, data.customer, status="inactive")


async def on_customer_reactivated(session: AsyncSession, event: CloudEvent) -> None:
    data = parse_data(event, CustomerReactivatedV1)
    await apply_snapshot(session, data.customer_id, data.version, data.customer, status="active")


async def on_customer_rejected(session: AsyncSession, event: CloudEvent) -> None:
    data = parse_data(event, CustomerRejectedV1)
    await apply_status(session, data.customer_id, data.version, "rejected")


def build_handlers(settings: ApprovalSettings) -> dict[str, Handler]:
    async def on_customer_submitted(session: AsyncSession, event: CloudEvent) -> None:
        data = parse_data(event, CustomerSubmittedV1)
        review = await ReviewService(session, settings).on_submitted(data)
        if review is not None:
            # Counts only: candidates' names, phones and tax codes stay out of logs.
            log.info(
                "review_created",
                review_id=str(review.id),
                customer_id=str(data.customer_id),
                kind=review.kind,
                duplicates=review.duplicates,
            )

    return {
        CustomerSubmittedV1.TYPE: on_customer_submitted,
        CustomerActivatedV1.TYPE: on_customer_activated,
        CustomerUpdatedV1.TYPE: on_customer_updated,
        CustomerDeactivatedV1.TYPE: on_customer_deactivated,
        CustomerReactivatedV1.TYPE: on_customer_reactivated,
        CustomerRejectedV1.TYPE: on_customer_rejected,
        ReferenceItemChangedV1.TYPE: reference_replica_handler(ref_items),
    }
