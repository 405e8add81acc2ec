"""The CS web UI on the real stack: reviews that customer events created, duplicates from
approval's replica, an attachment streamed from the customer service as the signed-in
user, and a decision that reaches the customer service through the broker."""

import re
import uuid

import httpx

from tests.customer.test_attachments import png_bytes
from tests.e2e.conftest import Stack
from tests.e2e.test_thin_path import customer, eventually, new_customer, pending_review

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


class Browser:
    """A cookie-keeping client posting forms as a page of the approval UI would."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, follow_redirects=True)
        self.origin = base_url
        self.page = ""

    def get(self, path: str, **params: str) -> httpx.Response:
        response = self.http.get(path, params=params)
        self.page = response.text
        return response

    def post(self, path: str, form: dict[str, str]) -> httpx.Response:
        token = CSRF.search(self.page)
        assert token, "the last page had no CSRF token"
        response = self.http.post(
            path, data={"csrf_token": token.group(1), **form}, headers={"Origin": self.origin}
        )
        self.page = response.text
        return response


def submitted(stack: Stack, name_suffix: str, phone: str) -> str:
    draft = new_customer(stack)
    cid = str(draft["id"])
    rename = httpx.patch(
        f"{stack.url('customer')}/api/v1/customers/{cid}",
        # Its own phone: other tests' customers share new_customer's, and a pair sharing
        # a number is what the duplicate check should point at.
        json={"full_name": f"Tạp hóa Ngọc Lan {name_suffix}", "phone": phone},
        headers={**stack.auth("sales1"), "If-Match": f'"{draft["version"]}"'},
    )
    assert rename.status_code == 200, rename.text
    upload = httpx.post(
        f"{stack.url('customer')}/api/v1/customers/{cid}/attachments",
        files={"file": ("mặt tiền.png", png_bytes(), "image/png")},
        data={"kind": "image"},
        headers=stack.auth("sales1"),
    )
    assert upload.status_code == 201, upload.text
    sent = httpx.post(
        f"{stack.url('customer')}/api/v1/customers/{cid}/submit", headers=stack.auth("sales1")
    )
    assert sent.status_code == 200, sent.text
    return cid


def test_cs_approves_in_the_browser_and_the_customer_becomes_active(stack: Stack) -> None:
    suffix = uuid.uuid4().hex[:8]
    phone = f"09{uuid.uuid4().int % 10**8:08d}"
    first = submitted(stack, suffix, phone)
    pending_review(stack, first)  # approval has it in its replica before the second arrives
    second = submitted(stack, f"{suffix}b", phone)
    review = pending_review(stack, second)
    assert any(d["customer_id"] == first for d in review["duplicates"]), review["duplicates"]

    ui = Browser(stack.url("approval"))
    sign_in = ui.get("/ui/")
    assert sign_in.status_code == 200 and sign_in.url.path == "/ui/sign-in"
    signed_in = ui.post("/ui/sign-in/demo", {"username": "cs1", "next": "/ui/"})
    assert signed_in.status_code == 200 and "Hàng chờ duyệt" in signed_in.text

    queue = ui.get("/ui/reviews", q=f"ngoc lan {suffix}b")  # typed without accents
    assert f"/ui/reviews/{review['id']}" in queue.text

    page = ui.get(f"/ui/reviews/{review['id']}")
    assert page.status_code == 200
    assert f"Tạp hóa Ngọc Lan {suffix}</a>" in page.text or f"Ngọc Lan {suffix}<" in page.text
    (attachment,) = review["customer"]["attachments"]
    image = ui.http.get(f"/ui/reviews/{review['id']}/attachments/{attachment['id']}")
    assert image.status_code == 200 and image.content == png_bytes()  # from customer, as cs1
    assert image.headers["content-type"] == "image/png"

    done = ui.post(f"/ui/reviews/{review['id']}/approve", {"confirmed": "1"})
    code_shown = re.search(r'id="customer-code">(KH\d{6})<', done.text)
    assert done.status_code == 200 and code_shown, done.text[:2000]

    active = eventually(
        lambda: (c := customer(stack, second))["status"] == "active" and c, what="activation"
    )
    assert active["customer_code"] == code_shown.group(1)
    queue_after = ui.get("/ui/reviews", q=f"ngoc lan {suffix}b")
    assert f"/ui/reviews/{review['id']}" not in queue_after.text
