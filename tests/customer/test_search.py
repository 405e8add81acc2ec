"""`customer.search.search_customers` on the real database, called directly.

Each test makes its own customers with an owner (or a word) no other test uses and
filters or searches on it, so the shared test database's other customers never get in
the way. Some customers are made through the API (`customer_api`), so that what is
searched is what the service really stores (E.164 phones, its `search_text`); the others
are inserted with the service's own `search_text`, to set codes and statuses directly.
"""

import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import ColumnElement, true
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from customer.access import visibility_filter
from customer.models import Customer
from customer.search import (
    CustomerFilters,
    parse_query,
    relevance_statements,
    search_customers,
)
from customer.service import search_text
from shared.auth.principal import Principal
from shared.errors import ProblemError

Auth = Callable[[str], dict[str, str]]
EVERYONE = true()


@pytest.fixture(scope="module")
async def engine(service_databases: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(service_databases["customer"])
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def owner() -> str:
    """An owner no other test's customers have: filtering on it isolates the test."""
    return f"T{uuid.uuid4().hex[:10]}"


def unique_code(prefix: str = "KT") -> str:
    return f"{prefix}{uuid.uuid4().int % 10**9:09d}"


_clock = datetime(2026, 1, 1, tzinfo=UTC)


async def add(session: AsyncSession, owner: str, full_name: str, **fields: Any) -> Customer:
    """Insert a customer as the service would store it (its own `search_text`)."""
    global _clock
    _clock += timedelta(seconds=1)
    customer = Customer(
        id=uuid.uuid4(),
        full_name=full_name,
        status=fields.pop("status", "active"),
        version=1,
        admin_scheme="2025",
        owner_employee_id=owner,
        sales_unit_code=fields.pop("sales_unit_code", "HN-T1"),
        created_by=owner,
        created_at=fields.pop("created_at", _clock),
        updated_at=_clock,
        delivery_addresses=[],
        invoice_profiles=[],
        **fields,
    )
    customer.search_text = search_text(customer)
    session.add(customer)
    await session.commit()
    return customer


async def search(
    session: AsyncSession,
    q: str | None,
    *,
    visibility: ColumnElement[bool] = EVERYONE,
    limit: int = 50,
    cursor: str | None = None,
    **filters: str | None,
) -> tuple[list[Customer], str | None]:
    return await search_customers(
        session,
        visibility=visibility,
        filters=CustomerFilters(**filters),  # type: ignore[typeddict-item]
        q=q,
        limit=limit,
        cursor=cursor,
    )


async def names(session: AsyncSession, q: str | None, owner: str, **kw: Any) -> list[str]:
    items, _ = await search(session, q, owner_employee_id=owner, **kw)
    return [c.full_name for c in items]


async def every_page(
    session: AsyncSession, q: str | None, *, limit: int, **filters: Any
) -> list[uuid.UUID]:
    """All pages of a search, following the cursors; the ids in order."""
    ids: list[uuid.UUID] = []
    cursor = None
    for _ in range(100):
        items, cursor = await search(session, q, limit=limit, cursor=cursor, **filters)
        assert len(items) <= limit
        ids += [c.id for c in items]
        if cursor is None:
            return ids
        assert len(items) == limit  # only a full page has a next one
    raise AssertionError("the cursors never ended")


# ---- matching ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "q", ["Đức", "đức", "ĐỨC", "duc", "DUC", "Duc", "dúc", "  đức  ", "Tạp hóa Đức", "tap hoa duc"]
)
async def test_q_is_accent_and_case_insensitive(session: AsyncSession, owner: str, q: str) -> None:
    await add(session, owner, "Tạp hóa Đức")
    await add(session, owner, "Nhà thuốc Minh")
    assert await names(session, q, owner) == ["Tạp hóa Đức"]


