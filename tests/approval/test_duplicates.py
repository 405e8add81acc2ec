"""Duplicate candidates, computed when a review is created, on the real database.

Each test works in a province of its own, so the fuzzy matches of other tests' customers
never show up; phones, tax codes and e-mails are random.
"""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from approval.duplicates import MAX_CANDIDATES, MAX_EXACT_ROWS
from approval.handlers import build_handlers
from approval.matchkeys import address_key, name_key
from approval.models import Review
from approval.settings import ApprovalSettings
from shared.events.contracts import (
    CustomerActivatedV1,
    CustomerDeactivatedV1,
    CustomerRejectedV1,
    to_cloud_event,
)
from tests.approval.helpers import (
    Auth,
    customer,
    deliver,
    email,
    phone,
    review_of,
    submission,
    tax_code,
    token,
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
async def engine(service_databases: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(service_databases["approval"])
    yield engine
    await engine.dispose()


@pytest.fixture
def province() -> str:
    return token("P")


async def existing(
    engine: AsyncEngine, full_name: str, *, customer_id: uuid.UUID | None = None, **fields: Any
) -> uuid.UUID:
    """An active customer in the replica, as CustomerActivated leaves it."""
    cid = customer_id or uuid.uuid4()
    code = f"KH{uuid.uuid4().int % 10**6:06d}"
    await deliver(
        engine,
        CustomerActivatedV1(
            customer_id=cid,
            version=3,
            customer_code=code,
            approved_by="NV020",
            approved_at=NOW,
            customer=customer(
                cid,
                version=3,
                status="active",
                customer_code=code,
                full_name=full_name,
                **fields,
            ),
        ),
    )
    return cid


async def duplicates_of(engine: AsyncEngine, customer_id: uuid.UUID) -> list[dict[str, Any]]:
    async with AsyncSession(engine) as session:
        review = await session.scalar(
            select(Review)
            .where(Review.customer_id == customer_id)
            .order_by(Review.customer_version.desc())
            .limit(1)
        )
    assert review is not None
    assert review.has_duplicates == bool(review.duplicates)
    return list(review.duplicates)


async def submit(engine: AsyncEngine, full_name: str, **fields: Any) -> uuid.UUID:
    data = submission(full_name=full_name, **fields)
    await deliver(engine, data)
    return data.customer_id


def by_id(found: list[dict[str, Any]]) -> dict[uuid.UUID, dict[str, Any]]:
    return {uuid.UUID(c["customer_id"]): c for c in found}


def test_match_keys_drop_legal_forms_and_shop_types() -> None:
    assert name_key("Công ty TNHH Minh Phát") == "minh phat"
    assert name_key("CÔNG TY CỔ PHẦN Minh Phát") == "minh phat"
    assert name_key("Cty CP Thương mại - Dịch vụ Minh Phát") == "minh phat"
    assert name_key("Công ty TNHH MTV Minh Phát") == "minh phat"
    assert name_key("Doanh nghiệp tư nhân Minh Phát") == name_key("DNTN Minh Phát")
    assert name_key("Tạp hóa Hải Yến") == name_key("Cửa hàng Hải Yến") == "hai yen"
    assert name_key("Nhà thuốc Đức Minh") == name_key("Đại lý Đức Minh") == "duc minh"
    assert name_key("Siêu thị Minh Quân") == "minh quan"  # 'quân' is a name, not a shop
    assert name_key("Tạp hóa") == ""
    assert address_key("Số 12, đường Lê Lợi, P. Bến Thành") == "12 le loi ben thanh"


async def test_exact_reasons_tax_code_phone_email(engine: AsyncEngine, province: str) -> None:
    tax, tel, mail = tax_code(), phone(), email()
    branch = f"{tax_code()}-002"
    by_tax = await existing(engine, "Hoàng Long", tax_code=tax, province_code=province)
    by_phone = await existing(engine, "Thanh Tâm", phone=tel, province_code=token("P"))
    by_mail = await existing(engine, "Bảo Ngọc", email=mail.upper(), province_code=province)
    by_branch = await existing(engine, "Kim Cúc", tax_code=branch, province_code=province)
    by_all = await existing(
        engine, "Vạn Xuân", tax_code=tax, phone=tel, email=mail, province_code=province
    )
    cid = await submit(
        engine,
        "Tạp hóa Xuân Mai",
        tax_code=tax,
        phone=tel,
        email=mail,
        province_code=province,
    )
    found = await duplicates_of(engine, cid)
    got = by_id(found)
    assert got[by_tax]["reasons"] == ["same_tax_code"]
    assert got[by_phone]["reasons"] == ["same_phone"]  # exact matches ignore the province
    assert got[by_mail]["reasons"] == ["same_email"]  # case-insensitive
    assert set(got[by_all]["reasons"]) == {"same_tax_code", "same_phone", "same_email"}
    assert by_branch not in got
    assert found[0]["customer_id"] == str(by_all)  # most evidence first
    assert [c["score"] for c in found] == sorted((c["score"] for c in found), reverse=True)
    assert got[by_tax]["status"] == "active" and got[by_tax]["full_name"] == "Hoàng Long"
    assert got[by_tax]["customer_code"].startswith("KH")

    # A branch's tax code, typed with or without its dash, is the same code.
    other = await submit(
        engine, "Lan Anh", tax_code=branch.replace("-", " "), province_code=province
    )
    assert [c["customer_id"] for c in await duplicates_of(engine, other)] == [str(by_branch)]


@pytest.mark.parametrize(
    ("existing_name", "submitted_name"),
    [
        ("Công ty TNHH Minh Phát", "Minh Phat"),
        ("Tạp hóa Hải Yến", "Cửa hàng Hải Yến"),
        ("Công ty Cổ phần Thương mại Đông Á", "CTY CP Dong A"),
        ("Nhà thuốc Phúc Khang", "Nha thuoc Phuc Khang 2"),
    ],
)
async def test_similar_names_in_the_same_province_match(
    engine: AsyncEngine, province: str, existing_name: str, submitted_name: str
) -> None:
    old = await existing(
        engine, existing_name, province_code=province, address="12 Nguyễn Trãi, Phường 2"
    )
    cid = await submit(engine, submitted_name, province_code=province, address="45 Lê Lợi")
    found = await duplicates_of(engine, cid)
    assert [c["customer_id"] for c in found] == [str(old)]
    assert found[0]["reasons"] == ["similar_name_address"]
    assert 0.6 <= found[0]["score"] <= 1.0


async def test_the_same_street_raises_the_score(engine: AsyncEngine, province: str) -> None:
    far = await existing(engine, "Minh Phát", province_code=province, address="45 Lê Lợi")
    near = await existing(engine, "Minh Phát", province_code=province, address="Số 12 Nguyễn Trãi")
    cid = await submit(engine, "Minh Phát", province_code=province, address="12 Nguyen Trai")
    found = by_id(await duplicates_of(engine, cid))
    assert found[near]["score"] > found[far]["score"]


@pytest.mark.parametrize(
    ("existing_name", "submitted_name"),
    [
        ("Công ty TNHH Minh Phát", "Hoàng Long"),  # unrelated
        ("Công ty TNHH Minh Phát", "Tạp hóa Minh"),  # one common word alone
        ("Công ty TNHH Minh Phát", "Phát Đạt"),
        ("Tạp hóa Hải Yến", "Tạp hóa Thu Yến"),
        ("Nguyễn Văn An", "Nguyễn Văn Bình"),  # a shared family and middle name
        ("Tạp hóa Hồng Nhung", "Tạp hóa"),  # nothing but the shop type
        ("Cửa hàng Bách Hóa", "Cửa hàng Hóa"),
    ],
)
async def test_different_names_do_not_match(
    engine: AsyncEngine, province: str, existing_name: str, submitted_name: str
) -> None:
    await existing(engine, existing_name, province_code=province, address="12 Nguyễn Trãi")
    cid = await submit(engine, submitted_name, province_code=province, address="45 Lê Lợi")
    assert await duplicates_of(engine, cid) == []


async def test_the_same_name_in_another_province_is_another_shop(engine: AsyncEngine) -> None:
    await existing(engine, "Tạp hóa Diệu Linh", province_code=token("P"))
    cid = await submit(engine, "Tạp hóa Diệu Linh", province_code=token("P"))
    assert await duplicates_of(engine, cid) == []


async def test_a_legacy_address_counts_in_its_2025_province(
    engine: AsyncEngine, province: str
) -> None:
    old = await existing(
        engine,
        "Tạp hóa Thảo Nguyên",
        admin_scheme="legacy",
        province_code=token("L"),  # a pre-2025 province, merged into `province`
        admin_2025={"province_code": province, "ward_codes": [], "ambiguous": False},
    )
    cid = await submit(engine, "Thảo Nguyên", province_code=province)
    assert [c["customer_id"] for c in await duplicates_of(engine, cid)] == [str(old)]


async def test_pending_and_inactive_customers_are_candidates_rejected_never(
    engine: AsyncEngine, auth_header: Auth, approval_api: httpx.AsyncClient, province: str
) -> None:
    tel = phone()
    pending = await submit(engine, "Cửa hàng Quang Vinh", phone=tel, province_code=province)
    closed = await existing(engine, "Quang Vinh", province_code=province)
    await deliver(
        engine,
        CustomerDeactivatedV1(
            customer_id=closed,
            version=4,
            by="NV020",
            at=NOW,
            customer=customer(
                closed, version=4, status="inactive", full_name="Quang Vinh", province_code=province
            ),
        ),
    )
    refused = await submit(engine, "Quang Vinh", phone=tel, province_code=province)
    refused_review = await review_of(approval_api, auth_header, refused)
    response = await approval_api.post(
        f"/api/v1/reviews/{refused_review['id']}/reject",
        json={"reason": "Trùng", "reason_code": "duplicate"},
        headers=auth_header("cs1"),
    )
    assert response.status_code == 200
    # The customer service answers the rejection with CustomerRejected.
    await deliver(
        engine,
        CustomerRejectedV1(
            customer_id=refused, version=3, reason="x", rejected_by="NV020", rejected_at=NOW
        ),
    )
    cid = await submit(engine, "Tạp hóa Quang Vinh", phone=tel, province_code=province)
    found = by_id(await duplicates_of(engine, cid))
    assert set(found) == {pending, closed}
    assert found[pending]["status"] == "pending"
    assert set(found[pending]["reasons"]) == {"same_phone", "similar_name_address"}
    assert found[closed]["status"] == "inactive"
    assert found[closed]["reasons"] == ["similar_name_address"]


async def test_a_customer_never_matches_itself(engine: AsyncEngine, province: str) -> None:
    tel, tax = phone(), tax_code()
    cid = uuid.uuid4()
    same = {"full_name": "Đại lý Tân Phú", "phone": tel, "tax_code": tax, "province_code": province}
    await deliver(engine, submission(cid, 2, **same))
    assert await duplicates_of(engine, cid) == []
    await deliver(engine, submission(cid, 4, **same))  # its replica row is pending now
    assert await duplicates_of(engine, cid) == []


async def test_at_most_ten_candidates_best_first(engine: AsyncEngine, province: str) -> None:
    tel = phone()
    for i in range(MAX_CANDIDATES + 3):
        await existing(engine, f"Hồng Hà {i}", phone=tel, province_code=province)
    best = await existing(engine, "Hồng Hà", phone=tel, province_code=province)
    cid = await submit(engine, "Tạp hóa Hồng Hà", phone=tel, province_code=province)
    found = await duplicates_of(engine, cid)
    assert len(found) == MAX_CANDIDATES
    assert found[0]["customer_id"] == str(best)


async def test_a_shared_hotline_keeps_the_customer_whose_name_is_alike(
    engine: AsyncEngine, province: str
) -> None:
    """More customers share the phone than the exact query reads: the one whose name is
    also alike must survive the cut, even with the id that sorts last (and in another
    province, so only the phone finds it)."""
    tel = phone()
    for i in range(MAX_EXACT_ROWS + 5):
        await existing(engine, f"Đại lý số {i} Quang Trung", phone=tel, province_code="79")
    last_id = uuid.UUID("ffffffff-ffff-4fff-bfff-" + uuid.uuid4().hex[:12])
    twin = await existing(
        engine, "Nhà thuốc Thanh Bình", customer_id=last_id, phone=tel, province_code="79"
    )
    cid = await submit(engine, "Nhà thuốc Thanh Bình", phone=tel, province_code=province)
    found = await duplicates_of(engine, cid)
    assert found[0]["customer_id"] == str(twin)


async def test_a_redelivered_submission_is_not_recomputed(
    engine: AsyncEngine, province: str
) -> None:
    data = submission(full_name="Tạp hóa Ngọc Lan", province_code=province)
    await deliver(engine, data)
    before = await duplicates_of(engine, data.customer_id)
    await existing(engine, "Ngọc Lan", province_code=province)  # a duplicate appears later
    await deliver(engine, data)  # redelivered
    assert await duplicates_of(engine, data.customer_id) == before == []
    async with AsyncSession(engine) as session:
        reviews = (
            await session.scalars(select(Review).where(Review.customer_id == data.customer_id))
        ).all()
    assert len(reviews) == 1


async def test_the_api_shows_the_candidates(
    engine: AsyncEngine, approval_api: httpx.AsyncClient, auth_header: Auth, province: str
) -> None:
    tax = tax_code()
    old = await existing(engine, "Công ty TNHH Minh Phát", tax_code=tax, province_code=province)
    cid = await submit(engine, "Minh Phát", tax_code=tax, province_code=province)
    review = await review_of(approval_api, auth_header, cid)
    assert review["has_duplicates"] is True
    [candidate] = review["duplicates"]
    assert candidate["customer_id"] == str(old)
    assert candidate["full_name"] == "Công ty TNHH Minh Phát"
    assert candidate["status"] == "active" and candidate["customer_code"].startswith("KH")
    assert set(candidate["reasons"]) == {"same_tax_code", "similar_name_address"}
    assert 0.95 < candidate["score"] <= 1.0
    one = await approval_api.get(f"/api/v1/reviews/{review['id']}", headers=auth_header("cs1"))
    assert one.json()["duplicates"] == review["duplicates"]


async def test_submissions_applied_in_one_transaction_each_get_their_candidates(
    engine: AsyncEngine, province: str
) -> None:
    """A consumer applies a whole fetch in one transaction (ADR 0015): the similarity
    threshold is raised once per transaction, and again in the session's next one."""
    shop = await existing(engine, "Tạp hóa Minh Phát", province_code=province)
    first, second = (
        submission(full_name="Cửa hàng Minh Phát", province_code=province),
        submission(full_name="Tạp hóa Minh Phat", province_code=province),
    )
    handler = build_handlers(ApprovalSettings())[first.TYPE]
    async with AsyncSession(engine) as session:
        async with session.begin():
            await handler(session, to_cloud_event(first))
            await handler(session, to_cloud_event(second))
        async with session.begin():
            # A new transaction starts from the server's default threshold (0.3)...
            assert await session.scalar(text("SHOW pg_trgm.similarity_threshold")) == "0.3"
            third = submission(full_name="Minh Phát", province_code=province)
            await handler(session, to_cloud_event(third))
            # ...and the duplicate search raises it again for its index scan.
            assert await session.scalar(text("SHOW pg_trgm.similarity_threshold")) == "0.51"
    assert str(shop) in {c["customer_id"] for c in await duplicates_of(engine, first.customer_id)}
    async with AsyncSession(engine) as session:
        created = [
            await session.scalar(select(Review.created_at).where(Review.customer_id == cid))
            for cid in (first.customer_id, second.customer_id)
        ]
    assert created[0] < created[1]  # the queue's oldest-first order, within one transaction
    # Each later submission also finds the pending ones before it.
    second_found = {c["customer_id"] for c in await duplicates_of(engine, second.customer_id)}
    assert {str(shop), str(first.customer_id)} <= second_found
    third_found = {c["customer_id"] for c in await duplicates_of(engine, third.customer_id)}
    assert {str(shop), str(first.customer_id), str(second.customer_id)} <= third_found
