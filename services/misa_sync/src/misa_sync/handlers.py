"""Customer events that MISA must follow."""

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from misa_sync.misa_client import account_object_id_for
from misa_sync.models import MisaLink
from shared.events.contracts import CustomerActivatedV1, parse_data
from shared.events.envelope import CloudEvent
from shared.messaging.consumer import Handler


async def on_customer_activated(session: AsyncSession, event: CloudEvent) -> None:
    data = parse_data(event, CustomerActivatedV1)
    link = (
        await session.scalars(
            select(MisaLink).where(MisaLink.customer_id == data.customer_id).with_for_update()
        )
    ).one_or_none()
    if link is None:
        session.add(
            MisaLink(
                customer_id=data.customer_id,
                customer_code=data.customer_code,
                customer_version=data.version,
                customer=data.customer,
                account_object_id=account_object_id_for(str(data.customer_id)),
                state="pending",
                attempts=0,
                next_attempt_at=datetime.now(UTC),
            )
        )
        return
    if link.customer_version >= data.version:
        return  # stale or repeated: MISA already has this version or a newer one
    link.customer_version = data.version
    link.customer = data.customer
    link.customer_code = data.customer_code
    link.state = "pending"
    link.attempts = 0
    link.next_attempt_at = datetime.now(UTC)
    link.updated_at = datetime.now(UTC)


HANDLERS: dict[str, Handler] = {CustomerActivatedV1.TYPE: on_customer_activated}
