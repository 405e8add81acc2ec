"""At start-up, announce every business list item once more.

Other services keep replicas of these lists from `ims.reference.events.v1`. A new replica
(a new database, a broker that lost its topics, expired retention) must not depend on old
events still being there, so each start of reference publishes the current state of
every list; consumers apply it as an idempotent upsert.
"""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reference.editing import lock_lists
from reference.models import ListItem, messaging
from reference.seeding import list_item_view
from shared.events.contracts import ReferenceItemChangedV1
from shared.logging import get_logger
from shared.messaging.outbox import record_event

log = get_logger(__name__)


async def announce_snapshot(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session, session.begin():
        # Under the edit lock: an edit committing between our read and our outbox rows
        # would otherwise be overtaken on the topic by the older state we read.
        await lock_lists(session)
        items = (
            await session.scalars(select(ListItem).order_by(ListItem.list, ListItem.code))
        ).all()
        for i in items:
            await record_event(
                session,
                messaging.outbox,
                ReferenceItemChangedV1(list=i.list, code=i.code, item=list_item_view(i)),
            )
    log.info("reference_snapshot_announced", items=len(items))
    return len(items)
