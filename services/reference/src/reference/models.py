"""Administrative units (both schemes) and the business lists."""

from typing import Any

from shared.db import new_metadata
from shared.messaging.tables import define_messaging_tables
from sqlalchemy import Boolean, Index, Integer, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


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


class District(Base):
    """Legacy scheme only: the 2025 structure has no district level."""

    __tablename__ = "districts"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    province_code: Mapped[str] = mapped_column(Text, index=True)
    division_type: Mapped[str] = mapped_column(Text)
    codename: Mapped[str] = mapped_column(Text)


class Ward(Base):
    __tablename__ = "wards"

    scheme: Mapped[str] = mapped_column(Text, primary_key=True)
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    province_code: Mapped[str] = mapped_column(Text)
    district_code: Mapped[str | None] = mapped_column(Text, index=True)
    division_type: Mapped[str] = mapped_column(Text)
    codename: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_wards_scheme_province", "scheme", "province_code"),)


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
