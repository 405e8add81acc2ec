"""`ims bench customer`: customer search and write throughput at national scale (issue 4).

Against a real PostgreSQL, in one run and side by side so that ratios hold on a noisy
shared machine:

- load N realistic Vietnamese customers (default 1,000,000) with COPY, their
  `search_text` built by the service's own `customer.service.search_text`, then ANALYZE;
- search latency (p50/p95/p99) for name, phone, tax-code and customer-code queries through
  `customer.search.search_customers` on a real session, with the very SQL it sends run
  raw on asyncpg beside it (the ratio is the cost of the ORM and of building the query);
- create-draft and submit throughput and latency at a fixed concurrency through the real
  HTTP app in process (httpx over ASGI, tokens from a dev issuer key), beside the floor:
  a bare FastAPI + asyncpg endpoint doing one INSERT, on the same database and machine.

Figures are printed and appended, with the machine, to ``docs/benchmarks.md``. Targets
are checked here, never in timed tests.
"""

import asyncio
import json
import math
import os
import random
import re
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from ims_cli import bench_report
from ims_cli.bench_report import (
    Machine,
    Stats,
    machine_info,
    machine_line,
    markdown_table,
    summarize,
)
from ims_cli.paths import find_repo_root
from shared.text import fold

if TYPE_CHECKING:
    import asyncpg
    import httpx
    from sqlalchemy import ClauseElement
    from sqlalchemy.engine import Dialect
    from sqlalchemy.sql.compiler import SQLCompiler

    from customer.models import Customer

# ---- the generator ------------------------------------------------------------------------

#: Family names with their rough share of the population (Nguyễn is about 38%).
FAMILY_NAMES: tuple[tuple[str, float], ...] = (
    ("Nguyễn", 38.0),
    ("Trần", 11.0),
    ("Lê", 9.5),
    ("Phạm", 7.0),
    ("Hoàng", 3.0),
    ("Huỳnh", 2.1),
    ("Phan", 4.5),
    ("Vũ", 2.0),
    ("Võ", 1.9),
    ("Đặng", 2.1),
    ("Bùi", 2.0),
    ("Đỗ", 1.4),
    ("Hồ", 1.3),
    ("Ngô", 1.3),
    ("Dương", 1.0),
    ("Lý", 0.5),
    ("Đinh", 0.6),
    ("Trương", 0.6),
    ("Đoàn", 0.5),
    ("Lâm", 0.4),
    ("Mai", 0.4),
    ("Trịnh", 0.4),
    ("Cao", 0.3),
    ("Tạ", 0.2),
    ("Quách", 0.1),
)
MIDDLE_NAMES = (
    "Văn",
    "Thị",
    "Hữu",
    "Đức",
    "Minh",
    "Quốc",
    "Thanh",
    "Ngọc",
    "Hoàng",
    "Công",
    "Xuân",
    "Thu",
    "Kim",
    "Bảo",
    "Gia",
    "Anh",
    "Thế",
    "Quang",
)
GIVEN_NAMES = (
    "An",
    "Anh",
    "Bảo",
    "Bình",
    "Châu",
    "Chi",
    "Cường",
    "Dũng",
    "Dung",
    "Duy",
    "Đạt",
    "Đức",
    "Giang",
    "Hà",
    "Hải",
    "Hạnh",
    "Hiếu",
    "Hoa",
    "Hòa",
    "Hùng",
    "Hương",
    "Huy",
    "Khánh",
    "Khoa",
    "Lan",
    "Linh",
    "Long",
    "Lộc",
    "Mai",
    "Minh",
    "My",
    "Nam",
    "Nga",
    "Ngọc",
    "Nhung",
    "Oanh",
    "Phát",
    "Phong",
    "Phúc",
    "Phương",
    "Quân",
    "Quang",
    "Quý",
    "Sơn",
    "Tâm",
    "Tân",
    "Thảo",
    "Thắng",
    "Thành",
    "Thịnh",
    "Thủy",
    "Tiến",
    "Trang",
    "Trung",
    "Tú",
    "Tuấn",
    "Tùng",
    "Vân",
    "Việt",
    "Vinh",
    "Yến",
)
TRADES = (
    "Thương mại",
    "Thương mại và Dịch vụ",
    "Dịch vụ",
    "Phân phối",
    "Xuất nhập khẩu",
    "Dược phẩm",
    "Thực phẩm",
    "Đầu tư",
)
STREETS = (
    "Lê Lợi",
    "Nguyễn Trãi",
    "Trần Hưng Đạo",
    "Hai Bà Trưng",
    "Lý Thường Kiệt",
    "Phan Đình Phùng",
    "Quang Trung",
    "Nguyễn Huệ",
    "Điện Biên Phủ",
    "Võ Thị Sáu",
    "Cách Mạng Tháng Tám",
    "Hùng Vương",
)
MARKETS = ("Bến Thành", "Đồng Xuân", "Hôm", "Bà Chiểu", "Tân Định", "Long Biên", "Cồn", "Đông Ba")
MOBILE_PREFIXES = (
    *(f"03{d}" for d in range(2, 10)),
    "056",
    "058",
    "059",
    "070",
    "076",
    "077",
    "078",
    "079",
    *(f"08{d}" for d in range(1, 9)),
    "090",
    "091",
    "093",
    "094",
    "096",
    "097",
    "098",
)
EMAIL_DOMAINS = ("gmail.com", "gmail.com", "gmail.com", "yahoo.com", "outlook.com", "icloud.com")
#: Province codes of the 2025 scheme, weighted towards the two big cities.
PROVINCES: tuple[tuple[str, float], ...] = (
    ("01", 14.0),
    ("79", 16.0),
    ("31", 3.0),
    ("48", 2.5),
    ("92", 2.0),
    ("75", 3.5),
    ("24", 2.5),
    ("22", 2.0),
    ("38", 3.0),
    ("40", 3.0),
    ("33", 2.0),
    ("37", 2.0),
    ("25", 2.0),
    ("19", 1.5),
    ("46", 1.5),
    ("56", 1.5),
    ("66", 1.5),
    ("68", 1.5),
    ("80", 1.5),
    ("82", 1.5),
    ("86", 1.5),
    ("91", 1.5),
    ("96", 1.0),
    ("52", 1.0),
    ("51", 1.0),
    ("44", 1.0),
    ("42", 1.0),
    ("15", 0.8),
    ("14", 0.8),
    ("20", 0.6),
    ("08", 0.6),
    ("04", 0.4),
    ("11", 0.3),
    ("12", 0.3),
)
STATUSES: tuple[tuple[str, float], ...] = (
    ("active", 80.0),
    ("inactive", 5.0),
    ("draft", 8.0),
    ("pending_approval", 4.0),
    ("rejected", 3.0),
)
#: The salespeople of the demo organisation (shared.auth.demo and the reference seed).
OWNERS: tuple[tuple[str, str], ...] = (
    ("NV001", "HN-T1"),
    ("NV002", "HN-T2"),
    ("NV003", "HCM-T1"),
    ("NV010", "MB-HN"),
)
_MST_WEIGHTS = (31, 29, 23, 19, 17, 13, 7, 5, 3)
#: The columns the loader fills, in COPY order.
COLUMNS = (
    "id",
    "customer_code",
    "status",
    "version",
    "full_name",
    "phone",
    "email",
    "address",
    "province_code",
    "admin_scheme",
    "company_name",
    "tax_code",
    "contact_name",
    "customer_type_code",
    "customer_group_code",
    "channel_code",
    "payment_term_code",
    "payment_method_code",
    "credit_days",
    "sales_unit_code",
    "owner_employee_id",
    "delivery_addresses",
    "invoice_profiles",
    "search_text",
    "created_by",
    "created_at",
    "updated_at",
    "submitted_at",
    "submitted_by",
    "approved_at",
)


