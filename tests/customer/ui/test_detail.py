"""The customer page in process: fields as in the guide, eligibility, history, the pending
change, "Gửi CS duyệt" (success, problems, stale), roles, CSRF, escaping, attachments."""

import re
import uuid
from collections.abc import Callable

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.customer.test_attachments import pdf_bytes, png_bytes
from tests.customer.ui.conftest import Create, SetStatus, SignIn, word

Auth = Callable[[str], dict[str, str]]
GUIDE_LABELS = (
    "Họ và tên", "Điện thoại", "Email", "Mã khách hàng (misa)", "Địa chỉ", "Tỉnh thành",
    "Quận/Huyện", "Công ty", "Mã số thuế", "Tên người liên hệ", "Loại Khách hàng",
    "Nhóm Khách hàng", "Kênh Khách hàng", "Điều khoản thanh toán", "Hình thức thanh toán",
    "Số ngày được nợ", "SalesForce", "Tên Nhân viên", "Ghi chú", "Địa chỉ giao hàng",
    "Thông tin xuất hóa đơn", "Tài liệu đính kèm",
)  # fmt: skip


async def status_of(engine: AsyncEngine, customer_id: str) -> str:
    async with engine.connect() as conn:
        return str(
            await conn.scalar(
                text("SELECT status FROM customers WHERE id = :i"), {"i": customer_id}
            )
        )


def url(customer: dict[str, object]) -> str:
    return f"/ui/customers/{customer['id']}"


async def test_the_page_shows_every_field_of_the_guide(sign_in: SignIn, create: Create) -> None:
    customer = await create(
        f"Tạp hóa Minh Anh {word()}",
        company_name="Công ty TNHH Minh Anh",
        tax_code="0314409058",
        contact_name="Chị Lan",
        note="Giao buổi sáng",
        invoice_profiles=[{"company_name": "Công ty TNHH Minh Anh", "tax_code": "0314409058"}],
    )
    sales = await sign_in("sales1")
    page = await sales.get(url(customer))
    assert page.status_code == 200
    for label in GUIDE_LABELS:
        assert label in page.text, label
    for value in (
        "Thành phố Hà Nội",  # province by name
        "(TAPHOA)",  # group with its name from the replica
        "Nguyễn Văn An",  # owner
        "15 ngày",
        "Kho 2, 5 Lê Lợi",  # delivery address
        "0314409058",
        "Chị Lan",
        "Giao buổi sáng",
        "Chưa được đặt hàng",  # eligibility: not approved yet
        "Khách hàng chưa được CS duyệt.",
    ):
        assert value in page.text, value
    assert 'id="customer-status">Bản nháp<' in page.text
    assert 'id="edit-button"' in page.text and f'href="{url(customer)}/edit"' in page.text
    assert 'id="submit-button"' in page.text and 'name="version" value="1"' in page.text


async def test_an_active_customer_shows_its_codes_and_may_order(
    sign_in: SignIn, create: Create, set_status: SetStatus
) -> None:
    customer = await create(f"Khách đã duyệt {word()}")
    await set_status(customer["id"], "active", customer_code="KH765432", misa_code="MS-0042")
    sales = await sign_in("sales1")
    page = await sales.get(url(customer))
    assert "KH765432" in page.text and "MS-0042" in page.text
    assert 'id="customer-status">Đang hoạt động<' in page.text and "Được đặt hàng" in page.text
    assert 'id="submit-button"' not in page.text and 'id="edit-button"' in page.text
    await set_status(customer["id"], "inactive")
    stopped = await sales.get(url(customer))
    assert "Khách hàng đã ngừng hoạt động." in stopped.text
    assert 'id="edit-button"' not in stopped.text


