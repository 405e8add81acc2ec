"""Customer events that MISA must follow: each one records the desired state of a link.

The worker does the MISA calls (ADR 0006); a handler only keeps the newest snapshot per
customer. Events carry the customer ``version``: an older or repeated one changes
nothing. The row lock (FOR UPDATE) also waits for a worker pushing this customer, so a
newer snapshot is never overwritten by the outcome of an older push.
"""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from misa_sync.mapping import MappingOptions, customer_to_account_object
from misa_sync.misa_client import account_object_id_for
from misa_sync.models import MisaLink
from shared.events.contracts import (
    CustomerActivatedV1,
    CustomerDeactivatedV1,
    CustomerReactivatedV1,
    CustomerUpdatedV1,
    EventData,
    parse_data,
)
from shared.events.envelope import CloudEvent
from shared.messaging.consumer import Handler
from shared.tracing import current_traceparent

#: Customers in these states exist in MISA (inactive ones with ``inactive: true``).
_IN_MISA = frozenset({"active", "inactive"})


def _mapped(
    link: MisaLink, customer: dict[str, Any], options: MappingOptions
) -> dict[str, Any] | None:
    try:
        return customer_to_account_object(
            customer,
            account_object_id=link.account_object_id,
            misa_code=link.misa_code,
            options=options,
        )
    except ValueError:
        return None  # unmappable: the worker records why when it tries


async def record_snapshot(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID,
    version: int,
    customer: dict[str, Any],
    customer_code: str | None,
    options: MappingOptions,
) -> None:
    """Make ``customer`` (at ``version``) the state MISA must reach, if it is newer."""
    link = (
        await session.scalars(
            select(MisaLink).where(MisaLink.customer_id == customer_id).with_for_update()
        )
    ).one_or_none()
    at = datetime.now(UTC)
    code = customer_code or customer.get("customer_code")
    if link is None:
        if customer.get("status") not in _IN_MISA:
            return
        session.add(
            MisaLink(
                customer_id=customer_id,
                customer_code=code,
                customer_version=version,
                customer=customer,
                account_object_id=account_object_id_for(str(customer_id)),
                state="pending",
                attempts=0,
                next_attempt_at=at,
                traceparent=current_traceparent(),
            )
        )
        return
    if link.customer_version >= version:
        return  # stale or repeated: the link already targets this version or a newer one
    before = _mapped(link, link.customer, options)
    link.customer_version = version
    link.customer = customer
    link.customer_code = code or link.customer_code
    link.updated_at = at
    link.traceparent = current_traceparent()
    after = _mapped(link, customer, options)
    if link.state == "pending":
        return  # already due; keep its back-off so an outage is not hammered
    baseline = link.pushed if link.state == "synced" else before
    if after is not None and after == baseline:
        # Nothing MISA sees changed, e.g. our own MISA code coming back: no push, no loop.
        return
    link.state = "pending"
    link.attempts = 0
    link.next_attempt_at = at


def _handler(
    model: type[EventData], customer_code: Callable[[Any], str | None], options: MappingOptions
) -> Handler:
    async def handle(session: AsyncSession, event: CloudEvent) -> None:
        data: Any = parse_data(event, model)
        await record_snapshot(
            session,
            customer_id=data.customer_id,
            version=data.version,
            customer=data.customer,
            customer_code=customer_code(data),
            options=options,
        )

    return handle


def build_handlers(options: MappingOptions | None = None) -> dict[str, Handler]:
    options = options or MappingOptions()

    def from_snapshot(data: Any) -> str | None:
        code = data.customer.get("customer_code")
        return str(code) if code else None

    return {
        CustomerActivatedV1.TYPE: _handler(
            CustomerActivatedV1, lambda d: str(d.customer_code), options
        ),
        CustomerUpdatedV1.TYPE: _handler(CustomerUpdatedV1, from_snapshot, options),
        CustomerDeactivatedV1.TYPE: _handler(CustomerDeactivatedV1, from_snapshot, options),
        CustomerReactivatedV1.TYPE: _handler(CustomerReactivatedV1, from_snapshot, options),
    }


HANDLERS: dict[str, Handler] = build_handlers()