@dataclass(slots=True)
class FakeCustomer:
    """The fields of one generated customer (what `customer.service.search_text` reads,
    and the rest of a row)."""

    id: uuid.UUID
    full_name: str
    status: str
    customer_code: str | None
    phone: str | None
    email: str | None
    company_name: str | None
    tax_code: str | None
    contact_name: str | None
    customer_type_code: str
    customer_group_code: str
    channel_code: str
    province_code: str
    address: str
    owner_employee_id: str
    sales_unit_code: str
    created_at: datetime
    misa_code: str | None = None
    payment_term_code: str = "NET15"
    payment_method_code: str = "CK"
    credit_days: int = 15
    extra: dict[str, Any] = field(default_factory=dict)


def mst_check_digit(first_nine: str) -> int | None:
    """The tenth digit of a Vietnamese tax code, or None when the nine digits have none."""
    remainder = sum(w * int(d) for w, d in zip(_MST_WEIGHTS, first_nine, strict=True)) % 11
    check = 10 - remainder
    return None if check == 10 else check % 10


class CustomerGenerator:
    """Deterministic (seeded) realistic Vietnamese outlets, companies and individuals."""

    def __init__(self, seed: int = 42, start: datetime | None = None) -> None:
        self.rng = random.Random(seed)
        self.start = start or datetime(2023, 1, 1, tzinfo=UTC)
        self._families = [name for name, _ in FAMILY_NAMES]
        self._family_weights = _cumulative(w for _, w in FAMILY_NAMES)
        self._provinces = [code for code, _ in PROVINCES]
        self._province_weights = _cumulative(w for _, w in PROVINCES)
        self._statuses = [s for s, _ in STATUSES]
        self._status_weights = _cumulative(w for _, w in STATUSES)
        self._next_code = 1

    def person(self) -> tuple[str, str, str]:
        """(family, middle, given)."""
        rng = self.rng
        family = rng.choices(self._families, cum_weights=self._family_weights)[0]
        return family, rng.choice(MIDDLE_NAMES), rng.choice(GIVEN_NAMES)

    def phone(self) -> str:
        """A mobile number in E.164, as the service stores it."""
        prefix = self.rng.choice(MOBILE_PREFIXES)
        return f"+84{prefix[1:]}{self.rng.randrange(10_000_000):07d}"

    def tax_code(self) -> str:
        """A 10-digit tax code with a valid check digit (a branch suffix one time in ten)."""
        rng = self.rng
        while True:
            first = f"{rng.choice(self._provinces)}{rng.randrange(1, 10_000_000):07d}"
            check = mst_check_digit(first)
            if check is not None:
                break
        code = f"{first}{check}"
        return f"{code}-{rng.randrange(1, 20):03d}" if rng.random() < 0.1 else code

    def personal_id(self) -> str:
        """A 12-digit personal ID (CCCD), the tax code of individuals since July 2025."""
        rng = self.rng
        return f"{rng.randrange(1, 97):03d}{rng.randrange(4)}{rng.randrange(100):02d}{rng.randrange(1_000_000):06d}"

    def email(self, given: str, family: str) -> str:
        local = fold(given + family).replace(" ", "")
        return f"{local}{self.rng.randrange(1, 999)}@{self.rng.choice(EMAIL_DOMAINS)}"

    def customer(self, index: int, *, total: int) -> FakeCustomer:
        rng = self.rng
        family, middle, given = self.person()
        brand = f"{rng.choice(GIVEN_NAMES)} {rng.choice(GIVEN_NAMES)}"
        kind = rng.random()
        company_name = tax_code = contact_name = None
        email = self.email(given, family) if rng.random() < 0.4 else None
        if kind < 0.38:
            honorific = rng.choice(("", "", "", "Cô ", "Chú ", "Bà ", "Anh ", "Chị "))
            name = f"Tạp hóa {honorific}{given}" if rng.random() < 0.6 else f"Tạp hóa {brand}"
            type_, group, channel = "HKD", "TAPHOA", "GT-TH"
        elif kind < 0.48:
            name = f"Nhà thuốc {brand}" if rng.random() < 0.7 else f"Quầy thuốc {given}"
            type_, group, channel = "HKD", "NHATHUOC", "GT-NT"
        elif kind < 0.58:
            name = f"Cửa hàng {brand}"
            type_, group, channel = "HKD", "MINIMART", "MT-CHTL"
        elif kind < 0.65:
            name = f"Đại lý {family} {given}"
            type_, group, channel = "HKD", "DAILY2", "GT-DL2"
        elif kind < 0.70:
            name = f"Sạp {rng.randrange(1, 400)} chợ {rng.choice(MARKETS)}"
            type_, group, channel = "HKD", "CHO", "GT-CHO"
        elif kind < 0.88:
            form = "Công ty TNHH" if rng.random() < 0.75 else "Công ty Cổ phần"
            name = company_name = f"{form} {rng.choice(TRADES)} {brand}"
            tax_code = self.tax_code()
            contact_name = f"{family} {middle} {given}"
            slug = fold(brand).replace(" ", "")
            email = f"{rng.choice(('info', 'ketoan', 'kinhdoanh'))}@{slug}.vn"
            type_, group, channel = "DN", rng.choice(("NPP", "DAILY1", "SIEUTHI")), "GT-NPP"
        else:
            name = f"{family} {middle} {given}"
            tax_code = self.personal_id() if rng.random() < 0.3 else None
            type_, group, channel = "CANHAN", "TAPHOA", "GT"
        status = rng.choices(self._statuses, cum_weights=self._status_weights)[0]
        code = None
        if status in ("active", "inactive"):
            code = f"KH{self._next_code:06d}"
            self._next_code += 1
        owner, unit = rng.choice(OWNERS)
        span = timedelta(days=3 * 365).total_seconds()
        created = self.start + timedelta(
            seconds=span * index / max(total, 1) + rng.randrange(0, 600)
        )
        return FakeCustomer(
            id=uuid.UUID(int=rng.getrandbits(128), version=4),
            full_name=name,
            status=status,
            customer_code=code,
            phone=self.phone() if rng.random() < 0.95 else None,
            email=email,
            company_name=company_name,
            tax_code=tax_code,
            contact_name=contact_name,
            customer_type_code=type_,
            customer_group_code=group,
            channel_code=channel,
            province_code=rng.choices(self._provinces, cum_weights=self._province_weights)[0],
            address=f"{rng.randrange(1, 300)} {rng.choice(STREETS)}",
            owner_employee_id=owner,
            sales_unit_code=unit,
            created_at=created,
        )

    def customers(self, count: int) -> Iterator[FakeCustomer]:
        for index in range(count):
            yield self.customer(index, total=count)


