"""The CS UI in process: every page and decision path, roles, CSRF, escaping."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.ui import routes
from approval.ui.attachments import AttachmentProxy
from shared import admin_units
from tests.approval.helpers import deliver, email, phone, submission, tax_code, token
from tests.approval.ui.conftest import Submit
from tests.fixtures.apps import app_client
from tests.shared.ui.client import UiClient

GUIDE_LABELS = (
    "Họ và tên", "Điện thoại", "Email", "Mã khách hàng (misa)", "Địa chỉ", "Tỉnh thành",
    "Quận/Huyện", "Công ty", "Mã số thuế", "Tên người liên hệ", "Loại Khách hàng",
    "Nhóm Khách hàng", "Kênh Khách hàng", "Điều khoản thanh toán", "Hình thức thanh toán",
    "Số ngày được nợ", "SalesForce", "Tên Nhân viên", "Ghi chú", "Địa chỉ giao hàng",
    "Thông tin xuất hóa đơn", "Tài liệu đính kèm",
)  # fmt: skip


async def review_id(
    engine: AsyncEngine, customer_id: uuid.UUID, status: str = "pending"
) -> uuid.UUID:
    async with engine.connect() as conn:
        found = await conn.scalar(
            text("SELECT id FROM reviews WHERE customer_id = :c AND status = :s"),
            {"c": customer_id, "s": status},
        )
    assert found is not None
    return uuid.UUID(str(found))


async def status_of(engine: AsyncEngine, rid: uuid.UUID) -> str:
    async with engine.connect() as conn:
        return str(await conn.scalar(text("SELECT status FROM reviews WHERE id = :i"), {"i": rid}))


def queue_names(html: str) -> list[str]:
    return re.findall(r'class="customer-link" href="/ui/reviews/[^"]+">([^<]+)</a>', html)


# ---- access ---------------------------------------------------------------------------


async def test_every_page_needs_a_cs_user(
    approval_app: FastAPI, submit: Submit, engine: AsyncEngine
) -> None:
    data = await submit()
    rid = await review_id(engine, data.customer_id)
    async with app_client(approval_app) as client:
        ui = UiClient(client)
        for url in ("/ui/", "/ui/reviews", f"/ui/reviews/{rid}"):
            response = await ui.get(url)
            assert response.status_code == 303 and response.headers["location"].startswith(
                "/ui/sign-in"
            )
        await ui.sign_in("sales1")
        for url in ("/ui/", f"/ui/reviews/{rid}", f"/ui/reviews/{rid}/attachments/{uuid.uuid4()}"):
            page = await ui.get(url)
            assert page.status_code == 403 and "không có quyền dùng trang này" in page.text
        await ui.get("/ui/sign-in")  # a page with sales1's CSRF token
        refused = await ui.post_form(f"/ui/reviews/{rid}/approve", {"confirmed": "1"})
        assert refused.status_code == 403
    assert await status_of(engine, rid) == "pending"


async def test_unknown_reviews_are_404_pages(cs: UiClient) -> None:
    for url in (f"/ui/reviews/{uuid.uuid4()}", "/ui/reviews/not-a-uuid", "/ui/nothing-here"):
        page = await cs.get(url)
        assert page.status_code == 404 and "Không tìm thấy" in page.text, url
    await cs.get("/ui/")
    missing = await cs.post_form(f"/ui/reviews/{uuid.uuid4()}/approve", {"confirmed": "1"})
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]


# ---- queue ----------------------------------------------------------------------------


async def test_the_queue_lists_pending_reviews_oldest_first(
    cs: UiClient, submit: Submit, unit: str, engine: AsyncEngine
) -> None:
    shared_phone = phone()
    first = await submit(
        "Tạp hóa Minh Anh", phone=shared_phone, company_name="Công ty TNHH Minh Anh"
    )
    second = await submit("Cửa hàng Bình An", phone=shared_phone)  # same phone: a duplicate
    page = await cs.get("/ui/reviews", params={"sales_unit": unit})
    assert page.status_code == 200
    assert queue_names(page.text) == ["Tạp hóa Minh Anh", "Cửa hàng Bình An"]
    assert "Công ty TNHH Minh Anh" in page.text and "Khách hàng mới" in page.text
    assert "NV001" in page.text  # submitter (the name when the replica knows the employee)
    assert page.text.count("Có thể trùng</span>") == 1
    assert re.search(r'id="pending-count">\d+<', page.text)
    dup_only = await cs.get("/ui/reviews", params={"sales_unit": unit, "dup": "1"})
    assert queue_names(dup_only.text) == ["Cửa hàng Bình An"]
    rid = await review_id(engine, second.customer_id)
    assert f'href="/ui/reviews/{rid}"' in dup_only.text
    assert first.customer_id != second.customer_id


async def test_search_works_without_js_and_as_a_fragment(
    cs: UiClient, submit: Submit, unit: str
) -> None:
    name = f"Đại lý Hưng Thịnh {token()}"
    await submit(name)
    await submit("Nhà thuốc Phúc Khang")
    page = await cs.get("/ui/reviews", params={"q": "dai ly hung thinh", "sales_unit": unit})
    assert queue_names(page.text) == [name]
    assert 'value="dai ly hung thinh"' in page.text and "<html" in page.text
    fragment = await cs.get(
        "/ui/reviews", params={"q": "hung thinh", "sales_unit": unit, "partial": "1"}
    )
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert queue_names(fragment.text) == [name]
    none = await cs.get("/ui/reviews", params={"q": "zzzz khong co", "sales_unit": unit})
    assert "Không có hồ sơ nào phù hợp" in none.text


async def test_kind_and_status_tabs(
    cs: UiClient, submit: Submit, unit: str, engine: AsyncEngine
) -> None:
    await submit("Khách mới")
    change = await submit(
        "Khách đổi thông tin",
        kind="change",
        changes={"phone": {"old": "+84911111111", "new": "+84922222222"}},
    )
    changes = await cs.get("/ui/reviews", params={"sales_unit": unit, "kind": "change"})
    assert queue_names(changes.text) == ["Khách đổi thông tin"]
    assert "Thay đổi thông tin" in changes.text
    await cs.get(f"/ui/reviews/{await review_id(engine, change.customer_id)}")
    rid = await review_id(engine, change.customer_id)
    await cs.post_form(f"/ui/reviews/{rid}/approve", {"confirmed": "1"})
    approved = await cs.get("/ui/reviews", params={"sales_unit": unit, "status": "approved"})
    assert queue_names(approved.text) == ["Khách đổi thông tin"]
    assert "Đã duyệt" in approved.text and re.search(r"<strong>KH\d{6}</strong>", approved.text)
    everything = await cs.get("/ui/reviews", params={"sales_unit": unit, "status": "all"})
    assert queue_names(everything.text) == ["Khách mới", "Khách đổi thông tin"]
    odd = await cs.get("/ui/reviews", params={"sales_unit": unit, "status": "bogus", "kind": "x"})
    assert odd.status_code == 200 and queue_names(odd.text) == ["Khách mới"]


async def test_cursor_paging(
    cs: UiClient, submit: Submit, unit: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes, "QUEUE_PAGE_SIZE", 2)
    for name in ("Khách một", "Khách hai", "Khách ba"):
        await submit(name)
    page = await cs.get("/ui/reviews", params={"sales_unit": unit})
    assert queue_names(page.text) == ["Khách một", "Khách hai"]
    next_url = re.search(r'href="([^"]+)" rel="next"', page.text)
    assert next_url and "Trang đầu" not in page.text
    second = await cs.get(next_url.group(1).replace("&amp;", "&"))
    assert queue_names(second.text) == ["Khách ba"]
    assert 'rel="next"' not in second.text and "Trang đầu" in second.text
    bad = await cs.get("/ui/reviews", params={"cursor": "garbage"})
    assert bad.status_code == 400 and "text/html" in bad.headers["content-type"]


async def test_overdue_reviews_are_highlighted(
    cs: UiClient, engine: AsyncEngine, unit: str
) -> None:
    old = submission(full_name="Khách chờ lâu", sales_unit_code=unit, province_code=token("P"))
    old = old.model_copy(update={"submitted_at": datetime.now(UTC) - timedelta(hours=30)})
    await deliver(engine, old)
    await deliver(
        engine,
        submission(full_name="Khách mới gửi", sales_unit_code=unit, province_code=token("P")),
    )
    page = await cs.get("/ui/reviews", params={"sales_unit": unit})
    rows = page.text.split("<tr")[2:]
    assert "Khách chờ lâu" in rows[0] and 'class="overdue"' in "<tr" + rows[0]
    assert "1 ngày 6 giờ" in rows[0] and "Quá hạn" in rows[0]
    assert "Khách mới gửi" in rows[1] and "Quá hạn" not in rows[1]


# ---- review page ------------------------------------------------------------------------


def full_customer() -> dict[str, Any]:
    ward = admin_units.wards_in_province("01")[0]
    return {
        "phone": phone(),
        "email": email(),
        "misa_code": "MISA-0042",
        "address": "12 Nguyễn Trãi",
        "province_code": "01",
        "ward_code": ward.code,
        "admin_scheme": "2025",
        "company_name": "Công ty TNHH Thương mại Hà Thành",
        "tax_code": tax_code(),
        "contact_name": "Lê Thị Hoa",
        "customer_type_code": "DN",
        "customer_group_code": "TAPHOA",
        "channel_code": "GT",
        "payment_term_code": "NET15",
        "payment_method_code": "CK",
        "credit_days": 15,
        "owner_employee_id": "NV001",
        "note": "Giao buổi sáng",
        "delivery_addresses": [
            {
                "id": str(uuid.uuid4()),
                "label": "Kho Long Biên",
                "recipient_name": "Anh Tuấn",
                "phone": "+84987654321",
                "address": "5 Ngọc Lâm",
                "province_code": "01",
                "ward_code": ward.code,
                "admin_scheme": "2025",
                "is_default": True,
            }
        ],
        "invoice_profiles": [
            {
                "id": str(uuid.uuid4()),
                "company_name": "Công ty TNHH Thương mại Hà Thành",
                "tax_code": "0101234567",
                "address": "12 Nguyễn Trãi, Hà Nội",
                "email": "ketoan@hathanh.vn",
                "buyer_name": "Lê Thị Hoa",
                "is_default": True,
            }
        ],
        "attachments": [
            {
                "id": str(uuid.uuid4()),
                "kind": "business_license",
                "filename": "giay-phep.pdf",
                "content_type": "application/pdf",
                "size": 1536,
                "sha256": "0" * 64,
                "uploaded_by": "NV001",
                "uploaded_at": "2025-07-01T01:05:00+00:00",
            },
            {
                "id": str(uuid.uuid4()),
                "kind": "image",
                "filename": "mat-tien.png",
                "content_type": "image/png",
                "size": 2 * 1024 * 1024,
                "sha256": "1" * 64,
                "uploaded_by": "NV001",
                "uploaded_at": "2025-07-01T01:05:00+00:00",
            },
        ],
    }


async def test_the_review_page_shows_the_whole_form_as_in_the_guide(
    cs: UiClient, submit: Submit, engine: AsyncEngine
) -> None:
    fields = full_customer()
    data = await submit(f"Hà Thành {token()}", **fields)
    rid = await review_id(engine, data.customer_id)
    page = await cs.get(f"/ui/reviews/{rid}")
    assert page.status_code == 200
    html = page.text
    positions = [html.find(label) for label in GUIDE_LABELS]
    assert all(p > 0 for p in positions), [
        lab for lab, p in zip(GUIDE_LABELS, positions, strict=True) if p < 0
    ]
    for value in (fields["phone"], fields["email"], "MISA-0042", "12 Nguyễn Trãi", "Thành phố Hà Nội (01)",
                  fields["tax_code"], "Lê Thị Hoa", "15 ngày", "Giao buổi sáng"):  # fmt: skip
        assert value in html, value
    assert "Kho Long Biên" in html and "Anh Tuấn" in html and "5 Ngọc Lâm" in html
    assert "ketoan@hathanh.vn" in html and "0101234567" in html
    pdf, image = fields["attachments"]
    assert f'href="/ui/reviews/{rid}/attachments/{pdf["id"]}" target="_blank"' in html
    assert f'<img class="thumb" src="/ui/reviews/{rid}/attachments/{image["id"]}"' in html
    assert "Giấy phép ĐKKD" in html and "1,5 KB" in html and "2,0 MB" in html
    assert "01/07/2025 08:05" in html
    assert 'id="approve-button"' in html and 'id="reject-button"' in html
    assert "Lịch sử duyệt" in html and "hồ sơ này" in html


async def test_a_change_review_shows_old_and_new_side_by_side(
    cs: UiClient, submit: Submit, engine: AsyncEngine
) -> None:
    data = await submit(
        "Tạp hóa Thu Trang",
        kind="change",
        customer_code="KH000777",
        credit_days=30,
        changes={
            "credit_days": {"old": 15, "new": 30},
            "company_name": {"old": None, "new": "Công ty CP Thu Trang"},
        },
        company_name="Công ty CP Thu Trang",
    )
    page = await cs.get(f"/ui/reviews/{await review_id(engine, data.customer_id)}")
    html = page.text
    assert "Thay đổi đề xuất" in html and "Thay đổi thông tin" in html
    diff = html[html.index("diff-table") : html.index("</table>", html.index("diff-table"))]
    assert "Số ngày được nợ" in diff and "15 ngày" in diff and "30 ngày" in diff
    assert '<td class="diff-new">Công ty CP Thu Trang</td>' in diff
    assert html.count("field field-changed") == 2  # highlighted in the form as well
    assert "Trước đây: 15 ngày" in html


async def test_duplicates_are_explained_and_linked(
    cs: UiClient, submit: Submit, engine: AsyncEngine
) -> None:
    shared_tax, shared_phone = tax_code(), phone()
    earlier = await submit("Công ty TNHH Hoàng Long", tax_code=shared_tax, phone=shared_phone)
    later = await submit("Hoàng Long", tax_code=shared_tax, phone=shared_phone)
    earlier_review = await review_id(engine, earlier.customer_id)
    page = await cs.get(f"/ui/reviews/{await review_id(engine, later.customer_id)}")
    html = page.text
    assert "Có thể trùng với 1 khách hàng" in html
    assert "Trùng mã số thuế" in html and "Trùng số điện thoại" in html
    assert re.search(r'<td class="num">\d{2,3}%</td>', html)
    assert f'<a href="/ui/reviews/{earlier_review}">Công ty TNHH Hoàng Long</a>' in html
    assert "Hồ sơ có thể trùng với 1 khách hàng" in html  # the reminder beside the buttons


async def test_history_lists_the_customers_earlier_reviews(
    cs: UiClient, engine: AsyncEngine, unit: str
) -> None:
    cid = uuid.uuid4()
    await deliver(
        engine, submission(cid, version=2, full_name="Khách lịch sử", sales_unit_code=unit)
    )
    first = await review_id(engine, cid)
    await deliver(
        engine, submission(cid, version=3, full_name="Khách lịch sử", sales_unit_code=unit)
    )
    page = await cs.get(f"/ui/reviews/{await review_id(engine, cid)}")
    history = page.text[page.text.index("Lịch sử duyệt") :]
    assert f'<a href="/ui/reviews/{first}">2</a>' in history and "Đã được thay thế" in history
    assert "3 <span" in history


# ---- decisions ------------------------------------------------------------------------


async def test_approve_confirms_then_shows_the_code_and_leaves_the_queue(
    cs: UiClient, submit: Submit, unit: str, engine: AsyncEngine
) -> None:
    data = await submit("Tạp hóa Ngọc Mai")
    rid = await review_id(engine, data.customer_id)
    await cs.get(f"/ui/reviews/{rid}")
    confirm = await cs.post_form(f"/ui/reviews/{rid}/approve")  # no JavaScript: a confirm page
    assert confirm.status_code == 200 and "Duyệt khách hàng “Tạp hóa Ngọc Mai”" in confirm.text
    assert await status_of(engine, rid) == "pending"
    done = await cs.post_form(f"/ui/reviews/{rid}/approve", {"confirmed": "1"})
    assert done.status_code == 303 and done.headers["location"] == f"/ui/reviews/{rid}"
    page = await cs.follow(done)
    code = re.search(r'id="customer-code">(KH\d{6})<', page.text)
    assert code, page.text
    assert f"Mã khách hàng: {code.group(1)}" in page.text  # the flash
    assert 'id="approve-button"' not in page.text
    queue = await cs.get("/ui/reviews", params={"sales_unit": unit})
    assert "Tạp hóa Ngọc Mai" not in queue_names(queue.text)


async def test_reject_needs_a_reason_and_returns_to_the_queue(
    cs: UiClient, submit: Submit, unit: str, engine: AsyncEngine
) -> None:
    data = await submit("Tạp hóa Văn Lâm")
    rid = await review_id(engine, data.customer_id)
    await cs.get(f"/ui/reviews/{rid}")
    empty = await cs.post_form(f"/ui/reviews/{rid}/reject", {"reason": "  ", "confirmed": "1"})
    assert empty.status_code == 422 and "Hãy nhập lý do từ chối" in empty.text
    bad_code = await cs.post_form(
        f"/ui/reviews/{rid}/reject", {"reason": "x", "reason_code": "nope", "confirmed": "1"}
    )
    assert bad_code.status_code == 422 and "không có trong danh sách" in bad_code.text
    assert await status_of(engine, rid) == "pending"
    form = {"reason": "Thiếu giấy phép kinh doanh", "reason_code": "missing_documents"}
    confirm = await cs.post_form(f"/ui/reviews/{rid}/reject", form)
    assert confirm.status_code == 200 and "Thiếu giấy tờ" in confirm.text
    assert 'name="reason" value="Thiếu giấy phép kinh doanh"' in confirm.text
    done = await cs.post_form(f"/ui/reviews/{rid}/reject", {**form, "confirmed": "1"})
    assert done.status_code == 303 and done.headers["location"] == "/ui/reviews"
    queue = await cs.follow(done)
    assert "Đã từ chối hồ sơ “Tạp hóa Văn Lâm”" in queue.text
    assert await status_of(engine, rid) == "rejected"
    page = await cs.get(f"/ui/reviews/{rid}")
    assert "Thiếu giấy tờ" in page.text and "Thiếu giấy phép kinh doanh" in page.text
    assert "Tạp hóa Văn Lâm" not in queue_names(
        (await cs.get("/ui/reviews", params={"sales_unit": unit})).text
    )


async def test_four_eyes_is_explained_not_dumped(
    cs: UiClient, submit: Submit, engine: AsyncEngine
) -> None:
    data = await submit("Khách do CS gửi", by="NV020")  # cs1 submitted it
    rid = await review_id(engine, data.customer_id)
    page = await cs.get(f"/ui/reviews/{rid}")
    assert "nguyên tắc bốn mắt" in page.text and 'id="approve-button"' not in page.text
    refused = await cs.post_form(f"/ui/reviews/{rid}/approve", {"confirmed": "1"})
    assert refused.status_code == 403 and "text/html" in refused.headers["content-type"]
    assert "Không thực hiện được: bạn là người gửi hồ sơ này" in refused.text
    assert await status_of(engine, rid) == "pending"


async def test_a_second_decision_is_a_409_message(
    cs: UiClient, submit: Submit, engine: AsyncEngine
) -> None:
    data = await submit("Khách đã duyệt")
    rid = await review_id(engine, data.customer_id)
    await cs.get(f"/ui/reviews/{rid}")
    assert (await cs.post_form(f"/ui/reviews/{rid}/approve", {"confirmed": "1"})).status_code == 303
    await cs.get(f"/ui/reviews/{rid}")
    again = await cs.post_form(f"/ui/reviews/{rid}/reject", {"reason": "muộn", "confirmed": "1"})
    assert again.status_code == 409
    assert "hồ sơ đã được xử lý trước đó (Đã duyệt)" in again.text
    assert not again.text.lstrip().startswith("{")
    assert await status_of(engine, rid) == "approved"


async def test_deciding_a_superseded_review_is_refused(
    cs: UiClient, engine: AsyncEngine, unit: str
) -> None:
    cid = uuid.uuid4()
    await deliver(
        engine, submission(cid, version=2, full_name="Khách gửi lại", sales_unit_code=unit)
    )
    old = await review_id(engine, cid)
    await cs.get(f"/ui/reviews/{old}")
    await deliver(
        engine, submission(cid, version=3, full_name="Khách gửi lại", sales_unit_code=unit)
    )
    refused = await cs.post_form(f"/ui/reviews/{old}/approve", {"confirmed": "1"})
    assert refused.status_code == 409 and "đã gửi lại thông tin mới hơn" in refused.text
    assert await status_of(engine, old) == "superseded"


async def test_decisions_without_a_valid_csrf_token_change_nothing(
    cs: UiClient, submit: Submit, engine: AsyncEngine
) -> None:
    data = await submit("Khách CSRF")
    rid = await review_id(engine, data.customer_id)
    await cs.get(f"/ui/reviews/{rid}")
    forged = await cs.post_form(f"/ui/reviews/{rid}/approve", {"confirmed": "1"}, csrf="a" * 64)
    assert forged.status_code == 403
    cross_site = await cs.http.post(
        f"/ui/reviews/{rid}/reject",
        data={"reason": "x", "confirmed": "1", "csrf_token": "a" * 64},
        headers={"Origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403
    assert await status_of(engine, rid) == "pending"


async def test_customer_data_is_shown_as_text(
    cs: UiClient, submit: Submit, unit: str, engine: AsyncEngine
) -> None:
    evil = "<script>alert(1)</script>"
    data = await submit(evil, company_name='"><img src=x onerror=alert(2)>', note=evil)
    rid = await review_id(engine, data.customer_id)
    for url in (f"/ui/reviews?sales_unit={unit}", f"/ui/reviews/{rid}"):
        html = (await cs.get(url)).text
        assert evil not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    confirm = await cs.post_form(f"/ui/reviews/{rid}/approve")
    assert evil not in confirm.text and "&lt;script&gt;" in confirm.text


async def test_english_switch(cs: UiClient, submit: Submit, engine: AsyncEngine) -> None:
    data = await submit("Khách tiếng Anh")
    rid = await review_id(engine, data.customer_id)
    await cs.get(f"/ui/lang/en?next=/ui/reviews/{rid}")
    page = await cs.get(f"/ui/reviews/{rid}")
    assert "Full name" in page.text and "Approve and assign a code" in page.text
    assert "Họ và tên" not in page.text


# ---- attachments ----------------------------------------------------------------------


PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


async def test_attachments_stream_from_the_customer_service_as_the_user(
    cs: UiClient, approval_app: FastAPI, submit: Submit, engine: AsyncEngine
) -> None:
    fields = full_customer()
    data = await submit("Khách có tệp", **fields)
    rid = await review_id(engine, data.customer_id)
    pdf, image = fields["attachments"]
    seen: list[httpx.Request] = []

    def customer_service(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith(image["id"]):
            return httpx.Response(
                200, content=PNG, headers={"content-type": "image/png",
                "content-disposition": "attachment; filename=\"mat-tien.png\""},
            )  # fmt: skip
        return httpx.Response(404, json={"status": 404})

    approval_app.state.attachment_proxy = AttachmentProxy(
        "http://customer.test", transport=httpx.MockTransport(customer_service)
    )
    response = await cs.get(f"/ui/reviews/{rid}/attachments/{image['id']}")
    assert response.status_code == 200 and response.content == PNG
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"] == 'inline; filename="mat-tien.png"'
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]
    (request,) = seen
    assert request.url.path == f"/api/v1/customers/{data.customer_id}/attachments/{image['id']}"
    assert request.headers["authorization"].startswith("Bearer ey")  # cs1's own token

    gone = await cs.get(f"/ui/reviews/{rid}/attachments/{pdf['id']}")
    assert gone.status_code == 404 and "Tệp này không còn" in gone.text
    not_listed = await cs.get(f"/ui/reviews/{rid}/attachments/{uuid.uuid4()}")
    assert not_listed.status_code == 404 and len(seen) == 2  # never asked upstream


async def test_a_customer_service_outage_is_a_clear_message(
    cs: UiClient, approval_app: FastAPI, submit: Submit, engine: AsyncEngine
) -> None:
    fields = full_customer()
    data = await submit("Khách tệp lỗi", **fields)
    rid = await review_id(engine, data.customer_id)
    approval_app.state.attachment_proxy = AttachmentProxy("http://127.0.0.1:1", timeout_s=2)
    page = await cs.get(f"/ui/reviews/{rid}/attachments/{fields['attachments'][0]['id']}")
    assert page.status_code == 502 and "Không tải được tệp từ dịch vụ khách hàng" in page.text

    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="boom")

    approval_app.state.attachment_proxy = AttachmentProxy(
        "http://c", transport=httpx.MockTransport(broken)
    )
    page = await cs.get(f"/ui/reviews/{rid}/attachments/{fields['attachments'][0]['id']}")
    assert page.status_code == 502 and "boom" not in page.text


async def test_the_attachment_proxy_stops_at_its_size_limit(
    cs: UiClient, approval_app: FastAPI, submit: Submit, engine: AsyncEngine
) -> None:
    fields = full_customer()
    data = await submit("Khách có tệp lớn", **fields)
    rid = await review_id(engine, data.customer_id)
    _, image = fields["attachments"]
    upstream_closed: list[bool] = []

    class Body(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[no-untyped-def]
            for _ in range(100):
                yield b"x" * 1000

        async def aclose(self) -> None:
            upstream_closed.append(True)

    def customer_service(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Body(), headers={"content-type": "image/png"})

    approval_app.state.attachment_proxy = AttachmentProxy(
        "http://customer.test", transport=httpx.MockTransport(customer_service), max_bytes=5000
    )
    response = await cs.get(f"/ui/reviews/{rid}/attachments/{image['id']}")
    assert response.status_code == 200
    assert len(response.content) <= 5000  # cut at the limit, not the upstream's 100,000 bytes
    assert upstream_closed
