"""Administrative units (both schemes) and the business lists."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Index, Integer, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import new_metadata
from shared.messaging.tables import define_messaging_tables


class Base(DeclarativeBase):
    metadata = new_metadata()


messaging = define_messaging_tables(Base.metadata)


class Province(Base):
    __tablename__ = "provinces"

    scheme: Mapped[str] = mapped_column(Text, primary_key=True)  # "2025" | "legacy"
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    short_name: Mapped[str] = mapped_column(Text)
    name_ascii: Mapped[str] = mapped_column(Text)
    division_type: Mapped[str] = mapped_column(Text)
    codename: Mapped[str] = mapped_column(Text)
    phone_area_code: Mapped[str | None] = mapped_column(Text)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)


class District(Base):
    """Legacy scheme only: the 2025 structure has no district level."""

    __tablename__ = "districts"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    province_code: Mapped[str] = mapped_column(Text, index=True)
    division_type: Mapped[str] = mapped_column(Text)
    codename: Mapped[str] = mapped_column(Text)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)


class Ward(Base):
    __tablename__ = "wards"

    scheme: Mapped[str] = mapped_column(Text, primary_key=True)
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    province_code: Mapped[str] = mapped_column(Text)
    district_code: Mapped[str | None] = mapped_column(Text, index=True)
    division_type: Mapped[str] = mapped_column(Text)
    codename: Mapped[str] = mapped_column(Text)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)

    __table_args__ = (Index("ix_wards_scheme_province", "scheme", "province_code"),)


class WardConversion(Base):
    """Where a legacy ward went on 1 July 2025: one 2025 ward, or several (ambiguous)."""

    __tablename__ = "ward_conversions"

    legacy_ward_code: Mapped[str] = mapped_column(Text, primary_key=True)
    legacy_district_code: Mapped[str] = mapped_column(Text, index=True)
    legacy_province_code: Mapped[str] = mapped_column(Text, index=True)
    new_ward_codes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    new_province_code: Mapped[str] = mapped_column(Text)
    partly_merged: Mapped[bool] = mapped_column(Boolean)
    ambiguous: Mapped[bool] = mapped_column(Boolean)


class ListItem(Base):
    """An item of a business list (customer types, groups, channels, payment terms and
    methods, sales units, employees); list-specific attributes live in `attributes`."""

    __tablename__ = "list_items"

    list: Mapped[str] = mapped_column(Text, primary_key=True)
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    #: +1 on every change; the ETag of the item for admins' optimistic concurrency.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class ListItemAudit(Base):
    """Every change to a list item: who, when, what (old → new)."""

    __tablename__ = "list_item_audit"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    list: Mapped[str] = mapped_column(Text)
    code: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(
        Text
    )  # created | updated | deactivated | reactivated | seeded
    actor: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB)

    __table_args__ = (Index("ix_list_item_audit_item", "list", "code", "id"),)
