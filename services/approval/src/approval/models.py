"""Reviews and the customer-code counter."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Index, Integer, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import new_metadata
from shared.messaging.tables import define_messaging_tables
from shared.replica import define_reference_replica


class Base(DeclarativeBase):
    metadata = new_metadata()


messaging = define_messaging_tables(Base.metadata)
#: Reference lists (sales units, employees, …) for showing names in reviews.
ref_items = define_reference_replica(Base.metadata)


class Review(Base):
    __tablename__ = "reviews"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    customer_version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(Text)  # new | change
    status: Mapped[str] = mapped_column(
        Text, default="pending"
    )  # pending|approved|rejected|superseded
    submitted_by: Mapped[str] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    customer: Mapped[dict[str, Any]] = mapped_column(JSONB)
    decided_by: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)
    customer_code: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        # One review per submitted version: a redelivered submission cannot make a second.
        Index("uq_reviews_customer_version", "customer_id", "customer_version", unique=True),
        # At most one pending review per customer.
        Index(
            "uq_reviews_one_pending",
            "customer_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_reviews_status_created", "status", "created_at", "id"),
    )


class CustomerCode(Base):
    """Every code ever assigned: unique for ever, never reused."""

    __tablename__ = "customer_codes"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    review_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    assigned_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class CodeCounter(Base):
    """The next number per prefix, taken under a row lock inside the approval transaction."""

    __tablename__ = "code_counters"

    prefix: Mapped[str] = mapped_column(Text, primary_key=True)
    last_value: Mapped[int] = mapped_column(BigInteger, default=0)
