"""The customer list (Danh sách khách hàng) in process: scoping per role, search without
accents, filters, tabs, paging, rejected customers, the live-search fragment."""

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import event

import customer.ui
from customer.ui import list_routes
from customer.ui.views import STATUSES
from shared.ui.i18n import Catalog, load_catalogs
from tests.customer.ui.conftest import Create, SetStatus, SignIn, word
from tests.shared.ui.client import UiClient


def listed(html: str) -> list[str]:
    return re.findall(r'class="customer-link" href="/ui/customers/[^"]+">([^<]+)</a>', html)


async def names_for(ui: UiClient, **params: str) -> list[str]:
    page = await ui.get("/ui/customers", params=params)
    assert page.status_code == 200, page.text
    return listed(page.text)


async def test_signing_in_leads_to_the_list_with_the_guides_menu(sign_in: SignIn) -> None:
    sales = await sign_in("sales1")
    page = await sales.get("/ui/")
    assert page.status_code == 200
    assert "Khách hàng" in page.text and "Danh sách khách hàng" in page.text
    assert 'href="/ui/customers/new"' in page.text and "Tạo mới" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in page.headers["content-security-policy"]


async def test_anonymous_visitors_are_sent_to_sign_in(sign_in: SignIn) -> None:
    ui = await sign_in("sales1")
    await ui.get("/ui/")
    signed_out = await ui.post_form("/ui/sign-out")
    assert signed_out.status_code == 303
    for url in ("/ui/", "/ui/customers?q=abc&partial=1"):
        response = await ui.get(url)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/ui/sign-in")


async def test_each_role_sees_the_customers_contract_section_2_allows(
    sign_in: SignIn, create: Create
) -> None:
    tag = word()
    for name, user in (("An", "sales1"), ("Bình", "sales2"), ("Dung", "sales3")):
        await create(f"{name} {tag}", user)
    expected = {
        "sales1": [f"An {tag}"],
        "sales2": [f"Bình {tag}"],
        "sales3": [f"Dung {tag}"],
        "manager1": [f"An {tag}", f"Bình {tag}"],  # the team's, not another region's
        "cs1": [f"An {tag}", f"Bình {tag}", f"Dung {tag}"],
        "accountant1": [f"An {tag}", f"Bình {tag}", f"Dung {tag}"],
        "admin1": [f"An {tag}", f"Bình {tag}", f"Dung {tag}"],
    }
    for user, names in expected.items():
        ui = await sign_in(user)
        assert sorted(await names_for(ui, q=tag)) == sorted(names), user
    cs = await sign_in("cs1")
    assert "Tạo mới" not in (await cs.get("/ui/customers")).text  # read only


async def test_newest_first_with_every_column(sign_in: SignIn, create: Create) -> None:
    tag = word()
    await create(f"Cửa hàng Cũ {tag}")
    await create(f"Tạp hóa Mới {tag}", company_name="Công ty TNHH Minh Anh", phone="0912 000 111")
    sales = await sign_in("sales1")
    page = await sales.get("/ui/customers")  # no search: newest first
    assert listed(page.text)[:2] == [f"Tạp hóa Mới {tag}", f"Cửa hàng Cũ {tag}"]
    for text in (
        "Công ty TNHH Minh Anh",
        "0912000111",
        "Thành phố Hà Nội",  # province 01 by name
        "(GT)",  # the channel's name from the replica, with its code
        "Nguyễn Văn An",  # the owner's name
        "badge badge-info",  # draft
        "Bản nháp",
    ):
        assert text in page.text, text


async def test_search_ignores_accents_and_case(sign_in: SignIn, create: Create) -> None:
    tag = word()
    await create(f"Đại lý Hưng Thịnh {tag}")
    await create(f"Nhà thuốc Phúc Khang {tag}")
    sales = await sign_in("sales1")
    assert await names_for(sales, q=f"dai ly hung thinh {tag}") == [f"Đại lý Hưng Thịnh {tag}"]
    assert await names_for(sales, q=f"PHUC khang {tag}") == [f"Nhà thuốc Phúc Khang {tag}"]
    none = await sales.get("/ui/customers", params={"q": f"zzzz {tag}"})
    assert "Không có khách hàng nào phù hợp" in none.text


