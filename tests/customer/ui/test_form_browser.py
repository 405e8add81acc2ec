"""The customer form in a real browser, for what only a browser shows: the Enter key, the
sticky action bar over a focused field, the legacy cascade's requests, the owner's unit
and the upload size check made before sending.

Chromium (Debian's, headless) against the customer app served by uvicorn on a free port
(as tests/approval/ui/test_browser.py does), on the session's customer database.
"""

import asyncio
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from customer.ui import form_options
from ims_cli.ports import free_port
from tests.customer.ui.test_form import customer_row
from tests.fixtures.apps import build_app

pytestmark = pytest.mark.timeout(120)
#: A small upload limit, so that the script's size check needs no 20 MB file.
MAX_BYTES = 1024 * 1024


@pytest.fixture(scope="module")
def server(
    service_databases: dict[str, str],
    dev_keys: tuple[Path, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("customer-ui")
    app = build_app(
        "customer",
        service_databases["customer"],
        dev_keys[1],
        blob_dir=folder / "blobs",
        upload_tmp_dir=folder / "spool",
        attachment_max_bytes=MAX_BYTES,
    )
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)

    def serve() -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(server.serve())
            loop.run_until_complete(app.state.runtime.engine.dispose())
        finally:
            loop.close()

    thread = threading.Thread(target=serve, name="customer-ui-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the customer UI server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


class Pages:
    """Signed-in pages, one browser context each, closed (and checked) at the end."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser, self.base_url = browser, base_url
        self.errors: list[str] = []
        self.contexts: list[BrowserContext] = []

    async def open(self, username: str, width: int = 1366, height: int = 768) -> Page:
        context = await self.browser.new_context(
            viewport={"width": width, "height": height}, locale="vi-VN"
        )
        self.contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(8_000)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        await page.goto(f"{self.base_url}/ui/customers")
        await page.click(f"button[name=username][value={username}]")
        await expect(page).to_have_url(re.compile(r"/ui/customers$"))
        return page


@pytest.fixture
async def pages(browser: Browser, server: str) -> AsyncIterator[Pages]:
    found = Pages(browser, server)
    yield found
    for context in found.contexts:
        await context.close()
    assert not found.errors, found.errors  # no CSP violation, no script error


async def test_enter_in_a_field_saves_the_draft(pages: Pages, engine: AsyncEngine) -> None:
    page = await pages.open("sales1")
    await page.goto(f"{pages.base_url}/ui/customers/new")
    name = f"Enter lưu {time.time_ns()}"
    await page.fill("#f-full_name", name)
    await page.press("#f-full_name", "Enter")
    await expect(page).to_have_url(re.compile(r"/ui/customers/[0-9a-f-]{36}/edit$"))
    await expect(page.get_by_text("Đã lưu hồ sơ.")).to_be_visible()
    customer_id = page.url.split("/")[-2]
    row = await customer_row(engine, customer_id)
    assert (row["full_name"], row["status"]) == (name, "draft")

    # On the edit page, a file over the limit is refused before a byte is sent.
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    await expect(page.locator("#upload-limits")).to_contain_text("tối đa 1 MB")
    await page.set_input_files(
        "#upload-file",
        files=[{"name": "to.png", "mimeType": "image/png", "buffer": b"\0" * (MAX_BYTES + 1)}],
    )
    await page.click("form[data-upload] button[type=submit]")
    await expect(page.locator("[data-upload-error]")).to_have_text("Tệp vượt quá giới hạn 1 MB.")
    assert posts == []


@pytest.mark.parametrize(("width", "height"), [(375, 740), (1366, 768)])
async def test_the_action_bar_never_hides_the_focused_field(
    pages: Pages, width: int, height: int
) -> None:
    page = await pages.open("sales1", width, height)
    await page.goto(f"{pages.base_url}/ui/customers/new")
    bar = await page.locator(".form-actions").bounding_box()
    assert bar and bar["height"] < (70 if width < 700 else 80), bar  # one row of buttons
    await page.focus("#f-full_name")
    for _ in range(60):  # every field from the name to the note, by keyboard
        await page.keyboard.press("Tab")
        seen = await page.evaluate(
            """() => {
                const a = document.activeElement, r = a.getBoundingClientRect();
                const bar = document.querySelector('.form-actions').getBoundingClientRect();
                return {id: a.id, top: r.top, bottom: r.bottom, barTop: bar.top,
                        inBar: !!a.closest('.form-actions')};
            }"""
        )
        assert not seen["inBar"], seen
        assert seen["top"] >= 0 and seen["bottom"] <= seen["barTop"], seen  # visible, above
        if seen["id"] == "f-note":
            break
    else:
        raise AssertionError("the note was not reached by Tab")


async def test_a_legacy_province_change_lists_its_own_wards(pages: Pages) -> None:
    page = await pages.open("sales1")
    await page.goto(f"{pages.base_url}/ui/customers/new")

    async def values(select: str) -> list[str]:
        return list(
            await page.eval_on_selector_all(f"{select} option", "os => os.map(o => o.value)")
        )

    async def shows(select: str, options: list[form_options.Option]) -> None:
        wanted = ["", *(o.code for o in options)]
        await page.wait_for_function(
            "([s, w]) => JSON.stringify([...document.querySelectorAll(s + ' option')]"
            ".map(o => o.value)) === JSON.stringify(w)",
            arg=[select, wanted],
        )

    await page.check("#f-admin_scheme")
    await shows("#f-province_code", form_options.provinces("legacy"))
    await page.select_option("#f-province_code", "01")
    await shows("#f-district_code", form_options.districts("01"))
    district = (await values("#f-district_code"))[1]
    await page.select_option("#f-district_code", district)
    await shows("#f-ward_code", form_options.wards("legacy", "01", district))
    other = next(v for v in await values("#f-province_code") if v not in ("", "01"))
    await page.select_option("#f-province_code", other)
    await shows("#f-district_code", form_options.districts(other))
    await shows("#f-ward_code", form_options.wards("legacy", other, None))
    await page.wait_for_load_state("networkidle")  # and no late answer undoes it
    await shows("#f-ward_code", form_options.wards("legacy", other, None))


async def test_the_unit_follows_the_chosen_owner(pages: Pages, engine: AsyncEngine) -> None:
    page = await pages.open("manager1")
    await page.goto(f"{pages.base_url}/ui/customers/new")
    unit = page.locator("#f-sales_unit_code")
    await expect(unit).to_have_value("")
    await expect(unit.locator("option[value='']")).to_contain_text("(MB-HN)")
    await page.select_option("#f-owner_employee_id", "NV001")
    await expect(unit.locator("option[value='']")).to_contain_text("(HN-T1)")
    await expect(unit).to_have_value("")
    name = f"Cho An {time.time_ns()}"
    await page.fill("#f-full_name", name)
    await page.click("#save")
    await expect(page).to_have_url(re.compile(r"/edit$"))
    row = await customer_row(engine, page.url.split("/")[-2])
    assert (row["owner_employee_id"], row["sales_unit_code"]) == ("NV001", "HN-T1")