async def test_a_pending_change_shows_old_and_new_and_that_current_values_hold(
    sign_in: SignIn,
    create: Create,
    set_status: SetStatus,
    http: httpx.AsyncClient,
    auth_header: Auth,
) -> None:
    customer = await create(f"Khách đổi điều khoản {word()}")
    await set_status(customer["id"], "active")
    response = await http.patch(
        f"/api/v1/customers/{customer['id']}",
        json={"payment_term_code": "NET30"},
        headers={**auth_header("sales1"), "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    page = await (await sign_in("sales1")).get(url(customer))
    section = re.search(r'id="pending-change">(.*?)</section>', page.text, re.S)
    assert section, "no pending change shown"
    assert "Điều khoản thanh toán" in section.group(1)
    assert "(NET15)" in section.group(1) and "(NET30)" in section.group(1)
    assert "vẫn được áp dụng cho đến khi CS duyệt" in section.group(1)


async def test_history_says_who_did_what_when(
    sign_in: SignIn, create: Create, http: httpx.AsyncClient, auth_header: Auth
) -> None:
    customer = await create(f"Khách có lịch sử {word()}", note="Cũ")
    await http.patch(
        f"/api/v1/customers/{customer['id']}",
        json={"note": "Mới"},
        headers={**auth_header("sales1"), "If-Match": '"1"'},
    )
    page = await (await sign_in("manager1")).get(url(customer))
    history = re.search(r'id="history">(.*?)</section>', page.text, re.S)
    assert history
    rows = re.findall(r"<tr>(.*?)</tr>", history.group(1), re.S)
    assert "Sửa thông tin" in rows[1] and "Tạo hồ sơ" in rows[2]  # newest first
    assert "Nguyễn Văn An" in rows[1] and "phiên bản 2" in rows[1]
    assert re.search(r'Ghi chú</strong>: <span class="diff-old">Cũ</span> → Mới', rows[1])
    assert re.search(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}", rows[1])


async def test_submit_sends_the_customer_to_cs(
    sign_in: SignIn, create: Create, engine: AsyncEngine
) -> None:
    customer = await create(f"Khách gửi duyệt {word()}")
    sales = await sign_in("sales1")
    await sales.get(url(customer))
    response = await sales.post_form(f"{url(customer)}/submit", {"version": "1"})
    assert response.status_code == 303 and response.headers["location"] == url(customer)
    page = await sales.follow(response)
    assert "Đã gửi CS duyệt" in page.text
    assert 'id="customer-status">Chờ CS duyệt<' in page.text
    assert 'id="submit-button"' not in page.text and 'id="edit-button"' not in page.text
    assert await status_of(engine, customer["id"]) == "pending_approval"
    async with engine.connect() as conn:
        events = await conn.scalar(
            text("SELECT count(*) FROM outbox WHERE key = :k AND event_type = :t"),
            {"k": customer["id"], "t": "ims.customer.CustomerSubmitted.v1"},
        )
    assert events == 1


async def test_submit_lists_every_problem_with_its_label(
    sign_in: SignIn, create: Create, engine: AsyncEngine
) -> None:
    customer = await create(f"Khách thiếu thông tin {word()}", complete=False)
    sales = await sign_in("sales1")
    await sales.get(url(customer))
    response = await sales.post_form(f"{url(customer)}/submit", {"version": "1"})
    assert response.status_code == 422
    problems = re.search(r'id="problems">(.*?)</section>', response.text, re.S)
    assert problems
    items = re.findall(r'<li data-field="([^"]+)"><strong>([^<]+)</strong>', problems.group(1))
    labels = dict(items)
    assert labels["phone"] == "Điện thoại" and labels["province_code"] == "Tỉnh thành"
    assert labels["payment_term_code"] == "Điều khoản thanh toán"
    assert "là bắt buộc khi gửi CS duyệt" in problems.group(1)
    assert "Chưa gửi CS duyệt" in response.text
    assert await status_of(engine, customer["id"]) == "draft"


async def test_a_stale_page_is_not_submitted(
    sign_in: SignIn,
    create: Create,
    engine: AsyncEngine,
    http: httpx.AsyncClient,
    auth_header: Auth,
) -> None:
    customer = await create(f"Khách bị sửa {word()}")
    sales = await sign_in("sales1")
    await sales.get(url(customer))  # shows version 1
    changed = await http.patch(
        f"/api/v1/customers/{customer['id']}",
        json={"note": "Người khác vừa sửa"},
        headers={**auth_header("manager1"), "If-Match": '"1"'},
    )
    assert changed.status_code == 200
    response = await sales.post_form(f"{url(customer)}/submit", {"version": "1"})
    assert response.status_code == 412
    assert "người khác vừa thay đổi khách hàng này" in response.text
    assert "Người khác vừa sửa" in response.text and 'name="version" value="2"' in response.text
    assert await status_of(engine, customer["id"]) == "draft"
    no_version = await sales.post_form(f"{url(customer)}/submit", {})
    assert no_version.status_code == 412


async def test_invisible_or_unknown_customers_are_404_pages(
    sign_in: SignIn, create: Create, engine: AsyncEngine
) -> None:
    customer = await create(f"Khách của sales1 {word()}")
    other = await sign_in("sales3")
    for path in (url(customer), "/ui/customers/not-a-uuid", f"/ui/customers/{uuid.uuid4()}"):
        page = await other.get(path)
        assert page.status_code == 404 and "Không tìm thấy" in page.text, path
    await other.get("/ui/customers")
    forced = await other.post_form(f"{url(customer)}/submit", {"version": "1"})
    assert forced.status_code == 404
    assert await status_of(engine, customer["id"]) == "draft"


async def test_cs_reads_but_cannot_change(
    sign_in: SignIn, create: Create, engine: AsyncEngine
) -> None:
    customer = await create(f"Khách CS xem {word()}")
    cs = await sign_in("cs1")
    page = await cs.get(url(customer))
    assert page.status_code == 200 and "Khách CS xem" in page.text
    assert 'id="edit-button"' not in page.text and 'id="submit-button"' not in page.text
    forced = await cs.post_form(f"{url(customer)}/submit", {"version": "1"})
    assert forced.status_code == 403 and "không có quyền" in forced.text
    assert await status_of(engine, customer["id"]) == "draft"


async def test_submit_without_a_valid_csrf_token_changes_nothing(
    sign_in: SignIn, create: Create, engine: AsyncEngine
) -> None:
    customer = await create(f"Khách CSRF {word()}")
    sales = await sign_in("sales1")
    await sales.get(url(customer))
    forged = await sales.post_form(f"{url(customer)}/submit", {"version": "1"}, csrf="a" * 64)
    assert forged.status_code == 403
    cross_site = await sales.http.post(
        f"{url(customer)}/submit",
        data={"version": "1", "csrf_token": "a" * 64},
        headers={"Origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403
    assert await status_of(engine, customer["id"]) == "draft"


async def test_customer_data_is_shown_as_text(
    sign_in: SignIn, create: Create, set_status: SetStatus
) -> None:
    evil = "<script>alert(1)</script>"
    customer = await create(evil, note=evil, company_name='"><img src=x onerror=alert(2)>')
    await set_status(customer["id"], "rejected", rejection_reason=evil)
    html = (await (await sign_in("sales1")).get(url(customer))).text
    assert evil not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def test_a_rejected_customer_shows_why(
    sign_in: SignIn, create: Create, set_status: SetStatus
) -> None:
    customer = await create(f"Khách bị từ chối {word()}")
    await set_status(customer["id"], "rejected", rejection_reason="Sai mã số thuế")
    page = await (await sign_in("sales1")).get(url(customer))
    assert 'id="rejection-reason">Sai mã số thuế<' in page.text
    assert 'id="submit-button"' in page.text and 'id="edit-button"' in page.text


async def test_attachments_are_served_with_safe_headers(
    sign_in: SignIn, create: Create, http: httpx.AsyncClient, auth_header: Auth
) -> None:
    customer = await create(f"Khách có tệp {word()}")
    uploaded = {}
    for name, content, kind in (
        ("mặt tiền.png", png_bytes(), "image"),
        ("giấy phép.pdf", pdf_bytes(), "business_license"),
    ):
        response = await http.post(
            f"/api/v1/customers/{customer['id']}/attachments",
            files={"file": (name, content)},
            data={"kind": kind},
            headers=auth_header("sales1"),
        )
        assert response.status_code == 201, response.text
        uploaded[kind] = response.json()
    sales = await sign_in("sales1")
    page = await sales.get(url(customer))
    image_url = f"{url(customer)}/attachments/{uploaded['image']['id']}"
    assert f'<img class="thumb" src="{image_url}"' in page.text
    assert "mặt tiền.png" in page.text and "Giấy phép ĐKKD" in page.text

    image = await sales.get(image_url)
    assert image.status_code == 200 and image.content == png_bytes()
    assert image.headers["content-type"] == "image/png"
    assert image.headers["content-disposition"].startswith("inline;")
    assert image.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in image.headers["content-security-policy"]
    assert image.headers["etag"] == f'"{uploaded["image"]["sha256"]}"'
    pdf = await sales.get(f"{url(customer)}/attachments/{uploaded['business_license']['id']}")
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content == pdf_bytes()

    stranger = await sign_in("sales3")
    assert (await stranger.get(image_url)).status_code == 404
    unknown = await sales.get(f"{url(customer)}/attachments/{uuid.uuid4()}")
    assert unknown.status_code == 404 and "text/html" in unknown.headers["content-type"]


async def test_english_switch(sign_in: SignIn, create: Create) -> None:
    customer = await create(f"Khách tiếng Anh {word()}")
    sales = await sign_in("sales1")
    await sales.get(f"/ui/lang/en?next={url(customer)}")
    page = await sales.get(url(customer))
    assert "Send to CS for approval" in page.text and "History" in page.text
    assert "Gửi CS duyệt" not in page.text