async def test_search_answers_as_a_fragment_while_typing(sign_in: SignIn, create: Create) -> None:
    tag = word()
    await create(f"Khách gõ {tag}")
    sales = await sign_in("sales1")
    page = await sales.get("/ui/customers", params={"q": tag})
    assert "<html" in page.text and f'value="{tag}"' in page.text
    assert "data-live-search" in page.text and 'data-target="#results"' in page.text
    fragment = await sales.get("/ui/customers", params={"q": tag, "partial": "1"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert listed(fragment.text) == [f"Khách gõ {tag}"]


async def test_filters_by_status_province_channel_group_and_owner(
    sign_in: SignIn, create: Create, set_status: SetStatus
) -> None:
    tag = word()
    hanoi = await create(f"Hà Nội {tag}")
    await create(
        f"Huế {tag}", province_code="46", ward_code=None, channel_code="MT",
        customer_group_code="SIEUTHI",
    )  # fmt: skip
    await set_status(hanoi["id"], "active")
    manager = await sign_in("manager1")
    await create(f"Của sales2 {tag}", "sales2")
    assert await names_for(manager, q=tag, province_code="46") == [f"Huế {tag}"]
    assert await names_for(manager, q=tag, channel_code="MT") == [f"Huế {tag}"]
    assert await names_for(manager, q=tag, customer_group_code="SIEUTHI") == [f"Huế {tag}"]
    assert await names_for(manager, q=tag, status="active") == [f"Hà Nội {tag}"]
    assert await names_for(manager, q=tag, owner_employee_id="NV002") == [f"Của sales2 {tag}"]
    # A value that is not one of the choices is dropped, not an error.
    odd = await names_for(manager, q=tag, status="bogus", province_code="<x>")
    assert len(odd) == 3
    page = await manager.get("/ui/customers", params={"q": tag, "channel_code": "MT"})
    assert re.search(r'<option value="MT" selected>', page.text)


async def test_rejected_customers_stand_out_with_their_reason(
    sign_in: SignIn, create: Create, set_status: SetStatus
) -> None:
    tag = word()
    rejected = await create(f"Bị trả lại {tag}")
    await create(f"Bình thường {tag}")
    await set_status(rejected["id"], "rejected", rejection_reason="Thiếu giấy phép ĐKKD")
    sales = await sign_in("sales1")
    page = await sales.get("/ui/customers", params={"q": tag})
    row = re.search(r'<tr class="attention">(.*?)</tr>', page.text, re.S)
    assert row and f"Bị trả lại {tag}" in row.group(1)
    assert "CS từ chối: Thiếu giấy phép ĐKKD" in row.group(1)
    assert page.text.count('class="attention"') == 1
    assert re.search(r'id="rejected-count">\d+\+?<', page.text)
    tab = await sales.get("/ui/customers", params={"q": tag, "status": "rejected"})
    assert listed(tab.text) == [f"Bị trả lại {tag}"] and "Bị từ chối" in tab.text


async def test_cursor_paging(
    sign_in: SignIn, create: Create, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(list_routes, "PAGE_SIZE", 2)
    tag = word()
    for n in ("một", "hai", "ba"):
        await create(f"Khách {n} {tag}")
    sales = await sign_in("sales1")
    page = await sales.get("/ui/customers", params={"owner_employee_id": "NV001", "q": tag})
    assert len(listed(page.text)) == 2 and "Trang đầu" not in page.text
    next_url = re.search(r'href="([^"]+)" rel="next"', page.text)
    assert next_url
    second = await sales.get(next_url.group(1).replace("&amp;", "&"))
    assert len(listed(second.text)) == 1 and 'rel="next"' not in second.text
    assert "Trang đầu" in second.text
    assert set(listed(page.text) + listed(second.text)) == {
        f"Khách {n} {tag}" for n in ("một", "hai", "ba")
    }
    newest = await sales.get("/ui/customers", params={"status": "draft"})
    assert 'rel="next"' in newest.text  # newest-first paging too
    bad = await sales.get("/ui/customers", params={"cursor": "garbage"})
    assert bad.status_code == 400 and "text/html" in bad.headers["content-type"]


async def test_customer_data_is_shown_as_text(sign_in: SignIn, create: Create) -> None:
    tag = word()
    evil = "<script>alert(1)</script>"
    await create(f"{evil} {tag}", company_name='"><img src=x onerror=alert(2)>')
    sales = await sign_in("sales1")
    for params in ({"q": tag}, {"q": tag, "partial": "1"}):
        html = (await sales.get("/ui/customers", params=params)).text
        assert evil not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def test_english_switch(sign_in: SignIn) -> None:
    sales = await sign_in("sales1")
    await sales.get("/ui/lang/en?next=/ui/customers")
    page = await sales.get("/ui/customers")
    assert "Customer list" in page.text and "Create new" in page.text
    assert "Danh sách khách hàng" not in page.text


# ---- catalogs -----------------------------------------------------------------------------

UI_DIR = Path(customer.ui.__file__).parent
OWN_FILES = [
    *(UI_DIR / "templates" / "customer" / f for f in ("_nav.html", "list.html")),
    *(UI_DIR / "templates" / "customer" / f for f in ("_list_results.html", "detail.html")),
    *(UI_DIR / f for f in ("list_routes.py", "detail_routes.py", "views.py")),
]
LITERAL_KEY = re.compile(r"""\bt\(\s*["']([a-z0-9_.]+)["']""")
FLASH_KEY = re.compile(r"""flash\(\s*"[a-z]+",\s*"([a-z0-9_.]+)\"""")


def test_the_catalogs_have_both_languages_and_every_key_used() -> None:
    own = load_catalogs(UI_DIR / "messages")
    assert own["vi"] and set(own["vi"]) == set(own["en"])
    catalog = Catalog(UI_DIR / "messages").messages
    used = {
        key
        for path in OWN_FILES
        for pattern in (LITERAL_KEY, FLASH_KEY)
        for key in pattern.findall(path.read_text(encoding="utf-8"))
    }
    used |= {f"status.{s}" for s in STATUSES} | {f"list.tab.{s}" for s in list_routes.TABS}
    used |= {f"detail.eligibility.{r}" for r in ("not_approved", "inactive")}
    used |= {f"detail.action.{a}" for a in HISTORY_ACTIONS}
    used |= {"detail.submit_stale", "detail.submit_conflict"}
    missing = sorted(
        k
        for k in used
        if not k.endswith(".") and (k not in catalog["vi"] or k not in catalog["en"])
    )
    assert not missing


HISTORY_ACTIONS = (
    "created", "updated", "submitted", "approved", "rejected", "change_requested",
    "change_approved", "change_rejected", "deactivated", "reactivated", "misa_linked",
    "attachment_added", "attachment_deleted",
)  # fmt: skip


async def test_a_page_costs_the_same_statements_however_many_rows(
    sign_in: SignIn, create: Create, customer_app: FastAPI
) -> None:
    tag = word()
    for n, channel in enumerate(("GT", "MT", "HORECA")):
        await create(f"Khách {n} {tag}", channel_code=channel)
    sales = await sign_in("sales1")
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    engine = customer_app.state.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        await sales.get("/ui/customers", params={"q": f"Khách 0 {tag}"})
        one_row = len(statements)
        statements.clear()
        page = await sales.get("/ui/customers", params={"q": tag})
        assert len(listed(page.text)) == 3
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == one_row  # names and provinces come in one query per page


async def test_the_owner_filter_offers_whom_the_user_sees(sign_in: SignIn) -> None:
    def owners(html: str) -> set[str]:
        found = re.search(r'<select id="owner_employee_id".*?</select>', html, re.S)
        assert found
        return set(re.findall(r'<option value="(NV\d+)"', found.group(0)))

    sales = await sign_in("sales1")
    assert owners((await sales.get("/ui/customers")).text) == {"NV001"}
    manager = await sign_in("manager1")
    theirs = owners((await manager.get("/ui/customers")).text)
    assert {"NV001", "NV002", "NV010"} <= theirs and not {"NV003", "NV020", "NV099"} & theirs
    cs = await sign_in("cs1")
    assert {"NV001", "NV003", "NV010", "NV020"} <= owners((await cs.get("/ui/customers")).text)
