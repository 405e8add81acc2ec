"""The customer form in process: Tạo mới and edit through the same service as the REST API,
problems next to their inputs, 412 and 409, rows, group defaults, unit cascades, uploads,
roles, CSRF and escaping."""

import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.customer.test_attachments import png_bytes
from tests.customer.ui.conftest import Create, SetStatus, SignIn, word
from tests.shared.ui.client import ORIGIN, csrf_of

Auth = Callable[[str], dict[str, str]]
GUIDE_LABELS = (
    "Họ và tên", "Điện thoại", "Email", "Mã khách hàng (misa)", "Địa chỉ", "Tỉnh thành",
    "Quận/Huyện", "Công ty", "Mã số thuế", "Tên người liên hệ", "Loại Khách hàng",
    "Nhóm Khách hàng", "Kênh Khách hàng", "Điều khoản thanh toán", "Hình thức thanh toán",
    "Số ngày được nợ", "SalesForce", "Tên Nhân viên", "Ghi chú", "Địa chỉ giao hàng",
    "Thông tin xuất hóa đơn", "Tài liệu đính kèm",
)  # fmt: skip
#: A 10-digit tax code with a wrong check digit: well-formed for a draft, refused on submit.
BAD_TAX_CODE = "0314409059"
GOOD_TAX_CODE = "0314409058"


def complete_form(name: str, **changes: str) -> dict[str, str]:
    """What a salesperson fills in for a customer CS can approve."""
    return {
        "full_name": name,
        "phone": "0912 345 678",
        "email": "minhanh@example.vn",
        "address": "12 Nguyễn Trãi",
        "province_code": "01",
        "ward_code": "00004",
        "customer_type_code": "HKD",
        "customer_group_code": "TAPHOA",
        "channel_code": "GT",
        "payment_term_code": "NET15",
        "payment_method_code": "CK",
        "credit_days": "15",
        **changes,
    }


