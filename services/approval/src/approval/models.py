"""Reviews and the customer-code counter."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Index, Integer, Text, func, text
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
    #: One of settings.reject_reasons; `reason` then holds only the free text.
    reason_code: Mapped[str | None] = mapped_column(Text)
    #: A change review's {field: {old, new}}, as CustomerSubmitted carried it.
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    #: Candidates found when the review was created (approval.duplicates), best first.
    duplicates: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )
    # Denormalised from the snapshot for the queue's filters and its list view.
    has_duplicates: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    full_name: Mapped[str] = mapped_column(Text, default="", server_default="")
    sales_unit: Mapped[str | None] = mapped_column(Text)
    #: Folded name, company, code, phone and tax code: what `q` matches (approval.queries).
    search_text: Mapped[str] = mapped_column(Text, default="", server_default="")

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
        # The queue: a status, oldest first (and the pending count).
        Index("ix_reviews_status_created", "status", "created_at", "id"),
        Index("ix_reviews_unit_status_created", "sales_unit", "status", "created_at", "id"),
        Index("ix_reviews_submitter_status_created", "submitted_by", "status", "created_at", "id"),
        Index(
            "ix_reviews_pending_duplicates",
            "created_at",
            "id",
            postgresql_where=text("status = 'pending' AND has_duplicates"),
        ),
        Index(
            "ix_reviews_search_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),
    )


class CustomerReplica(Base):
    """Customers as the customer service announces them (ims.customer.events.v1).

    Approval never calls the customer service: duplicate candidates come from here.
    `status`: pending (a review is open), active, inactive, rejected. Rows only move
    forward in `version` (approval.replica).
    """

    __tablename__ = "customers"

    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(Text)
    customer_code: Mapped[str | None] = mapped_column(Text)
    full_name: Mapped[str] = mapped_column(Text, default="")
    company_name: Mapped[str | None] = mapped_column(Text)
    #: Compact: digits (and letters) only, '0314409058-002' → '0314409058002'.
    tax_code: Mapped[str | None] = mapped_column(Text)
    #: E.164, as the snapshot has it.
    phone: Mapped[str | None] = mapped_column(Text)
    #: Lower case.
    email: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    province_code: Mapped[str | None] = mapped_column(Text)
    #: approval.matchkeys.name_key / address_key of the name and the street line.
    match_name: Mapped[str] = mapped_column(Text, default="")
    match_address: Mapped[str] = mapped_column(Text, default="")
    #: The 2025 province (a legacy address's successor), which fuzzy matches stay within.
    match_province: Mapped[str | None] = mapped_column(Text)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        # Exact matches, each an index lookup; rejected customers are never candidates.
        Index("ix_customers_tax_code", "tax_code", postgresql_where=text("tax_code IS NOT NULL")),
        Index("ix_customers_phone", "phone", postgresql_where=text("phone IS NOT NULL")),
        Index("ix_customers_email", "email", postgresql_where=text("email IS NOT NULL")),
        # Fuzzy names: `match_province = :p AND match_name % :key` is one scan of this
        # index (btree_gin for the province), reading only that province's similar names.
        Index(
            "ix_customers_province_match_name",
            "match_province",
            "match_name",
            postgresql_using="gin",
            postgresql_ops={"match_name": "gin_trgm_ops"},
        ),
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