async def test_nguyen_matches_every_spelling(session: AsyncSession, owner: str) -> None:
    await add(session, owner, "Nguyễn Văn An")
    await add(session, owner, "NGUYỄN THỊ BÌNH")
    await add(session, owner, "Trần Văn Cường")
    found = await names(session, "nguyen", owner)
    assert sorted(found) == ["NGUYỄN THỊ BÌNH", "Nguyễn Văn An"]
    assert await names(session, "Nguyễn văn an", owner) == ["Nguyễn Văn An"]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("Minh Phát", "by name"),
        ("Thương mại Hòa Bình", "by company"),
        ("ketoan.hoabinh", "by email"),
        ("ketoan.hoabinh@hoabinh.vn", "by email"),
        ("HOABINH.VN", "by email"),
        ("0314409058", "by tax code"),
        ("0314409058-002", "by branch tax code"),
        ("0314409058 002", "by branch tax code"),
        ("0314409058002", "by branch tax code"),
    ],
)
async def test_each_field_is_searched(
    session: AsyncSession, owner: str, q: str, expected: str
) -> None:
    await add(session, owner, "by name", company_name="Cửa hàng Minh Phát")
    await add(session, owner, "by company", company_name="Công ty TNHH Thương mại Hòa Bình")
    await add(session, owner, "by email", email="ketoan.hoabinh@hoabinh.vn")
    await add(session, owner, "by tax code", tax_code="0314409058")
    await add(session, owner, "by branch tax code", tax_code="0314409058-002")
    found = await names(session, q, owner)
    assert found[0] == expected, found


async def test_customer_code_is_searched_exactly_and_in_part(
    session: AsyncSession, owner: str
) -> None:
    code = unique_code()
    await add(session, owner, "coded", customer_code=code)
    await add(session, owner, "draft without code", status="draft")
    assert await names(session, code, owner) == ["coded"]
    assert await names(session, code.lower(), owner) == ["coded"]
    assert await names(session, code[:-2], owner) == ["coded"]  # a code being typed
    assert await names(session, "KT0", owner, status="draft") == []


async def test_misa_code_is_searched(session: AsyncSession, owner: str) -> None:
    await add(session, owner, "linked", misa_code="MISA-KH-00042")
    assert await names(session, "misa-kh-00042", owner) == ["linked"]


@pytest.mark.parametrize(
    "q",
    [
        "0912345678",
        "0912 345 678",
        "0912.345.678",
        "0912-345-678",
        "(091) 234 5678",
        "+84912345678",
        "+84 912 345 678",
        "84912345678",
        "912345678",
        "0912345",  # being typed
        "345678",
    ],
)
async def test_phone_in_any_format_finds_the_stored_e164_number(
    customer_api: httpx.AsyncClient,
    auth_header: Auth,
    session: AsyncSession,
    q: str,
) -> None:
    tag = uuid.uuid4().hex[:8]
    created = await customer_api.post(
        "/api/v1/customers",
        json={"full_name": f"Tạp hóa Phone {tag}", "phone": "0912 345 678"},
        headers=auth_header("sales2"),
    )
    assert created.status_code == 201, created.text
    assert created.json()["phone"] == "+84912345678"
    other = await customer_api.post(
        "/api/v1/customers",
        json={"full_name": f"Tạp hóa Other {tag}", "phone": "0987 654 321"},
        headers=auth_header("sales2"),
    )
    assert other.status_code == 201
    items, _ = await search(session, q, owner_employee_id="NV002", limit=200)
    mine = [c.full_name for c in items if tag in c.full_name]
    assert mine == [f"Tạp hóa Phone {tag}"]


async def test_landline_in_any_format(session: AsyncSession, owner: str) -> None:
    await add(session, owner, "landline", phone="+842438251234")
    for q in ("024 3825 1234", "(024) 38251234", "+84 24 3825 1234", "38251234"):
        assert await names(session, q, owner) == ["landline"], q


async def test_words_match_in_any_order_and_short_words_start_a_word(
    session: AsyncSession, owner: str
) -> None:
    await add(session, owner, "Tạp hóa Minh Châu")
    await add(session, owner, "Đại lý An Khang")
    await add(session, owner, "Nhà thuốc Thanh Hà")
    assert await names(session, "chau minh", owner) == ["Tạp hóa Minh Châu"]
    assert await names(session, "khang an", owner) == ["Đại lý An Khang"]
    # 'an' stands for a word starting with 'an', not for the 'an' inside 'Thanh'.
    assert await names(session, "thuoc an", owner) == []
    assert await names(session, "ha thanh", owner) == ["Nhà thuốc Thanh Hà"]


async def test_a_q_of_short_words_matches_name_prefixes(session: AsyncSession, owner: str) -> None:
    await add(session, owner, "Đỗ Văn Nam")
    await add(session, owner, "Phạm Đô")
    assert await names(session, "đo", owner) == ["Đỗ Văn Nam"]
    assert await names(session, "Đỗ V", owner) == ["Đỗ Văn Nam"]