def _cumulative(weights: Iterator[float] | Sequence[float]) -> list[float]:
    out: list[float] = []
    total = 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


def search_text_of(customer: FakeCustomer) -> str:
    """The service's own `search_text`, on the generated fields."""
    from customer.service import search_text

    return search_text(cast("Customer", customer))


def copy_record(customer: FakeCustomer) -> tuple[Any, ...]:
    """One row for COPY, in `COLUMNS` order."""
    c = customer
    decided = c.status in ("active", "inactive", "rejected")
    submitted = c.status != "draft"
    at = c.created_at
    return (
        c.id,
        c.customer_code,
        c.status,
        1 + submitted + decided,
        c.full_name,
        c.phone,
        c.email,
        c.address,
        c.province_code,
        "2025",
        c.company_name,
        c.tax_code,
        c.contact_name,
        c.customer_type_code,
        c.customer_group_code,
        c.channel_code,
        c.payment_term_code,
        c.payment_method_code,
        c.credit_days,
        c.sales_unit_code,
        c.owner_employee_id,
        "[]",
        "[]",
        search_text_of(c),
        c.owner_employee_id,
        at,
        at + timedelta(hours=2) if decided else at,
        at + timedelta(hours=1) if submitted else None,
        c.owner_employee_id if submitted else None,
        at + timedelta(hours=2) if c.status in ("active", "inactive") else None,
    )


# ---- the queries --------------------------------------------------------------------------

#: What a name starts with before the part that tells one outlet from another.
_NAME_PREFIXES = (
    "Công ty TNHH ",
    "Công ty Cổ phần ",
    "Tạp hóa Cô ",
    "Tạp hóa Chú ",
    "Tạp hóa Bà ",
    "Tạp hóa Anh ",
    "Tạp hóa Chị ",
    "Tạp hóa ",
    "Nhà thuốc ",
    "Quầy thuốc ",
    "Cửa hàng ",
    "Đại lý ",
)
#: One common word: every search of it matches a large share of the table. Measured and
#: reported apart (with the one-word names of the sample): ranking tens of thousands of
#: matches by similarity does not fit a 50 ms budget.
BROAD_QUERIES = ("nguyen", "tap hoa", "nha thuoc", "cong ty tnhh", "minh", "van", "thuoc", "an")
#: Lists without `q`, newest first, with the filters a screen offers.
LIST_FILTERS: tuple[dict[str, str], ...] = (
    {},
    {"status": "active"},
    {"province_code": "79"},
    {"owner_employee_id": "NV001"},
    {"status": "pending_approval", "sales_unit_code": "HN-T1"},
)
CATEGORIES = ("name", "phone", "tax code", "code", "list (no q)", "one word")
#: The categories the p95 and ORM-ratio targets apply to.
TARGET_CATEGORIES = ("name", "phone", "tax code", "code")


@dataclass(frozen=True, slots=True)
class SearchQuery:
    q: str | None
    filters: tuple[tuple[str, str], ...] = ()

    def label(self) -> str:
        shown = repr(self.q) if self.q is not None else "(no q)"
        return shown + "".join(f" {k}={v}" for k, v in self.filters)


def distinctive_part(name: str) -> str:
    """'Tạp hóa Minh Châu' → 'Minh Châu'; 'Công ty TNHH Thương mại Phát Lộc' → 'Phát Lộc'."""
    for prefix in _NAME_PREFIXES:
        if name.startswith(prefix):
            rest = name[len(prefix) :]
            if prefix.startswith("Công ty"):
                for trade in sorted(TRADES, key=len, reverse=True):
                    if rest.startswith(trade + " "):
                        return rest[len(trade) + 1 :]
            return rest
    return name


def name_variants(name: str) -> list[str]:
    """How people type a name: as written, without accents, its telling part, its start."""
    words = name.split()
    start = " ".join(words[: max(2, len(words) - 1)])
    return [name, fold(name), distinctive_part(name), start]


def phone_variants(e164: str) -> list[str]:
    """'+84912345678' as people type it."""
    national = "0" + e164[3:]
    spaced = f"{national[:4]} {national[4:7]} {national[7:]}"
    dotted = spaced.replace(" ", ".")
    return [spaced, e164, e164[3:], national, dotted]


def tax_variants(tax_code: str) -> list[str]:
    if "-" in tax_code:
        return [tax_code, tax_code.replace("-", " "), tax_code.replace("-", "")]
    return [tax_code]


