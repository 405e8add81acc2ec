"""One link per customer between IMS and its MISA account object."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Index, Integer, Text, func, text
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
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("ix_misa_links_due", "next_attempt_at", postgresql_where=text("state = 'pending'")),
        Index("ix_misa_links_state_created", "state", "created_at", "customer_id"),
    )
