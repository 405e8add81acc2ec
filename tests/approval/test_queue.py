"""The CS queue (approval.queries and GET /api/v1/reviews) and reject reason codes.

Each test gives its reviews a sales unit of its own and filters on it, so the other
tests' reviews in the shared database never get in the way.
"""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from approval import queries
from approval.queries import ReviewFilters
from approval.service import ReviewService
from approval.settings import ApprovalSettings
from shared.auth.principal import Principal
from shared.errors import ProblemError
from tests.approval.helpers import Auth, deliver, review_of, submission, token


@pytest.fixture(scope="module")
async def engine(service_databases: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(service_databases["approval"])
    yield engine
    await engine.dispose()


@pytest.fixture
def unit() -> str:
    return token("SU")


async def submit(engine: AsyncEngine, unit: str, full_name: str, **fields: Any) -> uuid.UUID:
    data = submission(full_name=full_name, sales_unit_code=unit, province_code=token("P"), **fields)
    await deliver(engine, data)
    return data.customer_id


async def listed(
    api: httpx.AsyncClient, auth: Auth, **params: Any
) -> tuple[list[dict[str, Any]], str | None]:
    response = await api.get("/api/v1/reviews", params=params, headers=auth("cs1"))
    assert response.status_code == 200, response.text
    body = response.json()
    return body["items"], body["next_cursor"]


# ---- reject reasons ---------------------------------------------------------------------


async def test_reject_reasons_are_listed_in_the_callers_language(
    approval_api: httpx.AsyncClient, auth_header: Auth
) -> None:
    url = "/api/v1/reviews/reject-reasons"
    english = (await approval_api.get(url, headers=auth_header("cs1"))).json()
    codes = [r["code"] for r in english]
    assert {"missing_documents", "invalid_tax_code", "duplicate", "wrong_address", "other"} <= set(
        codes
    )
    assert codes[-1] == "other"
    tax = next(r for r in english if r["code"] == "invalid_tax_code")
    assert tax["label"] == tax["label_en"] == "Invalid tax code"
    assert tax["label_vi"] == "Mã số thuế không hợp lệ"
    vi = (
        await approval_api.get(url, headers={**auth_header("cs1"), "Accept-Language": "vi"})
    ).json()
    assert next(r for r in vi if r["code"] == "invalid_tax_code")["label"] == tax["label_vi"]
    assert (await approval_api.get(url, headers=auth_header("sales1"))).status_code == 403
    assert (await approval_api.get(url)).status_code == 401


async def test_a_reason_code_is_stored_apart_from_the_free_text(
    engine: AsyncEngine, approval_api: httpx.AsyncClient, auth_header: Auth, unit: str
) -> None:
    cid = await submit(engine, unit, "Tạp hóa Mai Anh")
    review = await review_of(approval_api, auth_header, cid)
    url = f"/api/v1/reviews/{review['id']}/reject"
    unknown = await approval_api.post(
        url, json={"reason": "Sai", "reason_code": "TAX"}, headers=auth_header("cs1")
    )
    assert unknown.status_code == 422
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in unknown.json()["errors"]] == ["reason_code"]
    vi = await approval_api.post(
        url,
        json={"reason": "Sai", "reason_code": "nope"},
        headers={**auth_header("cs1"), "Accept-Language": "vi"},
    )
    assert vi.status_code == 422 and vi.json()["errors"][0]["message"].startswith("Phải là")
    assert (await review_of(approval_api, auth_header, cid))["status"] == "pending"

    done = await approval_api.post(
        url,
        json={"reason": "MST không khớp giấy phép", "reason_code": "invalid_tax_code"},
        headers=auth_header("cs1"),
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "rejected" and body["reason_code"] == "invalid_tax_code"
    assert body["reason"] == "MST không khớp giấy phép"
    async with engine.connect() as conn:
        payload = (
            await conn.execute(
                text("SELECT payload FROM outbox WHERE key = :k AND event_type = :t"),
                {"k": str(cid), "t": "ims.approval.CustomerRejected.v1"},
            )
        ).scalar_one()
    # What the salesperson reads: the code's label, then the free text.
    assert payload["reason"] == "Mã số thuế không hợp lệ: MST không khớp giấy phép"
    assert payload["reason_code"] == "invalid_tax_code"


async def test_a_rejection_without_a_code_carries_the_text_alone(
    engine: AsyncEngine, approval_api: httpx.AsyncClient, auth_header: Auth, unit: str
) -> None:
    cid = await submit(engine, unit, "Tạp hóa Bích Ngọc")
    review = await review_of(approval_api, auth_header, cid)
    done = await approval_api.post(
        f"/api/v1/reviews/{review['id']}/reject",
        json={"reason": "Thiếu giấy phép kinh doanh", "reason_code": ""},
        headers=auth_header("cs1"),
    )
    assert done.status_code == 200 and done.json()["reason_code"] is None
    async with engine.connect() as conn:
        payload = (
            await conn.execute(text("SELECT payload FROM outbox WHERE key = :k"), {"k": str(cid)})
        ).scalar_one()
    assert payload["reason"] == "Thiếu giấy phép kinh doanh"


# ---- the queue over the API ---------------------------------------------------------------


async def test_q_is_accent_insensitive_over_name_company_code_phone_and_tax_code(
    engine: AsyncEngine, approval_api: httpx.AsyncClient, auth_header: Auth, unit: str
) -> None:
    yen = await submit(
        engine, unit, "Tạp hóa Hải Yến", phone="+84912000111", tax_code="0314409058-002"
    )
    duc = await submit(engine, unit, "Nhà thuốc Đức Thành", company_name="Công ty Dược Sài Gòn")
    await submit(engine, unit, "Cửa hàng Hoa Mai")

    async def found(q: str) -> set[str]:
        items, _ = await listed(approval_api, auth_header, sales_unit=unit, q=q)
        return {i["customer_id"] for i in items}

    assert await found("hai yen") == {str(yen)}
    assert await found("HẢI   yến") == {str(yen)}
    assert await found("yen hai") == {str(yen)}  # words in any order
    assert await found("duc thanh") == {str(duc)}
    assert await found("duoc sai gon") == {str(duc)}  # the company name
    assert await found("0912 000 111") == {str(yen)}  # the local form of the phone
    assert await found("+84912000111") == {str(yen)}
    assert await found("0314409058002") == {str(yen)}  # the tax code without its dash
    assert await found("0314409058-002") == {str(yen)}
    assert await found("nguyen") == set()
    assert len(await found("   ")) == 3  # nothing to search for: no filter
    assert await found("50%_") == set()  # LIKE wildcards are literal


async def test_filters_and_oldest_first_paging(
    engine: AsyncEngine, approval_api: httpx.AsyncClient, auth_header: Auth, unit: str
) -> None:
    ids = [await submit(engine, unit, f"Tạp hóa Số {i}") for i in range(5)]
    by_other = await submit(engine, unit, "Tạp hóa Người Khác")
    # submitted by someone else
    other = submission(full_name="Đại lý Khác", sales_unit_code=unit, by="NV099")
    await deliver(engine, other)
    change = submission(
        full_name="Đại lý Đổi",
        sales_unit_code=unit,
        kind="change",
        changes={"credit_days": {"old": 7, "new": 30}},
    )
    await deliver(engine, change)

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"sales_unit": unit, "status": "pending", "limit": 3}
        if cursor:
            params["cursor"] = cursor
        items, cursor = await listed(approval_api, auth_header, **params)
        seen += [i["customer_id"] for i in items]
        pages += 1
        if cursor is None:
            break
    assert pages == 3
    assert seen == [str(c) for c in [*ids, by_other, other.customer_id, change.customer_id]]

    items, _ = await listed(approval_api, auth_header, sales_unit=unit, submitted_by="NV099")
    assert [i["customer_id"] for i in items] == [str(other.customer_id)]
    items, _ = await listed(approval_api, auth_header, sales_unit=unit, kind="change")
    assert [i["customer_id"] for i in items] == [str(change.customer_id)]
    assert items[0]["changes"] == {"credit_days": {"old": 7, "new": 30}}
    assert items[0]["has_duplicates"] is False and items[0]["reason_code"] is None

    approved = await approval_api.post(
        f"/api/v1/reviews/{items[0]['id']}/approve", headers=auth_header("cs1")
    )
    assert approved.status_code == 200
    pending, _ = await listed(approval_api, auth_header, sales_unit=unit, status="pending")
    assert str(change.customer_id) not in {i["customer_id"] for i in pending}
    everything, _ = await listed(approval_api, auth_header, sales_unit=unit)
    assert len(everything) == 8  # no status: every status
    done, _ = await listed(approval_api, auth_header, sales_unit=unit, status="approved")
    assert [i["customer_id"] for i in done] == [str(change.customer_id)]
    code = approved.json()["customer_code"]
    by_code, _ = await listed(approval_api, auth_header, sales_unit=unit, q=code.lower())
    assert [i["customer_id"] for i in by_code] == [str(change.customer_id)]