def build_queries(
    sample: Sequence[FakeCustomer], per_category: int
) -> dict[str, list[SearchQuery]]:
    """Distinct queries per category, from a sample of the loaded customers. A name
    variant of a single word (the 'Dung' of 'Tạp hóa Dung') goes with the one-word
    queries: one given name alone matches tens of thousands of customers."""
    out: dict[str, list[SearchQuery]] = {c: [] for c in CATEGORIES}
    single_words: list[SearchQuery] = []
    for i, c in enumerate(sample):
        variant = name_variants(c.full_name)[i % 4]
        (out["name"] if " " in variant else single_words).append(SearchQuery(variant))
        if c.phone:
            out["phone"].append(SearchQuery(phone_variants(c.phone)[i % 5]))
        if c.tax_code:
            variants = tax_variants(c.tax_code)
            out["tax code"].append(SearchQuery(variants[i % len(variants)]))
        if c.customer_code:
            code = c.customer_code
            out["code"].append(SearchQuery(code if i % 2 else code.lower()))
    out["list (no q)"] = [SearchQuery(None, tuple(f.items())) for f in LIST_FILTERS]
    out["one word"] = [SearchQuery(q) for q in BROAD_QUERIES] + single_words
    return {name: list(dict.fromkeys(qs))[:per_category] for name, qs in out.items()}


# ---- the database -------------------------------------------------------------------------

DEFAULT_DB_BASE = "postgresql+asyncpg://postgres@127.0.0.1:5432"
DEFAULT_DB_NAME = "ims_bench_customer"
DEFAULT_CUSTOMERS = 1_000_000
BATCH_SIZE = 20_000
SAMPLE_SIZE = 2_000


