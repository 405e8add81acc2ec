"""The customer service's reference replica, filled the way production fills it: by
applying reference's ItemChanged events (built from reference's seed) through the handler."""

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from customer.handlers import HANDLERS
from reference.seeding import item_view, list_item_values, list_seed
from shared.events.contracts import ReferenceItemChangedV1, to_cloud_event


@pytest.fixture(scope="session")
async def customer_replica(service_databases: dict[str, str]) -> None:
    engine = create_async_engine(service_databases["customer"])
    async with AsyncSession(engine) as session, session.begin():
        for list_name, rows in list_seed().items():
            for row in rows:
                values = list_item_values(list_name, row)
                event = to_cloud_event(
                    ReferenceItemChangedV1(list=list_name, code=row["code"], item=item_view(values))
                )
                await HANDLERS[ReferenceItemChangedV1.TYPE](session, event)
    await engine.dispose()


@pytest.fixture(autouse=True)
def _replica(customer_replica: None) -> None:
    """Every customer test runs with the replica in place."""