async def test_has_duplicates_filter(
    engine: AsyncEngine, approval_api: httpx.AsyncClient, auth_header: Auth, unit: str
) -> None:
    province = token("P")
    first = submission(full_name="Tạp hóa Kim Liên", sales_unit_code=unit, province_code=province)
    await deliver(engine, first)
    second = submission(full_name="Kim Liên", sales_unit_code=unit, province_code=province)
    await deliver(engine, second)
    with_dups, _ = await listed(approval_api, auth_header, sales_unit=unit, has_duplicates="true")
    without, _ = await listed(approval_api, auth_header, sales_unit=unit, has_duplicates="false")
    assert [i["customer_id"] for i in with_dups] == [str(second.customer_id)]
    assert [i["customer_id"] for i in without] == [str(first.customer_id)]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "open"}, "status"),
        ({"kind": "renewal"}, "kind"),
        ({"has_duplicates": "maybe"}, "has_duplicates"),
        ({"customer_id": "not-a-uuid"}, "customer_id"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"q": "x" * 201}, "q"),
    ],
)
async def test_bad_query_values_are_422_problems_naming_the_field(
    approval_api: httpx.AsyncClient, auth_header: Auth, params: dict[str, str], field: str
) -> None:
    response = await approval_api.get("/api/v1/reviews", params=params, headers=auth_header("cs1"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == [field]


@pytest.mark.parametrize("cursor", ["garbage", "%%%", "WyJ4Il0", "é"])
async def test_a_bad_cursor_is_the_shared_cursor_problem(
    approval_api: httpx.AsyncClient, auth_header: Auth, cursor: str
) -> None:
    response = await approval_api.get(
        "/api/v1/reviews", params={"cursor": cursor}, headers=auth_header("cs1")
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["type"].endswith("/invalid-cursor") and body["errors"][0]["field"] == "cursor"


# ---- approval.queries, as the web UI calls it ------------------------------------------------


async def test_queries_for_the_ui(engine: AsyncEngine, unit: str) -> None:
    cid = uuid.uuid4()
    await deliver(engine, submission(cid, 2, full_name="Tạp hóa Hải Yến", sales_unit_code=unit))
    await deliver(engine, submission(cid, 4, full_name="Tạp hóa Hải Yến", sales_unit_code=unit))
    other = await submit(engine, unit, "Tạp hóa Minh Châu")
    async with AsyncSession(engine) as session:
        pending, cursor = await queries.list_reviews(
            session, ReviewFilters(sales_unit=unit), limit=10, cursor=None
        )
        assert [(r.customer_id, r.customer_version) for r in pending] == [(cid, 4), (other, 2)]
        assert cursor is None
        assert pending[0].full_name == "Tạp hóa Hải Yến"
        everything, _ = await queries.list_reviews(
            session, ReviewFilters(status=None, sales_unit=unit, q="hai yen"), limit=10, cursor=None
        )
        assert [(r.customer_version, r.status) for r in everything] == [
            (2, "superseded"),
            (4, "pending"),
        ]
        first, cursor = await queries.list_reviews(
            session, ReviewFilters(sales_unit=unit), limit=1, cursor=None
        )
        second, last = await queries.list_reviews(
            session, ReviewFilters(sales_unit=unit), limit=1, cursor=cursor
        )
        assert [r.customer_id for r in first + second] == [cid, other] and last is None

        history = await queries.reviews_of_customer(session, cid)
        assert [r.customer_version for r in history] == [4, 2]  # newest first
        assert await queries.reviews_of_customer(session, uuid.uuid4()) == []
        got = await queries.get_review(session, history[0].id)
        assert got is not None and got.id == history[0].id
        assert await queries.get_review(session, uuid.uuid4()) is None

        count = await queries.pending_count(session)
        exact = await session.scalar(text("SELECT count(*) FROM reviews WHERE status = 'pending'"))
        assert count == exact and count >= 2

        with pytest.raises(ProblemError) as caught:
            await queries.list_reviews(session, ReviewFilters(status="open"), limit=10, cursor=None)
        assert caught.value.status == 422 and caught.value.errors[0].field == "status"
        with pytest.raises(ProblemError) as caught:
            await queries.list_reviews(session, ReviewFilters(kind="x"), limit=10, cursor=None)
        assert caught.value.errors[0].field == "kind"
        with pytest.raises(ProblemError) as caught:
            await queries.list_reviews(session, ReviewFilters(q="a\x00"), limit=10, cursor=None)
        assert caught.value.errors[0].field == "q"


async def review_ids(session: AsyncSession, customer_id: uuid.UUID) -> list[uuid.UUID]:
    return [r.id for r in await queries.reviews_of_customer(session, customer_id)]


def test_reject_reasons_are_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "APPROVAL_REJECT_REASONS",
        '{"no_licence": {"vi": "Không có giấy phép", "en": "No licence"},'
        ' "other": {"vi": "Khác", "en": "Other"}}',
    )
    settings = ApprovalSettings()
    assert list(settings.reject_reasons) == ["no_licence", "other"]
    assert settings.reject_reasons["no_licence"].label(vietnamese=True) == "Không có giấy phép"
    monkeypatch.setenv("APPROVAL_REJECT_REASONS", '{"Bad Code": {"vi": "x", "en": "x"}}')
    with pytest.raises(ValidationError):
        ApprovalSettings()


async def test_the_service_checks_reject_input_for_every_caller(
    engine: AsyncEngine, unit: str
) -> None:
    """The web UI calls ReviewService directly: the same 422s as the API."""
    cid = await submit(engine, unit, "Tạp hóa Minh Tâm")
    cs = Principal("NV020", "Hoàng Thu Hà", frozenset({"cs"}), "HO")
    async with AsyncSession(engine, expire_on_commit=False) as session:
        [review_id] = await review_ids(session, cid)
        await session.rollback()  # the UI's reads end before its decision's transaction
        service = ReviewService(session, ApprovalSettings())
        for reason, code, field in [("  ", None, "reason"), ("Sai", "TAX", "reason_code")]:
            with pytest.raises(ProblemError) as caught:
                async with session.begin():
                    await service.reject(cs, review_id, reason=reason, reason_code=code)
            assert caught.value.status == 422 and caught.value.errors[0].field == field
        async with session.begin():
            done = await service.reject(cs, review_id, reason=" Sai địa chỉ ", reason_code="")
        assert (done.status, done.reason, done.reason_code) == ("rejected", "Sai địa chỉ", None)
