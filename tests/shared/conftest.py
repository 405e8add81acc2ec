"""A database for the shared library's tests: outbox and inbox, plus a table handlers write."""

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Column, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.db import new_metadata
from shared.messaging.tables import MessagingTables, define_messaging_tables
from shared.replica import define_reference_replica
from tests.fixtures.infra import create_database

metadata: MetaData = new_metadata()
tables: MessagingTables = define_messaging_tables(metadata)
replica = define_reference_replica(metadata)
applied = Table(
    "applied",
    metadata,
    Column("event_id", UUID(as_uuid=True), primary_key=True),
    Column("note", Text),
)


@pytest.fixture(scope="session")
def shared_db_url(run_id: str) -> str:
    return create_database(f"ims_test_shared_{run_id}")


@pytest.fixture
async def engine(shared_db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(shared_db_url)
    async with eng.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
    try:
        yield eng
    finally:
        await eng.dispose()