def libpq_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def recreate_database(base: str, name: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(libpq_dsn(base) + "/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{base}/{name}"


async def drop_database(base: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(libpq_dsn(base) + "/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def fill_reference_replica(url: str) -> None:
    """The replica of reference lists, as the reference service's events build it."""
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from customer.handlers import HANDLERS
    from reference.seeding import item_view, list_item_values, list_seed
    from shared.events.contracts import ReferenceItemChangedV1, to_cloud_event

    engine = create_async_engine(url)
    try:
        async with AsyncSession(engine) as session, session.begin():
            for list_name, rows in list_seed().items():
                for row in rows:
                    values = list_item_values(list_name, row)
                    event = to_cloud_event(
                        ReferenceItemChangedV1(
                            list=list_name, code=row["code"], item=item_view(values)
                        )
                    )
                    await HANDLERS[ReferenceItemChangedV1.TYPE](session, event)
    finally:
        await engine.dispose()


@dataclass(frozen=True, slots=True)
class LoadReport:
    customers: int
    generate_and_copy_s: float
    index_s: float
    vacuum_analyze_s: float
    table_mb: float
    indexes_mb: dict[str, float]


async def load_customers(
    url: str, count: int, *, out: TextIO, seed: int = 42
) -> tuple[LoadReport, list[FakeCustomer]]:
    """COPY `count` generated customers (secondary indexes dropped during the load and
    rebuilt from their own definitions), then VACUUM ANALYZE; a sample of the rows."""
    import asyncpg

    conn = await asyncpg.connect(libpq_dsn(url))
    try:
        indexes = await conn.fetch(
            """
            SELECT i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.tablename = 'customers' AND NOT EXISTS (
                SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
            """
        )
        for row in indexes:
            await conn.execute(f'DROP INDEX "{row["indexname"]}"')
        generator = CustomerGenerator(seed=seed)
        every = max(1, count // SAMPLE_SIZE)
        sample: list[FakeCustomer] = []
        produced = 0

        def next_batch() -> list[tuple[Any, ...]]:
            nonlocal produced
            records = []
            for _ in range(min(BATCH_SIZE, count - produced)):
                customer = generator.customer(produced, total=count)
                if produced % every == every // 2:
                    sample.append(customer)
                records.append(copy_record(customer))
                produced += 1
            return records

        started = time.perf_counter()
        pending = asyncio.create_task(asyncio.to_thread(next_batch))
        last_report = started
        while True:
            batch = await pending
            if not batch:
                break
            # The next batch is generated in a thread while this one is copied.
            pending = asyncio.create_task(asyncio.to_thread(next_batch))
            await conn.copy_records_to_table("customers", records=batch, columns=list(COLUMNS))
            if time.perf_counter() - last_report > 15:
                last_report = time.perf_counter()
                print(f"  … {produced:,} customers ({last_report - started:.0f} s)", file=out)
        copied = time.perf_counter() - started

        started = time.perf_counter()
        await conn.execute("SET maintenance_work_mem = '1GB'")
        for row in indexes:
            await conn.execute(row["indexdef"])
        indexed = time.perf_counter() - started
        started = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE) customers")
        vacuumed = time.perf_counter() - started
        sizes = await conn.fetch(
            """
            SELECT c.relname, pg_relation_size(c.oid) AS bytes FROM pg_class c
            WHERE c.relname = 'customers' OR c.oid IN (
                SELECT indexrelid FROM pg_index WHERE indrelid = 'customers'::regclass)
            """
        )
    finally:
        await conn.close()
    mb = {row["relname"]: row["bytes"] / 2**20 for row in sizes}
    report = LoadReport(
        customers=count,
        generate_and_copy_s=copied,
        index_s=indexed,
        vacuum_analyze_s=vacuumed,
        table_mb=mb.pop("customers", 0.0),
        indexes_mb=dict(sorted(mb.items())),
    )
    return report, sample


# ---- search latency -----------------------------------------------------------------------

SEARCH_LIMIT = 50
_INDEX_USE = re.compile(
    r"Index (?:Only )?Scan (?:Backward )?using (\w+)|Bitmap Index Scan on (\w+)"
)


@dataclass(frozen=True, slots=True)
class SearchResult:
    category: str
    distinct: int
    orm: Stats
    raw: Stats
    statements: float
    """Statements per search, on average (a relevance search runs one per tier it needs)."""
    mismatches: int
    """Searches whose raw SQL answered other customers than `search_customers` (should be 0)."""
    example: str
    indexes: tuple[str, ...]
    """The indexes the plans of the example query read."""

    @property
    def ratio_p50(self) -> float:
        return self.orm.p50 / self.raw.p50 if self.raw.p50 else math.inf

    @property
    def ratio_p95(self) -> float:
        return self.orm.p95 / self.raw.p95 if self.raw.p95 else math.inf


CompiledSql = tuple[str, list[Any]]
#: Per query: the statements it runs, compiled, and the ids they answer.
Plans = dict["SearchQuery", tuple[list[CompiledSql], list[uuid.UUID]]]


def compile_for_asyncpg(stmt: "ClauseElement", dialect: "Dialect") -> CompiledSql:
    """The SQL text and positional arguments SQLAlchemy sends for `stmt` on asyncpg."""
    compiled = cast(
        "SQLCompiler", stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    )
    params = compiled.construct_params() or {}
    return compiled.string, [params[name] for name in compiled.positiontup or ()]


async def raw_statements(
    conn: "asyncpg.Connection", dialect: "Dialect", query: SearchQuery
) -> tuple[list[CompiledSql], list[uuid.UUID]]:
    """The statements `search_customers` runs for `query` (first page, everyone visible),
    compiled once; and the ids they answer, run raw."""
    from sqlalchemy import true

    from customer.search import (
        newest_first_statement,
        parse_query,
        relevance_page,
        relevance_statements,
    )

    filters = cast("Any", dict(query.filters))
    terms = parse_query(query.q)
    if terms is None:
        stmt = newest_first_statement(
            visibility=true(), filters=filters, limit=SEARCH_LIMIT, cursor=None
        )
        sql = compile_for_asyncpg(stmt, dialect)
        rows = await conn.fetch(sql[0], *sql[1])
        return [sql], [r["id"] for r in rows[:SEARCH_LIMIT]]
    compiled: list[CompiledSql] = []
    ranked: list[Any] = []
    for statement in relevance_statements(terms, visibility=true(), filters=filters, after=None):
        need = SEARCH_LIMIT + 1 - len(ranked)
        if need <= 0:
            break
        sql = compile_for_asyncpg(statement(need), dialect)
        compiled.append(sql)
        ranked += await conn.fetch(sql[0], *sql[1])
    del relevance_page  # the page is the first SEARCH_LIMIT rows, as there
    return compiled, [r["id"] for r in ranked[:SEARCH_LIMIT]]


async def explain_indexes(
    conn: "asyncpg.Connection", statements: list[CompiledSql]
) -> tuple[str, ...]:
    used: list[str] = []
    for sql, args in statements:
        plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql, *args))
        used += [a or b for a, b in _INDEX_USE.findall(plan)]
    return tuple(dict.fromkeys(used))


async def measure_search(
    url: str, queries: dict[str, list[SearchQuery]], samples: int, *, out: TextIO
) -> list[SearchResult]:
    """Per category, `samples` searches through `search_customers` (a session each, as a
    request has) and as raw SQL on one asyncpg connection, alternating which goes first."""
    import asyncpg
    from sqlalchemy import true
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from customer.search import search_customers

    engine = create_async_engine(url, pool_size=2)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    conn = await asyncpg.connect(libpq_dsn(url))
    results: list[SearchResult] = []
    try:
        for category in CATEGORIES:
            mix = queries.get(category) or []
            if not mix:
                continue
            print(f"  {category}: {len(mix)} distinct queries", file=out)
            plans: Plans = {}
            for query in mix:  # compile, warm up, and note what the raw SQL answers
                plans[query] = await raw_statements(conn, engine.dialect, query)

            async def orm(query: SearchQuery) -> list[uuid.UUID]:
                async with sessions() as session:
                    items, _ = await search_customers(
                        session,
                        visibility=true(),
                        filters=cast("Any", dict(query.filters)),
                        q=query.q,
                        limit=SEARCH_LIMIT,
                        cursor=None,
                    )
                    return [c.id for c in items]

            async def raw(query: SearchQuery, plans: Plans = plans) -> list[uuid.UUID]:
                ids: list[uuid.UUID] = []
                for sql, args in plans[query][0]:
                    ids += [r["id"] for r in await conn.fetch(sql, *args)]
                return ids[:SEARCH_LIMIT]

            for query in mix:
                await orm(query)
            orm_ms: list[float] = []
            raw_ms: list[float] = []
            mismatches = 0
            for i in range(max(samples, len(mix))):
                query = mix[i % len(mix)]
                first, second = (orm, raw) if i % 2 == 0 else (raw, orm)
                a, a_ms = await _timed_async(first(query))
                b, b_ms = await _timed_async(second(query))
                orm_ids, raw_ids = (a, b) if first is orm else (b, a)
                orm_ms.append(a_ms if first is orm else b_ms)
                raw_ms.append(b_ms if first is orm else a_ms)
                mismatches += orm_ids != raw_ids or orm_ids != plans[query][1]
            example = mix[0]
            results.append(
                SearchResult(
                    category=category,
                    distinct=len(mix),
                    orm=summarize(orm_ms),
                    raw=summarize(raw_ms),
                    statements=statistics.fmean(len(plans[q][0]) for q in mix),
                    mismatches=mismatches,
                    example=example.label(),
                    indexes=await explain_indexes(conn, plans[example][0]),
                )
            )
    finally:
        await conn.close()
        await engine.dispose()
    return results


async def _timed_async[T](call: Awaitable[T]) -> tuple[T, float]:
    started = time.perf_counter_ns()
    result = await call
    return result, (time.perf_counter_ns() - started) / 1_000_000


# ---- write throughput ---------------------------------------------------------------------

DEFAULT_WRITES = 2_000
DEFAULT_CONCURRENCY = 16
_WARMUP_WRITES = 50


@dataclass(frozen=True, slots=True)
class Throughput:
    name: str
    requests: int
    concurrency: int
    seconds: float
    latency: Stats

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else math.inf


def draft_payload(rng: random.Random, n: int) -> dict[str, Any]:
    """A complete customer (it passes submission) with a unique name and phone."""
    given = rng.choice(GIVEN_NAMES)
    return {
        "full_name": f"Tạp hóa {given} {rng.choice(GIVEN_NAMES)} {n}",
        "phone": f"{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**7):07d}",
        "email": f"{fold(given)}{n}@example.vn",
        "address": f"{rng.randrange(1, 300)} {rng.choice(STREETS)}",
        "province_code": "01",
        "ward_code": "00004",
        "customer_type_code": "HKD",
        "customer_group_code": "TAPHOA",
        "channel_code": "GT",
        "payment_term_code": "NET15",
        "payment_method_code": "CK",
        "credit_days": 15,
        "delivery_addresses": [{"address": "Kho 2, 5 Lê Lợi", "is_default": True}],
    }


class BenchRequestError(Exception):
    pass


async def run_concurrently(
    name: str, count: int, concurrency: int, call: Callable[[int], Awaitable[None]]
) -> Throughput:
    """`count` calls, `concurrency` at a time; each call's latency and the wall time."""
    latencies: list[float] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            index = next_index
            next_index += 1
            started = time.perf_counter_ns()
            await call(index)
            latencies.append((time.perf_counter_ns() - started) / 1_000_000)

    started = time.perf_counter()
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
    except ExceptionGroup as failed:  # the first failure says what went wrong
        raise failed.exceptions[0] from failed
    return Throughput(name, count, concurrency, time.perf_counter() - started, summarize(latencies))


def floor_app(dsn: str, pool_size: int) -> Any:
    """The floor: a bare FastAPI endpoint doing one INSERT through an asyncpg pool."""
    from contextlib import asynccontextmanager

    import asyncpg
    from fastapi import FastAPI

    pool: list[asyncpg.Pool] = []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        pool.append(await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size))
        yield
        await pool[0].close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/floor", status_code=201)
    async def insert(body: dict[str, Any]) -> dict[str, str]:
        new_id = uuid.uuid4()
        await pool[0].execute(
            "INSERT INTO bench_floor (id, body) VALUES ($1, $2)", new_id, json.dumps(body)
        )
        return {"id": str(new_id)}

    return app


def silence_service_logs(service: str = "customer") -> None:
    """The service's logging as in production (a JSON line per request, at INFO), written
    to /dev/null: its cost stays in the figures, its lines stay off the console."""
    import logging

    import structlog

    from shared.logging import configure_logging

    configure_logging(json=True, level="INFO", service=service)
    sink = open(os.devnull, "w")  # noqa: SIM115 - for the rest of the process
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sink))
    logging.getLogger().handlers[:] = [logging.StreamHandler(sink)]