@pytest.mark.parametrize("q", ["%", "_", "\\", "50%", "a_b", "%%%", "' or 1=1 --"])
async def test_like_wildcards_and_quotes_are_literal(
    session: AsyncSession, owner: str, q: str
) -> None:
    await add(session, owner, "Cửa hàng ABC")
    await add(session, owner, "Giảm 50% hôm nay")
    found = await names(session, q, owner)
    assert found == (["Giảm 50% hôm nay"] if q == "50%" else [])


@pytest.mark.parametrize("q", [None, "", "   ", "\u0301"])
async def test_no_q_lists_newest_first(session: AsyncSession, owner: str, q: str | None) -> None:
    for name in ("oldest", "middle", "newest"):
        await add(session, owner, name)
    assert await names(session, q, owner) == ["newest", "middle", "oldest"]


# ---- relevance ---------------------------------------------------------------------------


async def test_relevance_exact_then_name_prefix_then_word_prefix_then_similarity(
    session: AsyncSession, owner: str
) -> None:
    await add(session, owner, "Châu Minh Anh")  # both words, not as a phrase
    await add(session, owner, "Tạp hóa Minh Châu")  # the phrase starts a word
    await add(session, owner, "Đại lý Phương", company_name="Công ty TNHH Minh Châu Long")
    await add(session, owner, "Minh Châu Phát")  # the name starts with it
    await add(session, owner, "Minh Châu")  # the name starts with it
    await add(session, owner, "Nhà thuốc Hạnh")  # no match
    assert await names(session, "Minh Châu", owner) == [
        "Minh Châu",  # name prefixes, alphabetically
        "Minh Châu Phát",
        "Tạp hóa Minh Châu",  # word prefixes, most similar (shortest text) first
        "Đại lý Phương",
        "Châu Minh Anh",  # the words in another order
    ]


async def test_exact_code_phone_and_tax_code_rank_first(session: AsyncSession, owner: str) -> None:
    code = unique_code()
    await add(session, owner, f"{code} kho 2")  # name prefix
    await add(session, owner, "email", email=f"{code.lower()}@example.vn")  # word prefix
    await add(session, owner, "exact", customer_code=code)
    assert await names(session, code, owner) == ["exact", f"{code} kho 2", "email"]

    await add(session, owner, "branch", tax_code="0100109106-001")
    await add(session, owner, "head office", tax_code="0100109106")
    assert await names(session, "0100109106", owner) == ["head office", "branch"]
    assert (await names(session, "0100109106 001", owner))[0] == "branch"

    await add(session, owner, "digits in the email", email="0987654321abc@example.vn")
    await add(session, owner, "phone", phone="+84987654321")
    assert await names(session, "0987 654 321", owner) == ["phone", "digits in the email"]


async def test_similarity_orders_within_a_tier(session: AsyncSession, owner: str) -> None:
    await add(
        session,
        owner,
        "Công ty Cổ phần Thương mại và Dịch vụ Xuất nhập khẩu Hưng Thịnh",
        email="ketoan@hungthinh.vn",
    )
    await add(session, owner, "Tạp hóa Hưng Thịnh")
    await add(session, owner, "Cửa hàng Hưng Thịnh Phát")
    assert await names(session, "hung thinh", owner) == [
        "Tạp hóa Hưng Thịnh",
        "Cửa hàng Hưng Thịnh Phát",
        "Công ty Cổ phần Thương mại và Dịch vụ Xuất nhập khẩu Hưng Thịnh",
    ]


# ---- filters and visibility --------------------------------------------------------------


async def test_filters_combine_with_q(session: AsyncSession, owner: str) -> None:
    await add(session, owner, "Tạp hóa Lan", status="active", province_code="01")
    await add(session, owner, "Tạp hóa Lan Anh", status="draft", province_code="01")
    await add(session, owner, "Tạp hóa Lan Hương", status="active", province_code="79")
    await add(
        session, owner, "Nhà thuốc Lan", status="active", province_code="01", channel_code="GT-NT"
    )
    found = await names(session, "lan", owner, status="active", province_code="01")
    assert found == ["Tạp hóa Lan", "Nhà thuốc Lan"] or found == ["Nhà thuốc Lan", "Tạp hóa Lan"]
    assert await names(session, "tap hoa lan", owner, status="active", province_code="01") == [
        "Tạp hóa Lan"
    ]
    assert await names(session, "lan", owner, channel_code="GT-NT") == ["Nhà thuốc Lan"]
    assert await names(session, "lan", owner, customer_group_code="NONE") == []
    assert await names(session, None, owner, province_code="79") == ["Tạp hóa Lan Hương"]


