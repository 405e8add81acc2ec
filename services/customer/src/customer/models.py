"""The customer aggregate's tables, plus the replica of the sales-force tree."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import new_metadata
from shared.messaging.tables import define_messaging_tables
from shared.replica import define_reference_replica


class Base(DeclarativeBase):
    metadata = new_metadata()


messaging = define_messaging_tables(Base.metadata)
ref_items = define_reference_replica(Base.metadata)


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    customer_code: Mapped[str | None] = mapped_column(Text, unique=True)
    status: Mapped[str] = mapped_column(Text, default="draft")
    version: Mapped[int] = mapped_column(Integer, default=1)

    full_name: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    misa_code: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    province_code: Mapped[str | None] = mapped_column(Text)
    district_code: Mapped[str | None] = mapped_column(Text)
    ward_code: Mapped[str | None] = mapped_column(Text)
    admin_scheme: Mapped[str] = mapped_column(Text, default="2025")
    company_name: Mapped[str | None] = mapped_column(Text)
    tax_code: Mapped[str | None] = mapped_column(Text)
    contact_name: Mapped[str | None] = mapped_column(Text)
    customer_type_code: Mapped[str | None] = mapped_column(Text)
    customer_group_code: Mapped[str | None] = mapped_column(Text)
    channel_code: Mapped[str | None] = mapped_column(Text)
    payment_term_code: Mapped[str | None] = mapped_column(Text)
    payment_method_code: Mapped[str | None] = mapped_column(Text)
    credit_days: Mapped[int | None] = mapped_column(Integer)
    sales_unit_code: Mapped[str | None] = mapped_column(Text)
    owner_employee_id: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    delivery_addresses: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    invoice_profiles: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)

    #: A change to governed fields of an active customer, waiting for CS:
    #: {"fields": {...}, "requested_by", "requested_at", "version"}. The active values
    #: keep serving readers and events until it is approved.
    pending_change: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    #: Accent-folded name, company, phone, email, tax code and code, for `q` search.
    search_text: Mapped[str] = mapped_column(Text(collation="C"), default="")

    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    submitted_by: Mapped[str | None] = mapped_column(Text)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rejection_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_customers_created", "created_at", "id"),
        Index(
            "ix_customers_search_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),
        Index("ix_customers_owner", "owner_employee_id"),
        Index("ix_customers_sales_unit", "sales_unit_code"),
        Index("ix_customers_status", "status"),
        # Search (migration 0005): name prefixes in index order, exact phones and tax codes.
        Index("ix_customers_search_prefix", "search_text", "id"),
        Index("ix_customers_phone", "phone"),
        Index("ix_customers_tax_code", "tax_code"),
    )


class CustomerHistory(Base):
    __tablename__ = "customer_history"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("customers.id"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    reason: Mapped[str | None] = mapped_column(Text)


from customer import attachment_models  # noqa: E402,F401