async def measure_writes(
    url: str, *, writes: int, concurrency: int, keys_dir: Path, out: TextIO
) -> list[Throughput]:
    """Create drafts and submit them through the real app in process (httpx over ASGI),
    then the floor, with the same concurrency and the same number of DB connections."""
    import asyncpg
    import httpx

    from customer.app import create_app
    from customer.settings import CustomerSettings
    from shared.auth.dev_issuer import ensure_keypair, issue_token

    private_path, public_path = ensure_keypair(keys_dir)
    token = issue_token(private_path.read_bytes(), username="sales1", ttl_seconds=3600)
    headers = {"Authorization": f"Bearer {token}"}
    settings = CustomerSettings(
        database_url=url,
        jwt_public_key_file=str(public_path),
        run_workers=False,
        kafka_bootstrap_servers="127.0.0.1:1",
    )
    silence_service_logs()
    connections = settings.db_pool_size * 2  # the engine's pool_size + max_overflow
    app = create_app(settings)
    rng = random.Random(7)
    total = writes + _WARMUP_WRITES
    payloads = [draft_payload(rng, n) for n in range(total)]
    ids: list[str] = [""] * total
    results: list[Throughput] = []

    async def expect(response: "httpx.Response", status: int) -> "httpx.Response":
        if response.status_code != status:
            raise BenchRequestError(
                f"{response.request.method} {response.request.url.path} answered "
                f"{response.status_code}: {response.text[:300]}"
            )
        return response

    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=60
        ) as client:

            async def create(i: int) -> None:
                response = await expect(
                    await client.post("/api/v1/customers", json=payloads[i], headers=headers), 201
                )
                ids[i] = response.json()["id"]

            async def submit(i: int) -> None:
                await expect(
                    await client.post(f"/api/v1/customers/{ids[i]}/submit", headers=headers), 200
                )

            print(f"  create-draft: {writes} requests, {concurrency} at a time", file=out)
            await run_concurrently("warm-up", _WARMUP_WRITES, concurrency, create)
            timed = await run_concurrently(
                "create draft", writes, concurrency, lambda i: create(i + _WARMUP_WRITES)
            )
            results.append(timed)
            print(f"  submit: {writes} requests, {concurrency} at a time", file=out)
            await run_concurrently("warm-up", _WARMUP_WRITES, concurrency, submit)
            results.append(
                await run_concurrently(
                    "submit", writes, concurrency, lambda i: submit(i + _WARMUP_WRITES)
                )
            )
    finally:
        await app.state.runtime.engine.dispose()

    conn = await asyncpg.connect(libpq_dsn(url))
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_floor"
            " (id uuid PRIMARY KEY, body jsonb NOT NULL, created_at timestamptz DEFAULT now())"
        )
    finally:
        await conn.close()
    floor = floor_app(libpq_dsn(url), connections)
    print(f"  floor (bare FastAPI + asyncpg INSERT): {writes} requests", file=out)
    async with (
        floor.router.lifespan_context(floor),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=floor), base_url="http://floor", timeout=60
        ) as client,
    ):

        async def insert(i: int) -> None:
            await expect(await client.post("/floor", json=payloads[i % total]), 201)

        await run_concurrently("warm-up", _WARMUP_WRITES, concurrency, insert)
        results.append(await run_concurrently("floor: one INSERT", writes, concurrency, insert))
    return results


# ---- the report ---------------------------------------------------------------------------

TARGET_SEARCH_P95_MS = 50.0
TARGET_RAW_RATIO = 1.5
TARGET_FLOOR_SHARE = 0.5
RESULT_FILE = Path("docs/benchmarks.md")


@dataclass(frozen=True, slots=True)
class CustomerBenchReport:
    command: str
    machine: Machine
    postgres: str
    load: LoadReport
    search: list[SearchResult]
    writes: list[Throughput]
    note: str | None = None

    def write(self, name: str) -> Throughput | None:
        return next((w for w in self.writes if w.name == name), None)


def search_verdict(result: SearchResult) -> str:
    fast = result.orm.p95 <= TARGET_SEARCH_P95_MS
    close = result.ratio_p95 <= TARGET_RAW_RATIO
    if fast and close:
        return "met"
    missed = [
        *([f"p95 {result.orm.p95:.1f} ms > {TARGET_SEARCH_P95_MS:g}"] if not fast else []),
        *([f"×{result.ratio_p95:.2f} raw > ×{TARGET_RAW_RATIO:g}"] if not close else []),
    ]
    return "NOT met (" + "; ".join(missed) + ")"


def write_verdicts(report: CustomerBenchReport) -> list[str]:
    floor = report.write("floor: one INSERT")
    lines = []
    for name in ("create draft", "submit"):
        timed = report.write(name)
        if timed is None or floor is None:
            continue
        share = timed.per_second / floor.per_second
        met = "met" if share >= TARGET_FLOOR_SHARE else "NOT met"
        lines.append(
            f"{name}: {timed.per_second:.0f}/s = {share:.0%} of the floor's "
            f"{floor.per_second:.0f}/s (target ≥ {TARGET_FLOOR_SHARE:.0%}): {met}"
        )
    return lines