async def test_unknown_filter_is_a_programming_error(session: AsyncSession) -> None:
    with pytest.raises(ValueError, match="unknown customer filter"):
        await search_customers(
            session,
            visibility=EVERYONE,
            filters={"phone": "x"},  # type: ignore[typeddict-unknown-key]
            q=None,
            limit=1,
            cursor=None,
        )


def principal(employee_id: str, *roles: str, unit: str | None = None) -> Principal:
    return Principal(employee_id=employee_id, name="Test", roles=frozenset(roles), sales_unit=unit)


async def test_visibility_still_applies_to_q_and_to_every_tier(session: AsyncSession) -> None:
    word = f"vis{uuid.uuid4().hex[:8]}"
    mine, theirs = f"S{uuid.uuid4().hex[:8]}", f"S{uuid.uuid4().hex[:8]}"
    code = unique_code()
    await add(session, mine, f"Tạp hóa {word} Một", sales_unit_code="HN-T1")
    await add(session, theirs, f"{word} Hai", sales_unit_code="HCM-T1", customer_code=code)
    await add(session, theirs, f"Cửa hàng {word} Ba", sales_unit_code="HN-T2", phone="+84911222333")

    async def visible(who: Principal, q: str) -> list[str]:
        items, _ = await search(session, q, visibility=await visibility_filter(session, who))
        return sorted(c.full_name for c in items)

    sales = principal(mine, "sales")
    assert await visible(sales, word) == [f"Tạp hóa {word} Một"]
    assert await visible(sales, code) == []  # not even an exact code match
    assert await visible(sales, "0911 222 333") == []
    manager = principal("NV010", "sales_manager", unit="MB-HN")  # HN-T1 and HN-T2
    assert await visible(manager, word) == [f"Cửa hàng {word} Ba", f"Tạp hóa {word} Một"]
    assert await visible(manager, "0911222333") == [f"Cửa hàng {word} Ba"]
    cs = principal("NV020", "cs")
    assert await visible(cs, word) == [f"Cửa hàng {word} Ba", f"Tạp hóa {word} Một", f"{word} Hai"]
    assert await visible(cs, code) == [f"{word} Hai"]
    assert await visible(principal("X", "nobody"), word) == []


# ---- paging ------------------------------------------------------------------------------


async def test_relevance_cursor_pages_through_every_tier_without_gaps_or_repeats(
    session: AsyncSession, owner: str
) -> None:
    code = unique_code()
    await add(session, owner, "exact", customer_code=code)
    for i in range(4):
        await add(session, owner, f"{code} kho {i}")  # name prefix
    for i in range(3):
        await add(session, owner, f"Tạp hóa {i}", email=f"{code.lower()}.{i}@example.vn")
    for _ in range(3):  # the same text three times: ties broken by id
        await add(session, owner, "twin", email=f"x.{code.lower()}@example.vn")
    whole, cursor = await search(session, code, owner_employee_id=owner)
    assert cursor is None and len(whole) == 11
    assert whole[0].full_name == "exact"
    for limit in (1, 2, 3, 4, 10, 11, 12):
        assert await every_page(session, code, limit=limit, owner_employee_id=owner) == [
            c.id for c in whole
        ], limit


async def test_relevance_cursor_is_stable_when_customers_are_added(
    session: AsyncSession, owner: str
) -> None:
    for name in ("Lan Anh", "Lan Chi", "Tạp hóa Lan", "Đại lý Lan"):
        await add(session, owner, name)
    first, cursor = await search(session, "lan", limit=2, owner_employee_id=owner)
    assert [c.full_name for c in first] == ["Lan Anh", "Lan Chi"]
    await add(session, owner, "Lan Ánh")  # sorts before the cursor: not repeated, not seen
    rest, _ = await search(session, "lan", limit=10, cursor=cursor, owner_employee_id=owner)
    assert sorted(c.full_name for c in rest) == ["Tạp hóa Lan", "Đại lý Lan"]


async def test_newest_first_cursor_pages_with_ties_on_the_time(
    session: AsyncSession, owner: str
) -> None:
    same = datetime(2026, 6, 1, tzinfo=UTC)
    made = [await add(session, owner, f"c{i}", created_at=same) for i in range(4)]
    made += [await add(session, owner, f"d{i}") for i in range(3)]
    expected = [c.id for c in sorted(made, key=lambda c: (c.created_at, c.id), reverse=True)]
    for limit in (1, 2, 3, 7, 8):
        assert await every_page(session, None, limit=limit, owner_employee_id=owner) == expected


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


