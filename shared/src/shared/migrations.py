"""Alembic per service: each service ships `<package>/migrations` and runs them with
`python -m <service> migrate` (the local stack does so at start-up)."""

import asyncio
from importlib import resources

from alembic import command, context, op
from alembic.config import Config
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Text,
    UniqueConstraint,
    pool,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def alembic_config(package: str, database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files(package) / "migrations"))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade_to_head(package: str, database_url: str) -> None:
    command.upgrade(alembic_config(package, database_url), "head")


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's `migrations/env.py` (online, async engine)."""
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is not configured"

    def do_run(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as conn:
            await conn.run_sync(do_run)
        await engine.dispose()

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(run_async())


def create_messaging_tables_v1() -> None:
    """The outbox and inbox tables, for a service's first migration.

    Frozen: a later change to these tables is a new function used by a new migration,
    so that replaying old migrations always builds the same schema.
    """
    op.create_table(
        "outbox",
        Column("id", BigInteger(), autoincrement=True, nullable=False),
        Column("event_id", UUID(), nullable=False),
        Column("topic", Text(), nullable=False),
        Column("key", Text(), nullable=False),
        Column("event_type", Text(), nullable=False),
        Column("headers", JSONB(), nullable=False),
        Column("payload", JSONB(), nullable=False),
        Column("created_at", DateTime(timezone=True), server_default=text("now()"), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Column("attempts", Integer(), server_default=text("0"), nullable=False),
        Column("last_error", Text(), nullable=True),
        PrimaryKeyConstraint("id", name="pk_outbox"),
        UniqueConstraint("event_id", name="uq_outbox_event_id"),
    )
    op.create_index(
        "ix_outbox_unpublished", "outbox", ["id"], postgresql_where=text("published_at IS NULL")
    )
    op.create_table(
        "inbox",
        Column("consumer", Text(), nullable=False),
        Column("event_id", UUID(), nullable=False),
        Column("event_type", Text(), nullable=False),
        Column("topic", Text(), nullable=False),
        Column("partition", Integer(), nullable=False),
        Column("offset", BigInteger(), nullable=False),
        Column(
            "processed_at", DateTime(timezone=True), server_default=text("now()"), nullable=False
        ),
        PrimaryKeyConstraint("consumer", "event_id", name="pk_inbox"),
    )


def drop_messaging_tables_v1() -> None:
    op.drop_table("inbox")
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
    op.drop_table("outbox")
