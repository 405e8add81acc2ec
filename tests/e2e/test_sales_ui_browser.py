"""The salesperson's day in a real browser, on the whole stack (`ims up`): sales1 creates a
customer in the form (two delivery addresses, an invoicing profile, a photo), saves it,
sends it with a wrong tax code and sees the problem at the field, fixes it and sends it;
cs1 approves it in the CS UI; sales1 then sees it active with its code and its MISA code.

Debian's Chromium, headless, through Playwright (tests/fixtures/browser.py); screenshots
of the form and the list go to the browser fixture's screenshot folder.
"""

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.customer.test_attachments import png_bytes
from tests.e2e.conftest import Stack
from tests.fixtures.browser import screenshot_taken

pytestmark = pytest.mark.timeout(300)
BAD_TAX_CODE = "0314409059"  # a wrong check digit: fine for a draft, refused on submit
GOOD_TAX_CODE = "0314409058"


async def new_page(browser: Browser, errors: list[str]) -> Page:
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="vi-VN")
    page = await context.new_page()
    page.set_default_timeout(15_000)
    # The deliberately refused submit answers 422: the browser logs that page load.
    page.on(
        "console",
        lambda m: (
            errors.append(m.text) if m.type == "error" and "status of 422" not in m.text else None
        ),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page


async def sign_in(page: Page, url: str, username: str) -> None:
    await page.goto(url)
    await expect(page).to_have_url(re.compile(r"/ui/sign-in"))
    await page.click(f"button[name=username][value={username}]")


async def shot(page: Page, folder: Path, name: str) -> None:
    path = folder / name
    await page.screenshot(path=str(path), full_page=True)
    screenshot_taken(path)


async def eventually_json(
    url: str, headers: dict[str, str], check: Any, what: str, timeout_s: float = 90
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            body = (await client.get(url, headers=headers)).json()
            if check(body):
                return dict(body)
            await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def errors() -> AsyncIterator[list[str]]:
    found: list[str] = []
    yield found
    assert not found, found  # no CSP violation, no script error


async def test_sales_creates_cs_approves_sales_sees_it_active(
    stack: Stack, browser: Browser, screenshot_dir: Path, errors: list[str], tmp_path: Path
) -> None:
    customer_ui, approval_ui = stack.url("customer"), stack.url("approval")
    name = f"Tạp hóa Thu Hà {int(time.time() * 1000) % 10**8}"
    page = await new_page(browser, errors)
    await sign_in(page, f"{customer_ui}/ui/customers/new", "sales1")
    await expect(page.locator("h1")).to_have_text("Tạo mới khách hàng")

    # The guide's fields, the cascades and the group's defaults, as a salesperson fills them.
    await page.fill("#f-full_name", name)
    await page.fill("#f-phone", "0912 345 678")
    await page.fill("#f-address", "12 Nguyễn Trãi")
    await page.select_option("#f-province_code", "01")
    await expect(page.locator("#f-ward_code option[value='00004']")).to_have_count(1)
    await page.select_option("#f-ward_code", "00004")
    await page.fill("#f-company_name", "Công ty TNHH Thu Hà")
    await page.fill("#f-tax_code", BAD_TAX_CODE)
    await page.select_option("#f-customer_type_code", "HKD")
    await page.select_option("#f-customer_group_code", "TAPHOA")
    await expect(page.locator("#f-payment_term_code")).to_have_value("COD")
    await expect(page.locator("#f-credit_days")).to_have_value("0")
    await page.select_option("#f-channel_code", "GT")
    await page.select_option("#f-payment_method_code", "TM")
    # Two delivery addresses (the second added by the script), the second the default.
    await page.fill("[name='delivery_addresses[0].address']", "Kho 1, 5 Lê Lợi")
    await page.click("#group-delivery_addresses [data-row-add]")
    await page.fill("[name='delivery_addresses[1].address']", "Kho 2, 7 Trần Phú")
    await page.check("[name='delivery_addresses.default'][value='1']")
    await page.fill("[name='invoice_profiles[0].company_name']", "Công ty TNHH Thu Hà")
    await page.fill("[name='invoice_profiles[0].tax_code']", GOOD_TAX_CODE)
    await shot(page, screenshot_dir, "sales-form-new.png")
    await page.click("#save")
    await expect(page.locator(".flash-success")).to_contain_text("Đã lưu hồ sơ")
    customer_id = re.search(r"/ui/customers/([0-9a-f-]{36})/edit", page.url)
    assert customer_id, page.url
    cid = customer_id.group(1)

    # A photo of the shop: progress, then the list shows it without a page load.
    photo = tmp_path / "mặt tiền.png"
    photo.write_bytes(png_bytes())
    await page.select_option("#upload-kind", "image")
    await page.set_input_files("#upload-file", str(photo))
    await expect(page.locator("[data-upload-preview]")).to_be_visible()
    await page.click("form[data-upload] button[type=submit]")
    await expect(page.locator("#attachment-list")).to_contain_text("mặt tiền.png")
    await expect(page.locator("#attachment-list img.thumb")).to_have_count(1)

    # Sent with the wrong tax code: the problem is at the field, in Vietnamese, focused.
    await page.click("#submit")
    error = page.locator("#f-tax_code-error")
    await expect(error).to_have_text("Mã số thuế không hợp lệ (sai số kiểm tra).")
    await expect(page.locator("#f-tax_code")).to_be_focused()
    await shot(page, screenshot_dir, "sales-form-problem.png")
    await page.fill("#f-tax_code", GOOD_TAX_CODE)
    await page.click("#submit")
    await expect(page).to_have_url(re.compile(rf"/ui/customers/{cid}$"))
    await expect(page.locator(".flash-success")).to_contain_text("Đã gửi CS duyệt")

    # CS approves it in the CS UI.
    review = await eventually_json(
        f"{approval_ui}/api/v1/reviews?customer_id={cid}&status=pending",
        stack.auth("cs1"),
        lambda body: body["items"],
        "the review",
    )
    cs_page = await new_page(browser, errors)
    await sign_in(cs_page, f"{approval_ui}/ui/", "cs1")
    await cs_page.goto(f"{approval_ui}/ui/reviews/{review['items'][0]['id']}")
    await cs_page.click("#approve-button")
    await cs_page.locator("#confirm-dialog [data-dialog-ok]").click()
    code = (await cs_page.locator("#customer-code").inner_text()).strip()
    assert re.fullmatch(r"KH\d{6}", code), code

    # Back as sales1: active with its code, and shortly after its MISA code.
    customer = await eventually_json(
        f"{customer_ui}/api/v1/customers/{cid}",
        stack.auth("sales1"),
        lambda body: body["status"] == "active" and body.get("misa_code"),
        "activation and the MISA code",
    )
    await page.goto(f"{customer_ui}/ui/customers/{cid}")
    await expect(page.locator("#customer-status")).to_have_text("Đang hoạt động")
    await expect(page.locator("main")).to_contain_text(code)
    await expect(page.locator("main")).to_contain_text(str(customer["misa_code"]))
    await page.goto(f"{customer_ui}/ui/customers")
    await expect(page.locator("main")).to_contain_text(name)
    await shot(page, screenshot_dir, "sales-list.png")
    # And on a phone: the form still fits (no horizontal scrolling).
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto(f"{customer_ui}/ui/customers/{cid}/edit")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    await shot(page, screenshot_dir, "sales-form-phone.png")