async def test_bad_cursors_are_the_shared_400(session: AsyncSession, owner: str) -> None:
    for i in range(3):
        await add(session, owner, f"Tạp hóa Cursor {i}", email=f"cursor{i}@example.vn")
    _, newest_cursor = await search(session, None, limit=1, owner_employee_id=owner)
    _, relevance_cursor = await search(session, "cursor", limit=1, owner_employee_id=owner)
    _, tier3_cursor = await search(session, "example cursor", limit=1, owner_employee_id=owner)
    assert newest_cursor and relevance_cursor and tier3_cursor
    fingerprint = json.loads(base64.urlsafe_b64decode(relevance_cursor + "=="))[1]
    some_id = str(uuid.uuid4())
    cases: list[tuple[str | None, str]] = [
        ("cursor", "garbage"),
        ("cursor", "%%%"),
        ("cursor", "é"),
        ("cursor", newest_cursor),  # a cursor of the other order
        (None, relevance_cursor),
        ("other", relevance_cursor),  # made for another q
        ("cursor", tier3_cursor),
        ("cursor", _b64(["q", fingerprint, 9, None, some_id])),
        ("cursor", _b64(["q", fingerprint, 2, None, some_id])),
        ("cursor", _b64(["q", fingerprint, 1, 0.5, some_id])),
        ("cursor", _b64(["q", fingerprint, True, None, some_id])),
        ("cursor", _b64(["q", fingerprint, 1, None, "not-a-uuid"])),
        ("cursor", _b64(["q", fingerprint, 1, None])),
        ("cursor", _b64({"q": fingerprint})),
        ("cursor", _b64(["x", fingerprint, 1, None, some_id])),
        (
            "cursor",
            base64.urlsafe_b64encode(
                b'["q", "%s", 2, NaN, "%s"]' % (fingerprint.encode(), some_id.encode())
            ).decode(),
        ),
    ]
    for q, cursor in cases:
        with pytest.raises(ProblemError) as caught:
            await search(session, q, limit=1, cursor=cursor, owner_employee_id=owner)
        problem = caught.value
        assert (problem.status, problem.type_slug) == (400, "invalid-cursor"), (q, cursor)
        assert [e.field for e in problem.errors] == ["cursor"]


async def test_same_q_spelled_differently_keeps_its_cursor(
    session: AsyncSession, owner: str
) -> None:
    for i in range(3):
        await add(session, owner, f"Tạp hóa Đức {i}")
    first, cursor = await search(session, "Tạp hóa Đức", limit=2, owner_employee_id=owner)
    rest, _ = await search(session, "tap hoa  duc", limit=2, cursor=cursor, owner_employee_id=owner)
    assert [c.full_name for c in first + rest] == [f"Tạp hóa Đức {i}" for i in range(3)]


# ---- the plans use the indexes -----------------------------------------------------------


#: On a small table, either index on `search_text` can stand in for the other.
TEXT_INDEXES = {"ix_customers_search_prefix", "ix_customers_search_trgm"}


@pytest.mark.parametrize(
    ("q", "index"),
    [
        ("nguyen van an", "ix_customers_search_prefix"),
        ("nguyen van an", "ix_customers_search_trgm"),
        ("0912 345 678", "ix_customers_phone"),
        ("0314409058-002", "ix_customers_tax_code"),
        ("KH000123", "uq_customers_customer_code"),
    ],
)
async def test_every_statement_can_use_its_index(session: AsyncSession, q: str, index: str) -> None:
    """Sargable: with sequential scans priced out, and the other index on `search_text`
    dropped inside the transaction (rolled back), a statement of the search reads `index`.
    (The benchmark shows the plans the planner picks by itself on a large table.)"""
    terms = parse_query(q)
    assert terms is not None
    plans = []
    async with session.begin():
        connection = await session.connection()
        await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        for other in sorted(TEXT_INDEXES - {index}):
            await connection.exec_driver_sql(f"DROP INDEX {other}")
        for statement in relevance_statements(terms, visibility=EVERYONE, filters={}, after=None):
            sql = statement(51).compile(
                dialect=connection.dialect, compile_kwargs={"literal_binds": True}
            )
            rows = await connection.exec_driver_sql(f"EXPLAIN {sql}")
            plans.append("\n".join(r[0] for r in rows))
        await session.rollback()
    assert any(index in plan for plan in plans), "\n\n".join(plans)
