"""One link per customer between IMS and its MISA account object."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import new_metadata
from shared.messaging.tables import define_messaging_tables


class Base(DeclarativeBase):
    metadata = new_metadata()


messaging = define_messaging_tables(Base.metadata)


class MisaLink(Base):
    __tablename__ = "misa_links"

    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    customer_code: Mapped[str | None] = mapped_column(Text)
    #: The customer version the link must bring MISA up to, and its snapshot.
    customer_version: Mapped[int] = mapped_column(Integer)
    customer: Mapped[dict[str, Any]] = mapped_column(JSONB)
    account_object_id: Mapped[str] = mapped_column(Text, unique=True)
    misa_code: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(Text, default="pending")  # pending | synced | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    #: MISA's or our error code of the last failed attempt (safe to show and to log).
    last_error_code: Mapped[str | None] = mapped_column(Text)
    #: The account object MISA last accepted and the customer version it came from: the
    #: baseline for "did a mapped field change" and for reconciliation's "changed".
    pushed: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    pushed_version: Mapped[int | None] = mapped_column(Integer)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    #: The trace of the event that brought `customer_version`: the worker's push and the
    #: CustomerLinked it records continue it (shared.tracing.continuing).
    traceparent: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_misa_links_due", "next_attempt_at", postgresql_where=text("state = 'pending'")),
        Index("ix_misa_links_state_created", "state", "created_at", "customer_id"),
    )


class MisaAttempt(Base):
    """One call (or try) to bring a link's MISA object up to date. No customer data here."""

    __tablename__ = "misa_attempts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("misa_links.customer_id", ondelete="CASCADE")
    )
    customer_version: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[int] = mapped_column(Integer)
    #: synced | retry (transient, counted) | deferred (MISA unreachable or throttling,
    #: not counted) | failed (permanent or out of attempts) | error (our bug)
    outcome: Mapped[str] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_misa_attempts_customer", "customer_id", "id"),)


class MirrorObject(Base):
    """MISA's account objects as last read with get_dictionary (customers and others)."""

    __tablename__ = "misa_mirror"

    account_object_id: Mapped[str] = mapped_column(Text, primary_key=True)
    code: Mapped[str] = mapped_column(Text)
    #: Lookup keys: the code case-folded, the tax code without spaces, upper-cased.
    code_key: Mapped[str] = mapped_column(Text)
    tax_code_key: Mapped[str | None] = mapped_column(Text)
    is_customer: Mapped[bool] = mapped_column(Boolean)
    record: Mapped[dict[str, Any]] = mapped_column(JSONB)
    #: The full scan that last saw the object; a full scan drops the ones it did not see.
    scan_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    refreshed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_misa_mirror_code", "code_key", postgresql_where=text("is_customer")),
        Index("ix_misa_mirror_tax_code", "tax_code_key", postgresql_where=text("is_customer")),
    )


class MirrorState(Base):
    """One row: MISA's high-water mark (``LastSyncTime``) and when the mirror was read."""

    __tablename__ = "misa_mirror_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_sync_time: Mapped[str | None] = mapped_column(Text)
    refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    full_refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MisaReconciliation(Base):
    """One reconciliation run: when, how it went, and the drift it found.

    ``items`` holds the drift as ids, codes and field names only (no customer data),
    capped per kind (``truncated``); the counts are always complete.
    """

    __tablename__ = "misa_reconciliations"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[int] = mapped_column(Integer)
    #: schedule (the background job) | api (someone asked for a refresh)
    trigger: Mapped[str] = mapped_column(Text)
    #: How the mirror was read first: full | incremental.
    refresh: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(Text)  # ok | failed
    #: MISA's or our error code when the run failed (MISA could not be read).
    error_code: Mapped[str | None] = mapped_column(Text)
    missing: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    extra: Mapped[int] = mapped_column(Integer, default=0)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The mirror's state once the run had read MISA.
    mirror_refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    mirror_full_refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_misa_reconciliations_started", "started_at", "id"),
        Index("ix_misa_reconciliations_outcome_started", "outcome", "started_at"),
    )