def load_line(load: LoadReport) -> str:
    indexes = ", ".join(f"{name} {mb:.0f}" for name, mb in load.indexes_mb.items())
    return (
        f"{load.customers:,} customers: generated and COPYed in {load.generate_and_copy_s:.0f} s "
        f"({load.customers / load.generate_and_copy_s:,.0f}/s), indexes rebuilt in "
        f"{load.index_s:.0f} s, VACUUM ANALYZE {load.vacuum_analyze_s:.0f} s; table "
        f"{load.table_mb:.0f} MB, indexes (MB): {indexes}"
    )


def render_table(report: CustomerBenchReport) -> str:
    lines = [load_line(report.load), ""]
    head = (
        f"{'search (ms)':<14} {'n':>5} {'p50':>8} {'p95':>8} {'p99':>8} "
        f"{'raw p50':>8} {'raw p95':>8} {'raw p99':>8} {'×p95':>6}  target"
    )
    lines.append(head)
    for r in report.search:
        target = search_verdict(r) if r.category in TARGET_CATEGORIES else "(not a target)"
        lines.append(
            f"{r.category:<14} {r.orm.n:>5} {r.orm.p50:>8.2f} {r.orm.p95:>8.2f} "
            f"{r.orm.p99:>8.2f} {r.raw.p50:>8.2f} {r.raw.p95:>8.2f} {r.raw.p99:>8.2f} "
            f"{r.ratio_p95:>6.2f}  {target}"
        )
    lines.append("")
    lines.append(
        f"{'writes':<20} {'n':>5} {'conc':>5} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
    )
    for w in report.writes:
        s = w.latency
        lines.append(
            f"{w.name:<20} {w.requests:>5} {w.concurrency:>5} {w.per_second:>8.0f} "
            f"{s.p50:>8.2f} {s.p95:>8.2f} {s.p99:>8.2f}"
        )
    lines.append("")
    lines += write_verdicts(report)
    return "\n".join(lines)


def render_markdown(report: CustomerBenchReport) -> str:
    lines = [
        f"## Customers: {report.load.customers:,}, {report.machine.date}",
        "",
        machine_line(report.machine, report.postgres),
        f"Command: `{report.command}`.",
    ]
    if report.note:
        lines += ["", report.note]
    lines += [
        "",
        f"Load: {load_line(report.load)}.",
        "",
        f"Search, first page of {SEARCH_LIMIT}, everyone visible (a `cs` user): "
        "`search_customers` on a new session per search vs the same SQL sent raw on asyncpg.",
        "",
    ]
    lines += markdown_table(
        (
            *("query", "distinct", "n", "p50 ms", "p95 ms", "p99 ms"),
            *("raw p50", "raw p95", "raw p99", "×raw p95", "statements"),
            *("indexes read (EXPLAIN of the example)", "target"),
        ),
        "lrrrrrrrrrrll",
        (
            (
                f"{r.category} (e.g. {r.example})",
                r.distinct,
                r.orm.n,
                *(f"{v:.2f}" for v in (r.orm.p50, r.orm.p95, r.orm.p99)),
                *(f"{v:.2f}" for v in (r.raw.p50, r.raw.p95, r.raw.p99, r.ratio_p95)),
                f"{r.statements:.1f}",
                ", ".join(r.indexes) or "none",
                search_verdict(r) if r.category in TARGET_CATEGORIES else "not a target",
            )
            for r in report.search
        ),
    )
    mismatches = sum(r.mismatches for r in report.search)
    lines += [
        "",
        f"Searches where the raw SQL answered differently: {mismatches}.",
        "",
        "Writes through the real app in process (httpx over ASGI, JWT of sales1), and the "
        "floor: a bare FastAPI endpoint doing one INSERT on an asyncpg pool of as many "
        "connections as the app's engine may open.",
        "",
    ]
    lines += markdown_table(
        ("writes", "n", "concurrency", "req/s", "p50 ms", "p95 ms", "p99 ms"),
        "lrrrrrr",
        (
            (
                w.name,
                w.requests,
                w.concurrency,
                f"{w.per_second:.0f}",
                *(f"{v:.2f}" for v in (w.latency.p50, w.latency.p95, w.latency.p99)),
            )
            for w in report.writes
        ),
    )
    lines.append("")
    lines += [f"- {line}" for line in write_verdicts(report)]
    return "\n".join(lines) + "\n"


