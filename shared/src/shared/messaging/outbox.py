"""Recording events in the outbox, inside the caller's transaction (ARCHITECTURE.md rule 1)."""

from typing import Any

from sqlalchemy import Table, insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events.contracts import EventData, to_cloud_event
from shared.events.envelope import CloudEvent

NOTIFY_CHANNEL = "ims_outbox"


async def record_event(session: AsyncSession, outbox: Table, data: EventData) -> CloudEvent:
    """Add the event to the outbox; it is published only if the transaction commits."""
    event = to_cloud_event(data)
    await record_cloud_event(session, outbox, event, topic=data.TOPIC)
    return event


def outbox_row(event: CloudEvent, *, topic: str) -> dict[str, Any]:
    """The outbox columns of an event (also used by data migrations, which run sync)."""
    return {
        "event_id": event.id,
        "topic": topic,
        "key": event.subject,
        "event_type": event.type,
        "headers": [[k, v.decode()] for k, v in event.kafka_headers()],
        "payload": event.data,
    }


async def record_cloud_event(
    session: AsyncSession, outbox: Table, event: CloudEvent, *, topic: str
) -> None:
    await session.execute(insert(outbox).values(**outbox_row(event, topic=topic)))
    # NOTIFY is delivered only on commit, which is exactly when the relay should wake.
    await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})
