"""CS does the job in a real browser: sign in, find, check duplicates, approve, reject.

Chromium (Debian's, headless) against the approval app served by uvicorn on the test
database; the queue's live search, the confirm dialogs and the redirects all run for real.
"""

import re
import struct
import uuid
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.ui.attachments import AttachmentProxy
from tests.approval.helpers import deliver, phone, submission, tax_code, token
from tests.fixtures.browser import UiServer, screenshot_taken

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="vi-VN")
    page = await context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield page
    finally:
        await context.close()
    assert not errors, errors  # no CSP violation, no script error


async def sign_in(page: Page, server: UiServer, username: str) -> None:
    await page.goto(f"{server.base_url}/ui/")
    await expect(page).to_have_url(re.compile(r"/ui/sign-in"))
    await page.click(f"button[name=username][value={username}]")
    await expect(page.locator("h1")).to_have_text("Hồ sơ khách hàng chờ duyệt")


async def search(page: Page, words: str) -> None:
    """Type into the search box: the results follow without a page load (live search),
    and the address bar follows the results."""
    await page.fill("#q", words)
    await expect(page).to_have_url(re.compile(re.escape(urlencode({"q": words})) + "(&|$)"))


def png(width: int = 24, height: int = 16) -> bytes:
    """A small, valid PNG (a green shopfront, as far as the test is concerned)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\0" + b"\x20\xa0\x40" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def status_of(engine: AsyncEngine, customer_id: object) -> str:
    async with engine.connect() as conn:
        value = await conn.scalar(
            text(
                "SELECT status FROM reviews WHERE customer_id = :c ORDER BY customer_version DESC LIMIT 1"
            ),
            {"c": customer_id},
        )
    return str(value)


async def test_cs_finds_checks_approves_and_rejects_in_the_browser(
    page: Page, approval_ui_server: UiServer, engine: AsyncEngine, screenshot_dir: Path
) -> None:
    tag = token("B")
    unit = token("SU")
    shared_tax, shared_phone = tax_code(), phone()
    existing = submission(
        full_name=f"Công ty TNHH Thương mại Phú Quý {tag}",
        company_name=f"Công ty TNHH Thương mại Phú Quý {tag}",
        tax_code=shared_tax,
        phone=shared_phone,
        sales_unit_code=unit,
        province_code="01",
    )
    photo = {
        "id": str(uuid.uuid4()),
        "kind": "image",
        "filename": "mặt tiền.png",
        "content_type": "image/png",
        "size": len(png()),
        "sha256": "0" * 64,
        "uploaded_by": "NV002",
        "uploaded_at": "2026-03-01T02:00:00+00:00",
    }
    newcomer = submission(
        full_name=f"Cửa hàng Phú Quý {tag}",
        tax_code=shared_tax,
        phone=shared_phone,
        address="25 Hàng Bông",
        attachments=[photo],
        sales_unit_code=unit,
        province_code="01",
        by="NV002",
    )
    to_reject = submission(
        full_name=f"Tạp hóa Bảo Ngọc {tag}", sales_unit_code=unit, province_code="01", by="NV003"
    )
    for data in (existing, newcomer, to_reject):
        await deliver(engine, data)
    # The customer service, as the approval UI reaches it: the photo's bytes.
    approval_ui_server.app.state.attachment_proxy = AttachmentProxy(
        "http://customer.test",
        transport=httpx.MockTransport(lambda _: httpx.Response(200, content=png())),
    )

    await sign_in(page, approval_ui_server, "cs1")
    await page.fill("#sales_unit", unit)
    await search(page, f"cua hang phu quy {tag}")
    links = page.locator("#results a.customer-link")
    await expect(links).to_have_count(1)
    await expect(links.first).to_have_text(f"Cửa hàng Phú Quý {tag}")
    await expect(page.locator("#results")).to_contain_text("Có thể trùng")
    queue_shot = screenshot_dir / "cs-queue.png"
    await page.screenshot(path=str(queue_shot), full_page=True)
    screenshot_taken(queue_shot)

    await links.first.click()
    await expect(page.locator("#customer-name")).to_have_text(f"Cửa hàng Phú Quý {tag}")
    duplicates = page.locator("#duplicates")
    await expect(duplicates).to_be_visible()
    await expect(duplicates).to_contain_text("Trùng mã số thuế")
    await expect(duplicates).to_contain_text("Trùng số điện thoại")
    await expect(duplicates.locator("a").first).to_have_text(
        f"Công ty TNHH Thương mại Phú Quý {tag}"
    )
    review_shot = screenshot_dir / "cs-review.png"
    await page.screenshot(path=str(review_shot), full_page=True)
    screenshot_taken(review_shot)

    await page.click("#approve-button")
    dialog = page.locator("#confirm-dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text(f"Cửa hàng Phú Quý {tag}")
    await dialog.locator("[data-dialog-ok]").click()
    code = page.locator("#customer-code")
    await expect(code).to_have_text(re.compile(r"^KH\d{6}$"))
    customer_code = await code.inner_text()
    await expect(page.locator(".flash-success")).to_contain_text(customer_code)
    approved_shot = screenshot_dir / "cs-approved.png"
    await page.screenshot(path=str(approved_shot), full_page=False)
    screenshot_taken(approved_shot)
    assert await status_of(engine, newcomer.customer_id) == "approved"

    await page.click("text=Về hàng chờ duyệt >> nth=0")
    await page.fill("#sales_unit", unit)
    await search(page, tag)
    await expect(page.locator("#results a.customer-link")).to_have_count(2)
    await expect(page.locator("#results")).not_to_contain_text(f"Cửa hàng Phú Quý {tag}")

    await search(page, f"bao ngoc {tag}")
    await expect(page.locator("#results a.customer-link")).to_have_count(1)
    await page.locator("#results a.customer-link").first.click()
    await page.select_option("#reason_code", "missing_documents")
    await page.fill("#reason", "Thiếu giấy phép đăng ký kinh doanh")
    await page.click("#reject-button")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("Thiếu giấy phép đăng ký kinh doanh")
    cancel = dialog.locator("[data-dialog-cancel]")
    await cancel.click()  # changing one's mind changes nothing
    await expect(dialog).to_be_hidden()
    assert await status_of(engine, to_reject.customer_id) == "pending"
    await page.click("#reject-button")
    await dialog.locator("[data-dialog-ok]").click()
    await expect(page.locator(".flash-success")).to_contain_text(
        f"Đã từ chối hồ sơ “Tạp hóa Bảo Ngọc {tag}”"
    )
    assert await status_of(engine, to_reject.customer_id) == "rejected"


async def test_the_queue_fits_a_phone(
    page: Page, approval_ui_server: UiServer, engine: AsyncEngine, screenshot_dir: Path
) -> None:
    await page.set_viewport_size({"width": 390, "height": 844})
    unit = token("SU")
    await deliver(
        engine, submission(full_name=f"Nhà thuốc An Khang {token()}", sales_unit_code=unit)
    )
    await sign_in(page, approval_ui_server, "cs1")
    await page.goto(f"{approval_ui_server.base_url}/ui/reviews?sales_unit={unit}")
    await expect(page.locator("#results a.customer-link")).to_have_count(1)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the page itself must not scroll sideways (tables scroll in place)"
    phone_shot = screenshot_dir / "cs-queue-phone.png"
    await page.screenshot(path=str(phone_shot), full_page=True)
    screenshot_taken(phone_shot)
