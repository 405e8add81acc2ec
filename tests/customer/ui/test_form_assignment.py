"""Who owns a customer and in which unit, through the form: a manager's save never moves a
customer by itself, and a customer made for another employee takes that employee's unit
(CONTRACT.md §4)."""

import re

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.customer.ui.conftest import Create, SetStatus, SignIn, word
from tests.customer.ui.test_form import created_id, customer_row


def selected(html: str, select_id: str) -> list[str]:
    """The values selected in a <select> (the browser posts the first, or "" if none)."""
    found = re.search(rf'<select id="{select_id}".*?</select>', html, re.S)
    assert found, f"no select {select_id}"
    return re.findall(r'<option value="([^"]*)"[^>]*\sselected', found.group(0))


async def test_a_managers_save_keeps_an_owner_and_unit_outside_their_choices(
    sign_in: SignIn, create: Create, set_status: SetStatus, engine: AsyncEngine
) -> None:
    # Their own customer, in a unit outside their part of the tree (an admin put it there).
    theirs = await create(
        f"Của quản lý {word()}", user="admin1", owner_employee_id="NV010", sales_unit_code="HCM-T1"
    )
    manager = await sign_in("manager1")
    page = await manager.get(f"/ui/customers/{theirs['id']}/edit")
    assert page.status_code == 200
    assert selected(page.text, "f-sales_unit_code") == ["HCM-T1"]
    assert selected(page.text, "f-owner_employee_id") == ["NV010"]
    saved = await manager.post_form(
        f"/ui/customers/{theirs['id']}/edit",
        {
            "full_name": theirs["full_name"],
            "note": "chỉ sửa ghi chú",
            "owner_employee_id": "NV010",
            "sales_unit_code": "HCM-T1",  # what the page selected
            "version": str(theirs["version"]),
            "action": "save",
        },
    )
    assert saved.status_code == 303, saved.text[-2000:]
    row = await customer_row(engine, theirs["id"])
    assert (row["note"], row["owner_employee_id"], row["sales_unit_code"]) == (
        "chỉ sửa ghi chú",
        "NV010",
        "HCM-T1",
    )

    # An owner the reference lists do not know (left, or not replicated yet).
    ghost = await create(f"Chủ lạ {word()}")
    await set_status(ghost["id"], "draft", owner_employee_id="NV777")
    page = await manager.get(f"/ui/customers/{ghost['id']}/edit")
    assert selected(page.text, "f-owner_employee_id") == ["NV777"]
    assert selected(page.text, "f-sales_unit_code") == ["HN-T1"]
    saved = await manager.post_form(
        f"/ui/customers/{ghost['id']}/edit",
        {
            "full_name": ghost["full_name"],
            "note": "x",
            "owner_employee_id": "NV777",
            "sales_unit_code": "HN-T1",
            "version": str(ghost["version"]),
            "action": "save",
        },
    )
    assert saved.status_code == 303, saved.text[-2000:]
    row = await customer_row(engine, ghost["id"])
    assert (row["note"], row["owner_employee_id"], row["sales_unit_code"]) == (
        "x",
        "NV777",
        "HN-T1",
    )


async def test_a_manager_moves_a_customer_only_on_purpose(
    sign_in: SignIn, create: Create, engine: AsyncEngine
) -> None:
    customer = await create(f"Chuyển {word()}")  # sales1's, in HN-T1
    manager = await sign_in("manager1")
    await manager.get(f"/ui/customers/{customer['id']}/edit")
    # Another owner, the unit left at "the owner's": sales2's unit.
    moved = await manager.post_form(
        f"/ui/customers/{customer['id']}/edit",
        {
            "full_name": customer["full_name"],
            "owner_employee_id": "NV002",
            "sales_unit_code": "",
            "version": str(customer["version"]),
            "action": "save",
        },
    )
    assert moved.status_code == 303, moved.text[-2000:]
    row = await customer_row(engine, customer["id"])
    assert (row["owner_employee_id"], row["sales_unit_code"]) == ("NV002", "HN-T2")
    # The unit alone, chosen.
    await manager.get(f"/ui/customers/{customer['id']}/edit")
    unit = await manager.post_form(
        f"/ui/customers/{customer['id']}/edit",
        {
            "full_name": customer["full_name"],
            "owner_employee_id": "NV002",
            "sales_unit_code": "HN-T1",
            "version": str(row["version"]),
            "action": "save",
        },
    )
    assert unit.status_code == 303, unit.text[-2000:]
    row = await customer_row(engine, customer["id"])
    assert (row["owner_employee_id"], row["sales_unit_code"]) == ("NV002", "HN-T1")


async def test_a_managers_new_customer_takes_its_owners_unit(
    sign_in: SignIn, engine: AsyncEngine
) -> None:
    manager = await sign_in("manager1")
    page = await manager.get("/ui/customers/new")
    assert selected(page.text, "f-owner_employee_id") == ["NV010"]
    assert selected(page.text, "f-sales_unit_code") == []  # "the owner's unit"
    assert '<option value="">Theo nhân viên phụ trách — Khu vực Hà Nội (MB-HN)</option>' in (
        page.text
    )
    assert re.search(
        r'<option value="NV001" data-unit="HN-T1" data-unit-label="[^"]*HN-T1', page.text
    )
    for owner, unit in (("NV001", "HN-T1"), ("NV010", "MB-HN")):
        saved = await manager.post_form(
            "/ui/customers/new",
            {
                "full_name": f"Cho {owner} {word()}",
                "owner_employee_id": owner,
                "sales_unit_code": "",
                "action": "save",
            },
        )
        assert saved.status_code == 303, saved.text[-2000:]
        row = await customer_row(engine, created_id(saved))
        assert (row["owner_employee_id"], row["sales_unit_code"]) == (owner, unit)
    # A salesperson's form shows their own unit, and posts none.
    sales = await sign_in("sales1")
    page = await sales.get("/ui/customers/new")
    assert '<select id="f-sales_unit_code"' not in page.text
    assert "Đội bán hàng Hà Nội 1" in page.text