async def customer_row(engine: AsyncEngine, customer_id: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = (
            (await conn.execute(text("SELECT * FROM customers WHERE id = :i"), {"i": customer_id}))
            .mappings()
            .one()
        )
    return dict(row)


def created_id(response: httpx.Response) -> str:
    found = re.match(r"^/ui/customers/([0-9a-f-]{36})(/edit)?$", response.headers["location"])
    assert found, response.headers["location"]
    return found.group(1)


def error_at(html: str, path: str) -> str:
    """The problem shown under the input named `path`."""
    input_id = "f-" + re.sub(r"[\[\].]+", "-", path).strip("-")
    found = re.search(rf'<p class="field-error" id="{re.escape(input_id)}-error">([^<]+)</p>', html)
    assert found, f"no problem shown at {path}"
    return found.group(1)


async def test_the_new_form_has_every_field_of_the_guide_in_order(sign_in: SignIn) -> None:
    ui = await sign_in("sales1")
    page = await ui.get("/ui/customers/new")
    assert page.status_code == 200, page.text[-3000:]
    positions = [page.text.find(">" + label) for label in GUIDE_LABELS]
    assert -1 not in positions, [x for x, p in zip(GUIDE_LABELS, positions, strict=True) if p < 0]
    assert positions == sorted(positions)
    assert "Lưu hồ sơ" in page.text and "Gửi CS duyệt" in page.text
    assert "Nguyễn Văn An" in page.text  # the owner defaults to the user
    assert 'name="delivery_addresses[0].address"' in page.text
    assert "để không" in page.text or "Để trống nếu giao hàng" in page.text


async def test_save_creates_a_draft_and_edit_keeps_it_with_the_version(
    sign_in: SignIn, engine: AsyncEngine
) -> None:
    ui = await sign_in("sales1")
    await ui.get("/ui/customers/new")
    name = f"Tạp hóa Hải Yến {word()}"
    saved = await ui.post_form("/ui/customers/new", {"full_name": name, "action": "save"})
    assert saved.status_code == 303, saved.text[-2000:]
    cid = created_id(saved)
    row = await customer_row(engine, cid)
    assert row["status"] == "draft" and row["full_name"] == name
    assert row["owner_employee_id"] == "NV001" and row["sales_unit_code"] == "HN-T1"
    page = await ui.follow(saved)
    assert "Đã lưu hồ sơ." in page.text and 'name="version" value="1"' in page.text
    edited = await ui.post_form(
        f"/ui/customers/{cid}/edit",
        complete_form(name, version="1", note="Giao buổi sáng", action="save"),
    )
    assert edited.status_code == 303, edited.text[-2000:]
    row = await customer_row(engine, cid)
    assert row["version"] == 2 and row["note"] == "Giao buổi sáng"
    assert row["phone"] == "+84912345678" and row["credit_days"] == 15


async def test_a_malformed_value_is_shown_at_its_input_and_nothing_is_saved(
    sign_in: SignIn, engine: AsyncEngine
) -> None:
    ui = await sign_in("sales1")
    await ui.get("/ui/customers/new")
    refused = await ui.post_form(
        "/ui/customers/new",
        {"full_name": f"Đại lý {word()}", "phone": "12", "credit_days": "-1", "action": "save"},
    )
    assert refused.status_code == 422
    assert error_at(refused.text, "phone") and error_at(refused.text, "credit_days")
    assert 'value="12"' in refused.text  # what was typed is shown back
    assert re.search(r'id="f-phone"[^>]*aria-invalid="true"[^>]*autofocus', refused.text)
    async with engine.connect() as conn:
        assert not await conn.scalar(text("SELECT count(*) FROM customers WHERE phone = '12'"))


async def test_submit_shows_every_problem_in_vietnamese_then_goes_to_cs(
    sign_in: SignIn, engine: AsyncEngine
) -> None:
    ui = await sign_in("sales1")
    await ui.get("/ui/customers/new")
    name = f"Công ty Phúc Khang {word()}"
    form = complete_form(
        name,
        tax_code=BAD_TAX_CODE,
        phone="",
        action="submit",
        **{
            "invoice_profiles[0].company_name": "Công ty TNHH Phúc Khang",
            "invoice_profiles[0].tax_code": BAD_TAX_CODE,
            "invoice_profiles.default": "0",
        },
    )
    first = await ui.post_form("/ui/customers/new", form)
    assert first.status_code == 422, first.text[-2000:]
    assert "chưa gửi CS duyệt" in first.text
    assert error_at(first.text, "tax_code") == "Mã số thuế không hợp lệ (sai số kiểm tra)."
    assert "sai số kiểm tra" in error_at(first.text, "invoice_profiles[0].tax_code")
    assert error_at(first.text, "phone") == "Điện thoại là bắt buộc khi gửi CS duyệt."
    cid = re.search(r'action="/ui/customers/([0-9a-f-]{36})/edit"', first.text)
    assert cid, "the saved draft is now edited"
    row = await customer_row(engine, cid.group(1))
    assert row["status"] == "draft"  # saved, not submitted
    fixed = {
        **form,
        "tax_code": GOOD_TAX_CODE,
        "invoice_profiles[0].tax_code": GOOD_TAX_CODE,
        "invoice_profiles[0].id": str(row["invoice_profiles"][0]["id"]),
        "phone": "0912345678",
        "version": str(row["version"]),
    }
    sent = await ui.post_form(f"/ui/customers/{cid.group(1)}/edit", fixed)
    assert sent.status_code == 303, sent.text[-3000:]
    assert sent.headers["location"] == f"/ui/customers/{cid.group(1)}"
    row = await customer_row(engine, cid.group(1))
    assert row["status"] == "pending_approval" and row["tax_code"] == GOOD_TAX_CODE
    assert row["invoice_profiles"][0]["is_default"] is True


async def test_a_stale_edit_is_refused_and_offers_to_reload(
    sign_in: SignIn, create: Create, engine: AsyncEngine
) -> None:
    customer = await create(f"Nhà thuốc An Khang {word()}")
    ui = await sign_in("sales1")
    await ui.get(f"/ui/customers/{customer['id']}/edit")
    first = await ui.post_form(
        f"/ui/customers/{customer['id']}/edit",
        complete_form(customer["full_name"], version="1", note="một", action="save"),
    )
    assert first.status_code == 303
    await ui.get(f"/ui/customers/{customer['id']}/edit")
    stale = await ui.post_form(
        f"/ui/customers/{customer['id']}/edit",
        complete_form(customer["full_name"], version="1", note="hai", action="save"),
    )
    assert stale.status_code == 412
    assert "đã được người khác thay đổi" in stale.text and 'id="stale-notice"' in stale.text
    assert f'href="/ui/customers/{customer["id"]}/edit"' in stale.text
    assert ">hai</textarea>" in stale.text  # the user's text is still there
    assert (await customer_row(engine, customer["id"]))["note"] == "một"


async def test_a_pending_customer_cannot_be_edited(
    sign_in: SignIn, create: Create, set_status: SetStatus, engine: AsyncEngine
) -> None:
    customer = await create(f"Cửa hàng Bình An {word()}")
    await set_status(customer["id"], "pending_approval")
    ui = await sign_in("sales1")
    page = await ui.get(f"/ui/customers/{customer['id']}/edit")
    assert page.status_code == 409 and "đang chờ CS duyệt nên chưa sửa được" in page.text
    refused = await ui.post_form(
        f"/ui/customers/{customer['id']}/edit",
        complete_form("Tên khác", version=str(customer["version"]), action="save"),
    )
    assert refused.status_code == 409 and "Không lưu được" in refused.text
    assert (await customer_row(engine, customer["id"]))["full_name"] == customer["full_name"]


def first_submit_button(html: str) -> str:
    """The form's default button (what Enter in a field presses): its first submit button."""
    form = re.search(r'<form[^>]*id="customer-form".*?</form>', html, re.S)
    assert form
    button = re.search(r"<button(?![^>]*type=\"button\")[^>]*>", form.group(0))
    assert button, "the form has no submit button"
    return button.group(0)


async def test_enter_in_a_field_saves(
    sign_in: SignIn, create: Create, set_status: SetStatus
) -> None:
    ui = await sign_in("sales1")
    customer = await create(f"Enter {word()}")
    for path in ("/ui/customers/new", f"/ui/customers/{customer['id']}/edit"):
        button = first_submit_button((await ui.get(path)).text)
        assert 'name="action" value="save"' in button and "visually-hidden" in button
        assert not re.search(r"\shidden[\s>=]", button)  # invisible, not display:none
    await set_status(customer["id"], "active")
    button = first_submit_button((await ui.get(f"/ui/customers/{customer['id']}/edit")).text)
    assert 'value="save"' in button


async def test_a_locked_customer_is_shown_read_only(
    sign_in: SignIn, create: Create, set_status: SetStatus
) -> None:
    customer = await create(f"Khóa {word()}")
    ui = await sign_in("sales1")
    for status, why in (
        ("pending_approval", "đang chờ CS duyệt nên chưa sửa được"),
        ("inactive", "đã ngừng hoạt động nên không sửa được"),
    ):
        await set_status(customer["id"], status)
        page = await ui.get(f"/ui/customers/{customer['id']}/edit")
        assert page.status_code == 409
        notice = re.search(r'id="locked-notice".*?</div>', page.text, re.S)
        assert notice and why in notice.group(0) and "chỉ để xem" in notice.group(0)
        assert 'id="save"' not in page.text and 'id="submit"' not in page.text
        assert "Gửi CS duyệt</button>" not in page.text and 'value="save"' not in page.text
        assert '<fieldset class="form-lock" disabled>' in page.text
        assert "upload-form" not in page.text
        assert f'href="/ui/customers/{customer["id"]}"' in page.text  # the way back


async def test_an_active_customers_governed_change_goes_to_cs(
    sign_in: SignIn, create: Create, set_status: SetStatus, engine: AsyncEngine
) -> None:
    customer = await create(f"Siêu thị mini Hoa Mai {word()}")
    await set_status(customer["id"], "active")
    ui = await sign_in("sales1")
    page = await ui.get(f"/ui/customers/{customer['id']}/edit")
    assert (
        'id="governed-notice"' in page.text
        and "Gửi CS duyệt" not in page.text.split('id="governed-notice"')[1].split("</div>")[0]
    )
    saved = await ui.post_form(
        f"/ui/customers/{customer['id']}/edit",
        complete_form("Siêu thị Hoa Mai (mới)", version=str(customer["version"]), action="save"),
    )
    assert saved.status_code == 303
    after = await ui.follow(saved)
    assert "giá trị hiện tại vẫn áp dụng" in after.text
    assert f"Đang áp dụng: {customer['full_name']}" in after.text
    assert 'value="Siêu thị Hoa Mai (mới)"' in after.text  # the proposal, kept on save
    row = await customer_row(engine, customer["id"])
    assert row["full_name"] == customer["full_name"]
    assert row["pending_change"]["fields"]["full_name"] == "Siêu thị Hoa Mai (mới)"


async def test_rows_are_added_removed_and_one_is_default_without_javascript(
    sign_in: SignIn, engine: AsyncEngine
) -> None:
    ui = await sign_in("sales1")
    page = await ui.get("/ui/customers/new")
    assert "Để trống nếu giao hàng tới chính địa chỉ của khách hàng" in page.text
    base = {
        "full_name": f"Đại lý Minh Châu {word()}",
        "delivery_addresses[0].address": "Kho 1, 5 Lê Lợi",
        "delivery_addresses[1].address": "",  # the blank row: ignored
    }
    added = await ui.post_form("/ui/customers/new", {**base, "action": "add:delivery_addresses"})
    assert added.status_code == 200
    assert 'value="Kho 1, 5 Lê Lợi"' in added.text
    assert 'name="delivery_addresses[1].address"' in added.text  # the added row
    assert 'name="delivery_addresses[2].address"' in added.text  # and a blank one
    three = {
        **base,
        "delivery_addresses[1].address": "Kho 2, 7 Trần Phú",
        "delivery_addresses[2].address": "Kho 3, 9 Hai Bà Trưng",
        "delivery_addresses.default": "2",
    }
    removed = await ui.post_form(
        "/ui/customers/new", {**three, "action": "remove:delivery_addresses:0"}
    )
    assert 'value="Kho 1, 5 Lê Lợi"' not in removed.text
    assert re.search(r'name="delivery_addresses.default" value="1" checked', removed.text)
    saved = await ui.post_form(
        "/ui/customers/new",
        {
            "full_name": base["full_name"],
            "delivery_addresses[0].address": "Kho 2, 7 Trần Phú",
            "delivery_addresses[3].address": "Kho 3, 9 Hai Bà Trưng",  # numbers need not follow
            "delivery_addresses.default": "3",
            "action": "save",
        },
    )
    assert saved.status_code == 303, saved.text[-2000:]
    row = await customer_row(engine, created_id(saved))
    assert [(a["address"], a["is_default"]) for a in row["delivery_addresses"]] == [
        ("Kho 2, 7 Trần Phú", False),
        ("Kho 3, 9 Hai Bà Trưng", True),
    ]


async def test_a_group_fills_its_default_terms(sign_in: SignIn, engine: AsyncEngine) -> None:
    ui = await sign_in("sales1")
    page = await ui.get("/ui/customers/new")
    option = re.search(r'<option value="TAPHOA"([^>]*)>', page.text)
    assert option and 'data-term="COD"' in option.group(1) and 'data-days="0"' in option.group(1)
    saved = await ui.post_form(
        "/ui/customers/new",
        {"full_name": f"Tạp hóa {word()}", "customer_group_code": "TAPHOA", "action": "save"},
    )
    row = await customer_row(engine, created_id(saved))
    assert row["payment_term_code"] == "COD" and row["credit_days"] == 0


async def test_the_unit_cascades(sign_in: SignIn) -> None:
    ui = await sign_in("sales1")
    wards = await ui.get("/ui/units/options", params={"level": "ward", "province": "01"})
    assert wards.status_code == 200 and 'value="00004"' in wards.text
    assert "<html" not in wards.text
    districts = await ui.get("/ui/units/options", params={"level": "district", "province": "01"})
    assert 'value="001"' in districts.text
    legacy = await ui.get(
        "/ui/units/options",
        params={"level": "ward", "scheme": "legacy", "province": "01", "district": "001"},
    )
    assert 'value="00001"' in legacy.text
    provinces = await ui.get("/ui/units/options", params={"level": "province", "scheme": "legacy"})
    assert provinces.text.count("<option") == 64  # 63 and "choose"
    assert (await ui.get("/ui/units/options", params={"level": "x"})).status_code == 404
    # Without JavaScript: "refresh" re-renders the form with the chosen province's wards.
    await ui.get("/ui/customers/new")
    refreshed = await ui.post_form(
        "/ui/customers/new", {"full_name": "x", "province_code": "01", "action": "refresh"}
    )
    assert 'value="00004"' in refreshed.text


async def test_a_legacy_address_shows_its_2025_equivalent_and_the_warning(
    sign_in: SignIn,
) -> None:
    from shared import admin_units

    split = next(c for c in admin_units.legacy_to_2025_ward_mapping().values() if c.ambiguous)
    ui = await sign_in("sales1")
    fragment = await ui.get(
        "/ui/units/equivalent",
        params={"province": split.legacy_province_code, "ward": split.legacy_ward_code},
    )
    assert "Tương đương từ 01/07/2025" in fragment.text and "nhiều phường/xã mới" in fragment.text
    await ui.get("/ui/customers/new")
    page = await ui.post_form(
        "/ui/customers/new",
        {
            "full_name": "x",
            "admin_scheme": "legacy",
            "province_code": split.legacy_province_code,
            "district_code": split.legacy_district_code,
            "ward_code": split.legacy_ward_code,
            "action": "refresh",
        },
    )
    assert "nhiều phường/xã mới" in page.text and "data-unit-district>" in page.text


async def test_uploads_go_through_the_attachment_rules(
    sign_in: SignIn, create: Create, engine: AsyncEngine
) -> None:
    customer = await create(f"Tạp hóa Ngọc Lan {word()}")
    ui = await sign_in("sales1")
    page = await ui.get(f"/ui/customers/{customer['id']}/edit")
    token = csrf_of(page.text)
    url = f"/ui/customers/{customer['id']}/attachments"

    async def send(
        content: bytes, name: str, *, json: bool = True, **headers: str
    ) -> httpx.Response:
        return await ui.http.post(
            url,
            data={"csrf_token": token, "kind": "image"},
            files={"file": (name, content, "image/png")},
            headers={
                "Origin": ORIGIN,
                **({"Accept": "application/json"} if json else {}),
                **headers,
            },
        )

    good = await send(png_bytes(), "mặt tiền.png")
    assert good.status_code == 200 and good.json()["ok"], good.text
    assert "mặt tiền.png" in good.json()["html"] and "<img" in good.json()["html"]
    spoofed = await send(b"MZ\x90\x00 not an image", "ảnh.png")
    assert spoofed.status_code == 415 and "không thuộc loại được phép" in spoofed.json()["message"]
    no_js = await send(b"MZ\x90\x00", "x.png", json=False)
    assert no_js.status_code == 303
    assert "không thuộc loại" in (await ui.follow(no_js)).text
    foreign = await send(png_bytes(), "a.png", Origin="https://evil.example")
    assert foreign.status_code == 403
    no_token = await ui.http.post(
        url, files={"file": ("a.png", png_bytes(), "image/png")}, headers={"Origin": ORIGIN}
    )
    assert no_token.status_code == 403
    async with engine.connect() as conn:
        count = await conn.scalar(
            text("SELECT count(*) FROM attachments WHERE customer_id = :c"), {"c": customer["id"]}
        )
    assert count == 1


async def test_too_big_an_upload_is_refused_as_too_big(
    sign_in: SignIn, create: Create, customer_app: FastAPI, engine: AsyncEngine
) -> None:
    customer = await create(f"Tạp hóa {word()}")
    ui = await sign_in("sales1")
    page = await ui.get(f"/ui/customers/{customer['id']}/edit")
    limit = customer_app.state.runtime.settings.attachment_max_bytes
    assert limit == 20 * 1024 * 1024  # the default, named by the hint and the script
    assert "tối đa 20 MB mỗi tệp" in page.text and f'data-max-bytes="{limit}"' in page.text
    assert 'data-too-big="Tệp vượt quá giới hạn 20 MB."' in page.text
    token = csrf_of(page.text)
    content = png_bytes() + b"\0" * (limit + 70 * 1024)

    async def send(*, json: bool, origin: str = ORIGIN) -> httpx.Response:
        return await ui.http.post(
            f"/ui/customers/{customer['id']}/attachments",
            data={"csrf_token": token, "kind": "image"},
            files={"file": ("big.png", content, "image/png")},
            headers={"Origin": origin, **({"Accept": "application/json"} if json else {})},
        )

    # Refused by its declared length, before it is read: the API's 413, not "form expired".
    big = await send(json=True)
    assert big.status_code == 413, big.text[:500]
    assert big.json() == {"ok": False, "message": "Tệp vượt quá giới hạn 20 MB."}
    no_js = await send(json=False)
    assert no_js.status_code == 303
    after = await ui.follow(no_js)
    assert "Không tải lên hoặc xóa được tệp: Tệp vượt quá giới hạn 20 MB." in after.text
    assert "hết hạn" not in after.text
    assert (await send(json=True, origin="https://evil.example")).status_code == 403
    async with engine.connect() as conn:
        count = await conn.scalar(
            text("SELECT count(*) FROM attachments WHERE customer_id = :c"), {"c": customer["id"]}
        )
    assert count == 0


async def test_only_the_owner_or_their_managers_edit(sign_in: SignIn, create: Create) -> None:
    theirs = await create(f"Tạp hóa {word()}", user="sales2")
    sales1 = await sign_in("sales1")
    for path in (f"/ui/customers/{theirs['id']}/edit", f"/ui/customers/{uuid.uuid4()}/edit"):
        assert (await sales1.get(path)).status_code == 404
    await sales1.get("/ui/customers/new")
    posted = await sales1.post_form(
        f"/ui/customers/{theirs['id']}/edit", {"full_name": "x", "version": "1", "action": "save"}
    )
    assert posted.status_code == 404
    cs = await sign_in("cs1")
    for path in ("/ui/customers/new", f"/ui/customers/{theirs['id']}/edit"):
        page = await cs.get(path)
        assert page.status_code == 403 and "không có quyền dùng trang này" in page.text
    manager = await sign_in("manager1")
    page = await manager.get(f"/ui/customers/{theirs['id']}/edit")
    assert page.status_code == 200 and '<select id="f-owner_employee_id"' in page.text


async def test_what_users_type_is_escaped(sign_in: SignIn, engine: AsyncEngine) -> None:
    ui = await sign_in("sales1")
    await ui.get("/ui/customers/new")
    evil = '<script>alert("x")</script>'
    saved = await ui.post_form(
        "/ui/customers/new",
        {"full_name": evil, "note": evil, "delivery_addresses[0].address": evil, "action": "save"},
    )
    page = await ui.follow(saved)
    assert "<script>alert" not in page.text and "&lt;script&gt;alert(" in page.text
