"""The thin path of issue 2 through real processes, real PostgreSQL and a real broker:
draft → submit → review → approve (code) → active → MISA → misa_code back."""

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Stack


def eventually[T](
    probe: Callable[[], T | None], *, timeout_s: float = 90, what: str = "condition"
) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def new_customer(stack: Stack) -> dict[str, Any]:
    payload = {
        "full_name": f"Tạp hóa Ngọc Lan {uuid.uuid4().hex[:6]}",
        "phone": "0987 654 321",
        "address": "45 Phố Huế",
        "province_code": "01",
        "customer_type_code": "HKD",
        "customer_group_code": "TAPHOA",
        "channel_code": "GT",
        "payment_term_code": "NET15",
        "payment_method_code": "CK",
        "credit_days": 15,
    }
    created = httpx.post(
        f"{stack.url('customer')}/api/v1/customers", json=payload, headers=stack.auth("sales1")
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


def pending_review(stack: Stack, customer_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        page = httpx.get(
            f"{stack.url('approval')}/api/v1/reviews",
            params={"customer_id": customer_id, "status": "pending"},
            headers=stack.auth("cs1"),
        ).json()
        return page["items"][0] if page["items"] else None

    return eventually(probe, what="the review")


def customer(stack: Stack, customer_id: str) -> dict[str, Any]:
    return dict(
        httpx.get(
            f"{stack.url('customer')}/api/v1/customers/{customer_id}", headers=stack.auth("sales1")
        ).json()
    )


def test_every_part_is_ready(stack: Stack) -> None:
    for part in ("customer", "approval", "misa_sync", "reference"):
        ready = httpx.get(f"{stack.url(part)}/readyz")
        assert ready.status_code == 200, (part, ready.text)
        assert httpx.get(f"{stack.url(part)}/openapi.json").status_code == 200
    assert httpx.get(f"{stack.url('simulator')}/healthz").status_code == 200


def test_reference_serves_the_form_lists(stack: Stack) -> None:
    h = stack.auth("sales1")
    assert len(httpx.get(f"{stack.url('reference')}/api/v1/provinces", headers=h).json()) == 34
    assert (
        len(
            httpx.get(
                f"{stack.url('reference')}/api/v1/provinces", params={"scheme": "legacy"}, headers=h
            ).json()
        )
        == 63
    )
    for path in (
        "customer-types",
        "customer-groups",
        "channels",
        "payment-terms",
        "payment-methods",
        "sales-units",
        "employees",
    ):
        assert httpx.get(f"{stack.url('reference')}/api/v1/{path}", headers=h).json(), path


def test_the_thin_path_from_draft_to_misa_code(stack: Stack) -> None:
    draft = new_customer(stack)
    cid = draft["id"]
    submitted = httpx.post(
        f"{stack.url('customer')}/api/v1/customers/{cid}/submit", headers=stack.auth("sales1")
    )
    assert submitted.status_code == 200 and submitted.json()["status"] == "pending_approval"
    review = pending_review(stack, cid)
    assert review["kind"] == "new" and review["submitted_by"] == "NV001"
    # The manager sees it through the sales-force replica that reference's events filled;
    # a salesperson of another team does not.
    url = f"{stack.url('customer')}/api/v1/customers/{cid}"
    eventually(
        lambda: httpx.get(url, headers=stack.auth("manager1")).status_code == 200,
        what="the manager's view",
    )
    assert httpx.get(url, headers=stack.auth("sales2")).status_code == 404

    approved = httpx.post(
        f"{stack.url('approval')}/api/v1/reviews/{review['id']}/approve", headers=stack.auth("cs1")
    )
    assert approved.status_code == 200, approved.text
    code = approved.json()["customer_code"]
    assert code.startswith("KH") and len(code) == 8

    active = eventually(
        lambda: (c := customer(stack, cid))["status"] == "active" and c, what="activation"
    )
    assert active["customer_code"] == code
    eligibility = httpx.get(
        f"{stack.url('customer')}/api/v1/customers/{cid}/order-eligibility",
        headers=stack.auth("sales1"),
    )
    assert eligibility.json() == {"eligible": True, "reason": None}

    linked = eventually(
        lambda: (c := customer(stack, cid))["misa_code"] and c, what="the MISA code"
    )
    assert linked["misa_code"] == code
    link = httpx.get(
        f"{stack.url('misa_sync')}/api/v1/misa-links/{cid}", headers=stack.auth("accountant1")
    ).json()
    assert link["state"] == "synced" and link["misa_code"] == code
    in_misa = httpx.get(
        f"{stack.url('simulator')}/_sim/account-objects", params={"code": code}
    ).json()["items"]
    assert len(in_misa) == 1 and in_misa[0]["is_customer"] is True
    history = httpx.get(
        f"{stack.url('customer')}/api/v1/customers/{cid}/history", headers=stack.auth("sales1")
    ).json()
    assert [h["action"] for h in history["items"]] == [
        "created",
        "submitted",
        "approved",
        "misa_linked",
    ]


def test_a_rejection_goes_back_to_the_salesperson(stack: Stack) -> None:
    cid = new_customer(stack)["id"]
    httpx.post(
        f"{stack.url('customer')}/api/v1/customers/{cid}/submit", headers=stack.auth("sales1")
    )
    review = pending_review(stack, cid)
    rejected = httpx.post(
        f"{stack.url('approval')}/api/v1/reviews/{review['id']}/reject",
        json={"reason": "Thiếu giấy phép kinh doanh"},
        headers=stack.auth("cs1"),
    )
    assert rejected.status_code == 200
    back = eventually(
        lambda: (c := customer(stack, cid))["status"] == "rejected" and c, what="the rejection"
    )
    assert back["rejection_reason"] == "Thiếu giấy phép kinh doanh"
    assert back["customer_code"] is None


@pytest.mark.parametrize("victims", [("customer",), ("approval", "misa_sync")])
def test_killing_services_mid_path_loses_nothing_and_applies_nothing_twice(
    stack: Stack, victims: tuple[str, ...]
) -> None:
    cid = new_customer(stack)["id"]
    httpx.post(
        f"{stack.url('customer')}/api/v1/customers/{cid}/submit", headers=stack.auth("sales1")
    )
    review = pending_review(stack, cid)
    approved = httpx.post(
        f"{stack.url('approval')}/api/v1/reviews/{review['id']}/approve", headers=stack.auth("cs1")
    )
    assert approved.status_code == 200
    code = approved.json()["customer_code"]
    for victim in victims:  # SIGKILL right after the decision: events are in flight
        stack.kill(victim)

    def linked() -> dict[str, Any] | None:
        try:
            c = customer(stack, cid)
        except httpx.HTTPError:
            return None  # the customer service is being restarted
        return c if c.get("misa_code") else None

    done = eventually(linked, timeout_s=150, what="the path to complete after the kill")
    assert (
        done["status"] == "active" and done["customer_code"] == code and done["misa_code"] == code
    )
    history = httpx.get(
        f"{stack.url('customer')}/api/v1/customers/{cid}/history", headers=stack.auth("sales1")
    ).json()
    assert [h["action"] for h in history["items"]] == [
        "created",
        "submitted",
        "approved",
        "misa_linked",
    ]
    in_misa = httpx.get(
        f"{stack.url('simulator')}/_sim/account-objects", params={"code": code}
    ).json()["items"]
    assert len(in_misa) == 1


def test_an_admin_edit_in_reference_reaches_the_replicas(stack: Stack) -> None:
    """Reference → Kafka → customer's and approval's replicas: a new payment term is usable
    by the form at once, and once deactivated a submission using it is refused."""
    import asyncio

    import asyncpg

    code = f"NET{uuid.uuid4().hex[:4].upper()}"
    created = httpx.post(
        f"{stack.url('reference')}/api/v1/payment-terms",
        json={
            "code": code,
            "name": "Thanh toán trong 20 ngày",
            "name_en": "Net 20",
            "attributes": {"days": 20, "due_basis": "invoice_date"},
        },
        headers=stack.auth("admin1"),
    )
    assert created.status_code == 201, created.text

    def submit_with_term() -> httpx.Response:
        cid = new_customer(stack)["id"]
        httpx.patch(
            f"{stack.url('customer')}/api/v1/customers/{cid}",
            json={"payment_term_code": code},
            headers={**stack.auth("sales1"), "If-Match": '"1"'},
        )
        return httpx.post(
            f"{stack.url('customer')}/api/v1/customers/{cid}/submit", headers=stack.auth("sales1")
        )

    eventually(
        lambda: submit_with_term().status_code == 200, what="the new term in customer's replica"
    )

    async def approval_knows() -> bool:
        conn = await asyncpg.connect(
            f"postgresql://postgres@127.0.0.1:{stack.ports['pg']}/ims_approval"
        )
        try:
            data = await conn.fetchval(
                "SELECT data->>'name' FROM ref_items WHERE list = 'payment-terms' AND code = $1",
                code,
            )
        finally:
            await conn.close()
        return data == "Thanh toán trong 20 ngày"

    eventually(lambda: asyncio.run(approval_knows()), what="the new term in approval's replica")

    deactivated = httpx.patch(
        f"{stack.url('reference')}/api/v1/payment-terms/{code}",
        json={"active": False},
        headers={**stack.auth("admin1"), "If-Match": '"1"'},
    )
    assert deactivated.status_code == 200, deactivated.text

    def refused() -> bool:
        response = submit_with_term()
        return response.status_code == 422 and any(
            e["field"] == "payment_term_code" and e["code"] == "inactive_code"
            for e in response.json()["errors"]
        )

    eventually(refused, what="the deactivation in customer's replica")


def test_type_ahead_search_and_conversion_through_the_stack(stack: Stack) -> None:
    h = stack.auth("sales1")
    hits = httpx.get(
        f"{stack.url('reference')}/api/v1/admin-units/search", params={"q": "hcm"}, headers=h
    ).json()["items"]
    assert hits[0]["kind"] == "province" and hits[0]["code"] == "79"
    converted = httpx.get(
        f"{stack.url('reference')}/api/v1/admin-units/convert",
        params={"scheme": "legacy", "ward_code": "26740"},
        headers=h,
    ).json()
    assert [w["name"] for w in converted["to"]["wards"]] == ["Phường Sài Gòn"]


def test_a_change_to_an_active_customer_goes_through_cs(stack: Stack) -> None:
    cid = new_customer(stack)["id"]
    httpx.post(
        f"{stack.url('customer')}/api/v1/customers/{cid}/submit", headers=stack.auth("sales1")
    )
    review = pending_review(stack, cid)
    httpx.post(
        f"{stack.url('approval')}/api/v1/reviews/{review['id']}/approve", headers=stack.auth("cs1")
    )
    # Linked to MISA too: the link bumps the version, and the edit below must not race it.
    active = eventually(
        lambda: (c := customer(stack, cid))["status"] == "active" and c["misa_code"] and c,
        what="activation and the MISA link",
    )

    changed = httpx.patch(
        f"{stack.url('customer')}/api/v1/customers/{cid}",
        json={"credit_days": 45},
        headers={**stack.auth("sales1"), "If-Match": f'"{active["version"]}"'},
    )
    assert (
        changed.status_code == 200 and changed.json()["credit_days"] == 15
    )  # still the active value

    def change_review() -> dict[str, Any] | None:
        page = httpx.get(
            f"{stack.url('approval')}/api/v1/reviews",
            params={"customer_id": cid, "status": "pending", "kind": "change"},
            headers=stack.auth("cs1"),
        ).json()
        return page["items"][0] if page["items"] else None

    review = eventually(change_review, what="the change review")
    assert review["customer"]["credit_days"] == 45
    approved = httpx.post(
        f"{stack.url('approval')}/api/v1/reviews/{review['id']}/approve", headers=stack.auth("cs1")
    )
    assert approved.json()["customer_code"] == active["customer_code"]
    updated = eventually(
        lambda: (c := customer(stack, cid))["credit_days"] == 45 and c, what="the approved change"
    )
    assert updated["pending_change"] is None and updated["customer_code"] == active["customer_code"]


def test_customers_can_be_created_and_submitted_while_reference_is_down(stack: Stack) -> None:
    """Customer validates against its replica, never against reference itself."""
    import os
    import signal

    pid = stack.child_pid("reference")
    os.kill(pid, signal.SIGSTOP)  # frozen: reference answers nothing, and is not restarted
    try:
        with pytest.raises(httpx.TimeoutException):
            httpx.get(
                f"{stack.url('reference')}/api/v1/channels",
                headers=stack.auth("sales1"),
                timeout=1.0,
            )
        cid = new_customer(stack)["id"]
        submitted = httpx.post(
            f"{stack.url('customer')}/api/v1/customers/{cid}/submit", headers=stack.auth("sales1")
        )
        assert submitted.status_code == 200, submitted.text
        refused = httpx.post(
            f"{stack.url('customer')}/api/v1/customers",
            json={"full_name": "X", "customer_group_code": "NOPE"},
            headers=stack.auth("sales1"),
        )
        assert refused.status_code == 201  # drafts may hold unknown codes; submit judges them
        bad = httpx.post(
            f"{stack.url('customer')}/api/v1/customers/{refused.json()['id']}/submit",
            headers=stack.auth("sales1"),
        )
        assert bad.status_code == 422 and "customer_group_code" in [
            e["field"] for e in bad.json()["errors"]
        ]
    finally:
        os.kill(pid, signal.SIGCONT)