HEADER = f"""# Benchmarks

Each benchmark appends a section, with the machine it ran on, to its results file. The
machines are shared and noisy: compare figures within one run (ratios, side by side)
rather than absolute figures across runs. Targets are checked by the benchmarks, never
by timed tests.

## How to run them

From the repository root, with PostgreSQL reachable:

- **Admin-unit type-ahead search** (reference service, issue 3; target p95 ≤ 10 ms):
  `.venv/bin/ims bench reference-search [--queries N] [--url http://127.0.0.1:8004]`.
  Results: [benchmarks/reference-search.md](benchmarks/reference-search.md).
- **Customer search and writes at national scale** (issue 4): `.venv/bin/ims bench customer
  [--customers N] [--database-url-base URL] [--samples N] [--writes N] [--concurrency N]
  [--keep]`. It makes a fresh database `{DEFAULT_DB_NAME}` on `--database-url-base`
  (default `$IMS_TEST_DATABASE_URL_BASE`, else `{DEFAULT_DB_BASE}`), migrates it,
  COPYs N realistic Vietnamese customers (default {DEFAULT_CUSTOMERS:,}; `search_text` by
  the service's own function), then measures:
  - search latency by kind of query (names as people type them, phones in several formats,
    tax codes, customer codes; plus lists without `q` and one-word queries such as
    'nguyen' or a given name alone, reported but outside the target) through `customer.search.search_customers`,
    beside the very same SQL sent raw on asyncpg. Targets: **p95 ≤ {TARGET_SEARCH_P95_MS:g} ms
    and within {TARGET_RAW_RATIO:g}× of the raw SQL**;
  - create-draft and submit throughput and latency at a fixed concurrency through the real
    app (in process, over ASGI), beside a bare FastAPI + asyncpg endpoint doing one INSERT.
    Target: **≥ {TARGET_FLOOR_SHARE:.0%} of that floor**.

  The database is dropped at the end unless `--keep`. Results: below.

- **Salesperson web UI pages at national scale** (issue 7; target **p95 < 1000 ms** per
  page, "well under a second"): `.venv/bin/ims bench ui [--customers N]
  [--database-url-base URL] [--database-name NAME] [--samples N] [--keep]`. Same fresh
  database and loader as above (database `ims_bench_ui` by default), then the customer
  app in process signs in `sales1`, `manager1` and `cs1` through the demo sign-in and
  times each page of `/ui/` (the list newest first, searches by name and phone, filters,
  the live-search fragment, the customer page with its history, the edit and new forms),
  the HTML read in full, beside its JSON API equivalent measured in the same run (the
  ratio is what rendering costs). Results: below, under their own heading.

- **The stack end to end** (issue 8): run these against a running `.venv/bin/ims up`, in a
  shell with the same `IMS_*` port and data-folder variables, because they read the stack's
  ports from them as `ims up` does. Each measures its floor in the same run:
  - `.venv/bin/ims bench pipeline [--rate 1] [--duration 60] [--no-ramp] [--start-rate 1]
    [--max-rate 64] [--step-seconds 30] [--p99-bound 10]`. Customers arrive at a steady
    open-loop rate: they are sent on a schedule, whether or not earlier ones have finished.
    Each one is created and submitted as sales1. cs1 approves its review as soon as
    approval's API lists it, and the customer is then followed until MISA-linked. The
    benchmark gives p50/p95/p99 for each stage, timed from the scheduled arrival. It then
    doubles the rate every step until activation is no longer held. A rate is **held**
    when every customer gets through, the achieved throughput is ≥ 95% of the offered
    rate, and p99 is bounded: the last third's p99 is at most twice the first third's
    plus 1 s, and under `--p99-bound`. Each rate is judged through activation and,
    separately, through the MISA link. The floor at each rate is raw aiokafka produce →
    consume on the same broker, with the same number of records at the same rate.
  - `.venv/bin/ims bench replay [--events 1000000] [--timeout 7200] [--keep]`. It
    publishes N customer events (submitted, activated and updated, built with the real
    models of `shared.events.contracts`) to a fresh topic. Approval's real consumer and
    handlers, in a new consumer group, then rebuild its state into a fresh database on the
    stack's PostgreSQL. It reports events/s beside raw aiokafka reading the same topic,
    and checks the replica rows, the reviews and the inbox rows. At the time-out it
    reports the rate of the events applied so far.
  - `.venv/bin/ims bench memory [--idle 30] [--soak 600] [--interval 10] [--rate 1]
    [--threshold 10]`. It samples the memory of each process of the stack (found by its
    port), first idle and then under the pipeline workload for the soak. It reports
    first, last and max, and the trend after the soak's first fifth. Growth above the
    threshold over the soak is flagged.

  Results: below, each under its own heading.

# Results: `ims bench customer`
"""


RESULTS_HEADING = "# Results: `ims bench customer`"


def append_section(path: Path, heading: str, section: str) -> None:
    """`bench_report.append_section` on ``docs/benchmarks.md``: a new file starts with
    `HEADER`."""
    bench_report.append_section(path, heading, section, header=HEADER)


def append_report(path: Path, report: CustomerBenchReport) -> None:
    append_section(path, RESULTS_HEADING, render_markdown(report))


async def postgres_description(url: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(libpq_dsn(url))
    try:
        version = await conn.fetchval("SHOW server_version")
        buffers = await conn.fetchval("SHOW shared_buffers")
        work_mem = await conn.fetchval("SHOW work_mem")
    finally:
        await conn.close()
    return f"PostgreSQL {version} (shared_buffers {buffers}, work_mem {work_mem})"


@dataclass(frozen=True, slots=True)
class BenchOptions:
    customers: int = DEFAULT_CUSTOMERS
    database_url_base: str = DEFAULT_DB_BASE
    database_name: str = DEFAULT_DB_NAME
    samples: int = 400
    writes: int = DEFAULT_WRITES
    concurrency: int = DEFAULT_CONCURRENCY
    keep: bool = False
    note: str | None = None

    def command(self) -> str:
        return (
            f"ims bench customer --customers {self.customers} --samples {self.samples} "
            f"--writes {self.writes} --concurrency {self.concurrency}"
        )


async def run_bench(options: BenchOptions, *, out: TextIO) -> CustomerBenchReport:
    from shared.migrations import upgrade_to_head

    base = options.database_url_base.rstrip("/")
    print(f"creating {options.database_name} on {base} and migrating it…", file=out)
    url = await recreate_database(base, options.database_name)
    try:
        await asyncio.to_thread(upgrade_to_head, "customer", url)
        await fill_reference_replica(url)
        print(f"loading {options.customers:,} customers with COPY…", file=out)
        load, sample = await load_customers(url, options.customers, out=out)
        print(load_line(load), file=out)
        print("measuring search…", file=out)
        search = await measure_search(
            url, build_queries(sample, per_category=200), options.samples, out=out
        )
        print("measuring writes…", file=out)
        import tempfile

        with tempfile.TemporaryDirectory(prefix="ims-bench-keys-") as keys:
            writes = await measure_writes(
                url,
                writes=options.writes,
                concurrency=options.concurrency,
                keys_dir=Path(keys),
                out=out,
            )
        postgres = await postgres_description(url)
    finally:
        if not options.keep:
            await drop_database(base, options.database_name)
            print(f"dropped {options.database_name}", file=out)
        else:
            print(f"kept {url}", file=out)
    return CustomerBenchReport(
        command=options.command(),
        machine=machine_info(),
        postgres=postgres,
        load=load,
        search=search,
        writes=writes,
        note=options.note,
    )


def default_database_url_base(env: dict[str, str] | None = None) -> str:
    environ = os.environ if env is None else env
    return environ.get("IMS_TEST_DATABASE_URL_BASE") or DEFAULT_DB_BASE


def run_customer_bench(
    options: BenchOptions,
    *,
    output: Path | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        import customer.search  # noqa: F401
    except ImportError:
        print("ims bench: the ims-customer package is not installed here", file=err)
        return 2
    try:
        report = asyncio.run(run_bench(options, out=out))
    except (OSError, BenchRequestError) as exc:
        print(f"ims bench: {exc}", file=err)
        return 1
    print(render_table(report), file=out)
    target = output or find_repo_root() / RESULT_FILE
    append_report(target, report)
    print(f"results appended to {target}", file=out)
    return 0
