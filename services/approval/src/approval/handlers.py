"""What the approval service does with customer events."""

from sqlalchemy.ext.asyncio import AsyncSession

from approval.models import ref_items
from approval.service import ReviewService
from approval.settings import ApprovalSettings
from shared.events.contracts import CustomerSubmittedV1, ReferenceItemChangedV1, parse_data
from shared.events.envelope import CloudEvent
from shared.logging import get_logger
from shared.messaging.consumer import Handler
from shared.replica import reference_replica_handler

log = get_logger(__name__)


def build_handlers(settings: ApprovalSettings) -> dict[str, Handler]:
    async def on_customer_submitted(session: AsyncSession, event: CloudEvent) -> None:
        data = parse_data(event, CustomerSubmittedV1)
        review = await ReviewService(session, settings).on_submitted(data)
        if review is not None:
            log.info(
                "review_created",
                review_id=str(review.id),
                customer_id=str(data.customer_id),
                kind=review.kind,
            )

    return {
        CustomerSubmittedV1.TYPE: on_customer_submitted,
        ReferenceItemChangedV1.TYPE: reference_replica_handler(ref_items),
    }
