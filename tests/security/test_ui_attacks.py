"""Issue 8's security matrix, the browser half: CSRF and stored XSS on both web UIs (CS's
review UI of the approval service, the salesperson UI of the customer service).

CSRF: every state-changing route of both apps, found by walking the apps' routes (a new
POST route that is not in `TARGETS` fails `test_every_state_changing_ui_route_is_in_the_matrix`,
and once added runs the whole matrix), gets every forged request of `ATTACKS`: no token, a
wrong one, one of another user's session or the pre-sign-in one, the token in the URL, a
foreign, look-alike or "null" Origin, a foreign Referer without Origin, neither header,
cross-site content types (text/plain, JSON, multipart where the route takes none) and GET.
Each is refused (403 page; GET: 405, or the read-only page where one lives at that URL) and
the database, the blob store and the session cookie are as they were. The same request
done right is accepted (the control), so the refusals are the CSRF check's.

Stored XSS: payloads in every free-text field the pages show (names, addresses, notes,
contact, delivery addresses, invoice profiles, MISA code, the reject reason, attachment
names), stored through the REST APIs, then every page that shows them rendered: parsed
with html.parser, no element or attribute may come from a payload and no URL attribute may
run script; the pages carry the strict CSP. A real browser then opens the review page with
the payloads and checks no injected script ran.
"""

import re
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from customer.handlers import HANDLERS as CUSTOMER_HANDLERS
from shared.events.contracts import ApprovalCustomerRejectedV1, to_cloud_event
from shared.ui.security import CSP
from tests.approval.helpers import deliver, submission
from tests.approval.ui.test_browser import sign_in
from tests.customer.test_api import complete_customer
from tests.customer.test_attachments import pdf_bytes, png_bytes
from tests.fixtures.apps import build_app
from tests.shared.ui.client import ORIGIN, UiClient, csrf_of

pytestmark = [pytest.mark.usefixtures("customer_replica"), pytest.mark.timeout(300)]

Auth = Callable[[str], dict[str, str]]
BOUNDARY = "x-ui-b0undary"

# ---- the two apps, signed-in browsers ----------------------------------------------------


@dataclass
class Ui:
    name: str  # "approval" or "customer"
    app: FastAPI
    api: httpx.AsyncClient  # the REST API, bearer tokens
    engine: AsyncEngine
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    async def browser(self, username: str | None = None) -> UiClient:
        """A browser of its own (cookie jar), signed in as `username` unless None."""
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://test"
        )
        self.clients.append(client)
        ui = UiClient(client)
        if username:
            await ui.sign_in(username)
        return ui

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()
        await self.api.aclose()
        await self.app.state.runtime.engine.dispose()
        await self.engine.dispose()


@pytest.fixture(scope="module")
async def uis(
    service_databases: dict[str, str],
    dev_keys: tuple[Path, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[dict[str, Ui]]:
    folder = tmp_path_factory.mktemp("ui-attacks")
    apps = {
        "approval": build_app("approval", service_databases["approval"], dev_keys[1]),
        "customer": build_app(
            "customer",
            service_databases["customer"],
            dev_keys[1],
            blob_dir=folder / "blobs",
            upload_tmp_dir=folder / "spool",
        ),
    }
    out = {
        name: Ui(
            name,
            app,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test"),
            create_async_engine(service_databases[name]),
        )
        for name, app in apps.items()
    }
    yield out
    for ui in out.values():
        await ui.close()


# ---- reading forms as a browser does -------------------------------------------------------


class FormReader(HTMLParser):
    """The successful controls of the form with `form_id` (or with that `action`)."""

    def __init__(self, form_id: str | None = None, action: str | None = None) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id, self.action = form_id, action
        self.inside = False
        self.done = False
        self.values: list[tuple[str, str]] = []
        self._select: str | None = None
        self._select_value: str | None = None
        self._option_value: str | None = None
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and not self.done:
            key, wanted = ("id", self.form_id) if self.form_id else ("action", self.action)
            self.inside = a.get(key) == wanted
            return
        if not self.inside:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in ("submit", "button", "file", "image", "reset"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.values.append((name, a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "select" and name:
            self._select, self._select_value = name, None
        elif tag == "option" and self._select:
            self._option_value = a.get("value")
            if "selected" in a or self._select_value is None:
                self._select_value = a.get("value", "")
        elif tag == "textarea" and name:
            self._textarea, self._text = name, ""

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.inside:
            self.inside, self.done = False, True
        elif tag == "select" and self._select:
            self.values.append((self._select, self._select_value or ""))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.values.append((self._textarea, self._text.removeprefix("\n")))
            self._textarea = None


def form_values(
    html: str, form_id: str | None = None, *, action: str | None = None
) -> dict[str, str]:
    reader = FormReader(form_id, action)
    reader.feed(html)
    return dict(reader.values)


# ---- the state-changing routes and how to call each rightly ------------------------------


@dataclass
class Prepared:
    """A route made ready for one case: its URL, the form a page of the site would send
    (without the CSRF token), and a way to read what the route would change."""

    path: str
    fields: dict[str, str]
    snapshot: Callable[[], Awaitable[Any]]
    file: tuple[str, bytes] | None = None  # (field name, bytes) for a multipart upload
    #: Where the token of a page for this form is found (that page's GET).
    page: str = "/ui/sign-in"


async def customer_row(engine: AsyncEngine, customer_id: str) -> Any:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT (SELECT row_to_json(c)::text FROM customers c WHERE c.id = :id),"
                    " (SELECT count(*) FROM attachments WHERE customer_id = :id),"
                    " (SELECT count(*) FROM customer_history WHERE customer_id = :id),"
                    " (SELECT count(*) FROM outbox WHERE key = :key)"
                ),
                {"id": customer_id, "key": customer_id},
            )
        ).one()


async def review_row(engine: AsyncEngine, review_id: str, customer_id: str) -> Any:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT (SELECT row_to_json(r)::text FROM reviews r WHERE r.id = :id),"
                    " (SELECT count(*) FROM outbox WHERE key = :key)"
                ),
                {"id": review_id, "key": customer_id},
            )
        ).one()


async def new_customer(ui: Ui, auth: Auth, **fields: Any) -> dict[str, Any]:
    body = {**complete_customer(f"Khách CSRF {uuid.uuid4().hex[:8]}"), **fields}
    response = await ui.api.post("/api/v1/customers", json=body, headers=auth("sales1"))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def new_review(ui: Ui) -> tuple[str, str]:
    data = submission(full_name=f"Khách CSRF {uuid.uuid4().hex[:8]}")
    await deliver(ui.engine, data)
    async with ui.engine.connect() as conn:
        rid = await conn.scalar(
            text("SELECT id FROM reviews WHERE customer_id = :c"), {"c": str(data.customer_id)}
        )
    return str(rid), str(data.customer_id)


Preparer = Callable[[Ui, Auth, UiClient], Awaitable[Prepared]]


async def prep_sign_out(ui: Ui, auth: Auth, me: UiClient) -> Prepared:
    async def snapshot() -> Any:
        # The session is still good: the home page answers as a signed-in user.
        home = await me.http.get("/ui/", follow_redirects=False)
        return home.status_code

    return Prepared("/ui/sign-out", {}, snapshot, page="/ui/")


async def prep_sign_in(ui: Ui, auth: Auth, me: UiClient) -> Prepared:
    async def snapshot() -> Any:
        return "ims_" in "".join(me.http.cookies.keys()) and any(
            name.endswith("_session") for name in me.http.cookies
        )

    return Prepared("/ui/sign-in/demo", {"username": "admin1"}, snapshot, page="/ui/sign-in")


async def prep_approve(ui: Ui, auth: Auth, me: UiClient) -> Prepared:
    rid, cid = await new_review(ui)
    return Prepared(
        f"/ui/reviews/{rid}/approve",
        {"confirmed": "1"},
        lambda: review_row(ui.engine, rid, cid),
        page=f"/ui/reviews/{rid}",
    )


async def prep_reject(ui: Ui, auth: Auth, me: UiClient) -> Prepared:
    rid, cid = await new_review(ui)
    return Prepared(
        f"/ui/reviews/{rid}/reject",
        {"reason": "Thiếu giấy phép", "confirmed": "1"},
        lambda: review_row(ui.engine, rid, cid),
        page=f"/ui/reviews/{rid}",
    )


async def prep_create(ui: Ui, auth: Auth, me: UiClient) -> Prepared:
    page = await me.get("/ui/customers/new")
    fields = form_values(page.text, "customer-form")
    name = f"Khách tạo CSRF {uuid.uuid4().hex[:10]}"
    fields.update({"full_name": name, "action": "save"})
    fields.pop("csrf_token", None)

    async def snapshot() -> Any:
        async with ui.engine.connect() as conn:
            return await conn.scalar(
                text("SELECT count(*) FROM customers WHERE full_name = :n"), {"n": name}
            )

    return Prepared("/ui/customers/new", fields, snapshot, page="/ui/customers/new")


async def prep_edit(ui: Ui, auth: Auth, me: UiClient) -> Prepared:
    customer = await new_customer(ui, auth)
    page = await me.get(f"/ui/customers/{customer['id']}/edit")
    fields = form_values(page.text, "customer-form")
    fields.pop("csrf_token", None)
    fields.update({"full_name": customer["full_name"] + " (sửa)", "action": "save"})
    return Prepared(
        f"/ui/customers/{customer['id']}/edit",
        fields,
        lambda: customer_row(ui.engine, customer["id"]),
        page=f"/ui/customers/{customer['id']}/edit",
    )


async def prep_submit(ui: Ui, auth: Auth, me: UiClient) -> Prepared:
    customer = await new_customer(ui, auth)
    return Prepared(
        f"/ui/customers/{customer['id']}/submit",
        {"version": str(customer["version"])},
        lambda: customer_row(ui.engine, customer["id"]),
        page=f"/ui/customers/{customer['id']}",
    )


async def prep_upload(ui: Ui, auth: Auth, me: UiClient) -> Prepared:
    customer = await new_customer(ui, auth)
    return Prepared(
        f"/ui/customers/{customer['id']}/attachments",
        {"kind": "contract"},
        lambda: customer_row(ui.engine, customer["id"]),
        file=("file", pdf_bytes()),
        page=f"/ui/customers/{customer['id']}/edit",
    )


async def prep_delete_attachment(ui: Ui, auth: Auth, me: UiClient) -> Prepared:
    customer = await new_customer(ui, auth)
    uploaded = await ui.api.post(
        f"/api/v1/customers/{customer['id']}/attachments",
        files={"file": ("a.pdf", pdf_bytes())},
        data={"kind": "contract"},
        headers=auth("sales1"),
    )
    assert uploaded.status_code == 201, uploaded.text

    async def snapshot() -> Any:
        row = await customer_row(ui.engine, customer["id"])
        blobs = sorted(p.name for p in (blob_root(ui)).rglob("*") if p.is_file())
        return (row, uploaded.json()["id"] in blobs)

    return Prepared(
        f"/ui/customers/{customer['id']}/attachments/{uploaded.json()['id']}/delete",
        {"confirmed": "1"},
        snapshot,
        page=f"/ui/customers/{customer['id']}/edit",
    )


def blob_root(ui: Ui) -> Path:
    return Path(ui.app.state.runtime.settings.blob_dir)


@dataclass(frozen=True)
class Target:
    app: str
    method: str
    path: str  # the route's path template
    user: str | None  # who acts (None: an anonymous browser, for the sign-in)
    other: str  # whose token is "another user's"
    prepare: Preparer
    #: What the request done right answers.
    ok: int = 303


# fmt: off
TARGETS = [
    Target("approval", "POST", "/ui/sign-out",                          "cs1",    "admin1",   prep_sign_out),
    Target("approval", "POST", "/ui/sign-in/demo",                      None,     "-",        prep_sign_in),
    Target("approval", "POST", "/ui/reviews/{review_id}/approve",       "cs1",    "admin1",   prep_approve),
    Target("approval", "POST", "/ui/reviews/{review_id}/reject",        "cs1",    "admin1",   prep_reject),
    Target("customer", "POST", "/ui/sign-out",                          "sales1", "manager1", prep_sign_out),
    Target("customer", "POST", "/ui/sign-in/demo",                      None,     "-",        prep_sign_in),
    Target("customer", "POST", "/ui/customers/new",                     "sales1", "manager1", prep_create),
    Target("customer", "POST", "/ui/customers/{customer_id}/edit",      "sales1", "manager1", prep_edit),
    Target("customer", "POST", "/ui/customers/{customer_id:uuid}/submit", "sales1", "manager1", prep_submit),
    Target("customer", "POST", "/ui/customers/{customer_id}/attachments", "sales1", "manager1", prep_upload),
    Target("customer", "POST", "/ui/customers/{customer_id}/attachments/{attachment_id}/delete", "sales1", "manager1", prep_delete_attachment),
]
# fmt: on


def state_changing_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every UI route that takes anything but GET and HEAD."""
    found: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):
        methods = getattr(context, "methods", None)
        if methods is None or not context.path.startswith("/ui"):
            continue  # a mount (/ui/static: files, GET only) or not the UI
        found |= {(m, context.path) for m in set(methods) - {"GET", "HEAD"}}
    return found


async def test_every_state_changing_ui_route_is_in_the_matrix(uis: dict[str, Ui]) -> None:
    for name, ui in uis.items():
        routes = state_changing_routes(ui.app)
        listed = {(t.method, t.path) for t in TARGETS if t.app == name}
        assert routes == listed, (
            f"{name}: state-changing UI routes not in TARGETS (add them, with a preparer): "
            f"{sorted(routes - listed)}; listed but gone: {sorted(listed - routes)}"
        )
    # Sanity: the walk sees the routes it must (a walk that found nothing would pass).
    assert len(TARGETS) == 11


# ---- the forged requests ----------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    id: str
    token: str = "right"  # right, none, wrong, other-user, pre-session, in-query
    origin: str | None = ORIGIN  # the Origin header (None: not sent)
    referer: str | None = None
    content_type: str = "form"  # form, multipart, text, json
    method: str = "POST"


# fmt: off
ATTACKS = [
    Attack("no-token",              token="none"),
    Attack("wrong-token",           token="wrong"),
    Attack("other-users-token",     token="other-user"),
    Attack("pre-sign-in-token",     token="pre-session"),
    Attack("token-in-query",        token="in-query"),
    Attack("foreign-origin",        origin="https://evil.example"),
    Attack("look-alike-origin",     origin="http://test.evil.example"),
    Attack("other-port-origin",     origin="http://test:8443"),
    Attack("null-origin",           origin="null"),
    Attack("foreign-referer",       origin=None, referer="https://evil.example/ui/"),
    Attack("no-origin-no-referer",  origin=None),
    Attack("text-plain-body",       content_type="text"),
    Attack("json-body",             content_type="json"),
    Attack("multipart-body",        content_type="multipart"),
    Attack("get-instead-of-post",   method="GET"),
]
# fmt: on


async def token_for(
    ui: Ui, target: Target, attack: Attack, me: UiClient, prepared: Prepared
) -> str | None:
    if attack.token == "none":
        return None
    if attack.token == "wrong":
        return secrets.token_hex(32)
    if attack.token == "other-user":
        if target.user is None:  # sign-in: another browser's pre-session token
            other = await ui.browser()
        else:
            other = await ui.browser(target.other)
        return csrf_of((await other.get(prepared.page)).text)
    if attack.token == "pre-session":
        return csrf_of(PRE_SIGN_IN[id(me)])
    return csrf_of((await me.get(prepared.page)).text)


def encode(prepared: Prepared, token: str | None, content_type: str) -> tuple[bytes, str]:
    fields = {**prepared.fields, **({"csrf_token": token} if token else {})}
    if content_type == "json":
        import json

        return json.dumps(fields).encode(), "application/json"
    if content_type == "text":  # what <form enctype="text/plain"> sends cross-site
        return "\r\n".join(f"{k}={v}" for k, v in fields.items()).encode(), "text/plain"
    if content_type == "multipart" or prepared.file:
        parts = b""
        for name, value in fields.items():
            parts += (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            ).encode()
        if prepared.file:
            name, data = prepared.file
            parts += (
                (
                    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
                    'filename="giay-phep.pdf"\r\nContent-Type: application/pdf\r\n\r\n'
                ).encode()
                + data
                + b"\r\n"
            )
        return parts + f"--{BOUNDARY}--\r\n".encode(), f"multipart/form-data; boundary={BOUNDARY}"
    return urlencode(fields).encode(), "application/x-www-form-urlencoded"


async def send(
    ui: Ui, target: Target, attack: Attack, me: UiClient, prepared: Prepared
) -> httpx.Response:
    token = await token_for(ui, target, attack, me, prepared)
    content_type = attack.content_type
    headers = {}
    if attack.origin is not None:
        headers["Origin"] = attack.origin
    if attack.referer is not None:
        headers["Referer"] = attack.referer
    url = prepared.path
    if attack.method == "GET":
        query = {**prepared.fields, **({"csrf_token": token} if token else {})}
        return await me.http.get(f"{url}?{urlencode(query)}", headers=headers)
    if attack.token == "in-query":
        url += "?" + urlencode({"csrf_token": token or ""})
        token = None
    body, mime = encode(prepared, token, content_type)
    return await me.http.post(url, content=body, headers={**headers, "Content-Type": mime})


#: The sign-in page each browser saw before signing in (its pre-session CSRF token).
PRE_SIGN_IN: dict[int, str] = {}


async def browser_for(ui: Ui, target: Target) -> UiClient:
    me = await ui.browser()
    PRE_SIGN_IN[id(me)] = (await me.get("/ui/sign-in")).text
    if target.user:
        await me.sign_in(target.user)
    return me


def case_id(value: Any) -> str:
    if isinstance(value, Target):
        return f"{value.app}:{value.path}"
    return str(getattr(value, "id", value))


def is_forgery(target: Target, attack: Attack) -> bool:
    """Two combinations are the legitimate request, which the controls below send: the
    pre-session token before sign-in, and multipart on the upload route."""
    if attack.token == "pre-session" and target.user is None:
        return False
    return not (attack.content_type == "multipart" and target.prepare is prep_upload)


FORGERIES = [
    pytest.param(target, attack, id=f"{case_id(target)}-{case_id(attack)}")
    for target in TARGETS
    for attack in ATTACKS
    if is_forgery(target, attack)
]


@pytest.mark.parametrize(("target", "attack"), FORGERIES)
async def test_forged_ui_requests_are_refused_and_change_nothing(
    uis: dict[str, Ui], auth_header: Auth, target: Target, attack: Attack
) -> None:
    ui = uis[target.app]
    me = await browser_for(ui, target)
    prepared = await target.prepare(ui, auth_header, me)
    before = await prepared.snapshot()
    response = await send(ui, target, attack, me, prepared)
    if attack.method == "GET":
        # No GET route at that URL (405), or the read-only page that lives there.
        assert response.status_code in (405, 200), response.text
        if response.status_code == 405:
            assert "text/html" in response.headers["content-type"]
    else:
        assert response.status_code == 403, (response.status_code, response.text[:500])
        assert "text/html" in response.headers["content-type"]
    assert not any(name.endswith("_session") for name in response.cookies), (
        "a forged request changed the session cookie"
    )
    assert "set-cookie" not in response.headers or "_session" not in response.headers["set-cookie"]
    assert await prepared.snapshot() == before, "a refused request changed something"


@pytest.mark.parametrize("target", TARGETS, ids=case_id)
async def test_the_same_requests_done_right_are_accepted(
    uis: dict[str, Ui], auth_header: Auth, target: Target
) -> None:
    """The control: the matrix's request with the right token and Origin does its work,
    so every refusal above is the CSRF check's doing."""
    ui = uis[target.app]
    me = await browser_for(ui, target)
    prepared = await target.prepare(ui, auth_header, me)
    before = await prepared.snapshot()
    response = await send(ui, target, Attack("right"), me, prepared)
    assert response.status_code == target.ok, (response.status_code, response.text[:800])
    if target.path.endswith("/sign-in/demo"):
        assert any(n.endswith("_session") for n in response.cookies)
    elif target.path.endswith("/sign-out"):
        assert "_session" in response.headers.get("set-cookie", "")
    else:
        assert await prepared.snapshot() != before


# ---- stored XSS ---------------------------------------------------------------------------

MARK = "__xss"
# Each payload would, if it became markup, set window.__xss or reach evil.example.
# fmt: off
PAYLOADS = [
    f"<script>window.{MARK}=1</script>",
    f'"><img src=x onerror="window.{MARK}=2">',
    f"'><svg onload=window.{MARK}=3>",
    f"javascript:window.{MARK}=4",
    f"</textarea><script>window.{MARK}=5</script>",
    f"</title><script>window.{MARK}=6</script>",
    f'<a href="javascript:window.{MARK}=7">bấm</a>',
    f'<svg><script href="data:,window.{MARK}=8"/></svg>',
    "{{7*7}} {{ config }} {% print(7*7) %} ${7*7} #{7*7}",
    f"＜script＞window.{MARK}=9＜/script＞ \u202eevil.example\u202c",
    f"<iframe srcdoc='<script>parent.{MARK}=10</script>'></iframe>",
    f'<math><mtext></form><form><mglyph><style></math><img src onerror="window.{MARK}=11">',
    "<base href=//evil.example/><meta http-equiv=refresh content='0;url=//evil.example'>",
    f'<input autofocus onfocus="window.{MARK}=12"><!--',
    "&lt;script&gt;already escaped&lt;/script&gt; &amp; ]]> --> <![CDATA[",
    "<style>@import '//evil.example/x.css';</style><link rel=stylesheet href=//evil.example>",
]
# fmt: on
#: A short one where a field is a code (at most 40 characters).
SHORT = '"><svg onload=window.__xss=13>'
#: Attribute names whose values are text for people or for the form: a payload there is inert.
TEXT_ATTRIBUTES = {
    "value",
    "title",
    "alt",
    "aria-label",
    "placeholder",
    "data-confirm",
    "data-confirm-detail",
    "data-confirm-ok",
    "data-in-force",
    "label",
}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "poster", "srcdoc"}
#: The only script and style sources the pages load (their own static files).
OWN_STATIC = re.compile(r"^/ui/(static|assets/[\w-]+)/[\w.-]+\?v=[0-9a-f]+$")


def payload(i: int) -> str:
    return PAYLOADS[i % len(PAYLOADS)]


class LiveMarkup(HTMLParser):
    """Everything in a page that would act: elements, attributes, script and style text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.text: list[str] = []
        self._raw: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            value = value or ""
            squeezed = re.sub(r"[\s\x00-\x1f]", "", value).lower()
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=…>: an event handler attribute")
            if name in URL_ATTRIBUTES and squeezed.startswith(
                ("javascript:", "vbscript:", "data:text")
            ):
                self.problems.append(f"<{tag} {name}={value!r}>: a script URL")
            if (MARK in value or "evil.example" in value) and name not in TEXT_ATTRIBUTES:
                self.problems.append(f"<{tag} {name}={value!r}>: payload in a live attribute")
            if name in TEXT_ATTRIBUTES:
                self.text.append(value)
        if tag in ("script", "style"):
            src = dict(attrs).get("src") or ""
            if tag == "script" and not OWN_STATIC.match(src):
                self.problems.append(f"<script src={src!r}>: not one of the UI's own files")
            self._raw = tag
        if (
            tag in ("iframe", "frame", "object", "embed", "base", "svg", "math", "meta")
            and tag != "meta"
        ):
            self.problems.append(f"<{tag}>: an element no page of the UI has")
        if tag == "meta" and any(k == "http-equiv" for k, _ in attrs):
            self.problems.append("<meta http-equiv>: an element no page of the UI has")
        if tag == "link" and not OWN_STATIC.match(dict(attrs).get("href") or ""):
            self.problems.append(f"<link href={dict(attrs).get('href')!r}>: not the UI's own")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in ("script", "style"):
            self._raw = None

    def handle_endtag(self, tag: str) -> None:
        if tag == self._raw:
            self._raw = None

    def handle_data(self, data: str) -> None:
        if self._raw and data.strip():
            self.problems.append(f"<{self._raw}> with inline content {data[:60]!r}")
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        if MARK in data or "evil.example" in data:
            self.problems.append(f"a comment made by a payload: {data[:60]!r}")


def assert_inert(response: httpx.Response, *expected_texts: str) -> None:
    """The page shows the payloads as text only, under the strict CSP."""
    assert response.status_code in (200, 403, 409, 412, 422), response.status_code
    html = response.text
    page = LiveMarkup()
    page.feed(html)
    page.close()
    assert page.problems == [], f"{response.request.url}: {page.problems}"
    for raw in ("<script>window", "<img src=x", "<svg onload", "<iframe", "<base href", "<math>"):
        assert raw not in html, f"{response.request.url}: {raw!r} unescaped"
    shown = "".join(page.text)
    for expected in expected_texts:
        assert expected in shown, f"{response.request.url}: {expected!r} not shown as text"
        assert expected not in html or "<" not in expected, f"{expected!r} unescaped"
    csp = response.headers["content-security-policy"]
    assert csp == CSP
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'" and directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'self'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp and "*" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"


def xss_customer(word: str) -> dict[str, Any]:
    """A complete customer whose every free-text field carries a payload."""
    body = complete_customer(f"{word} {payload(0)}")
    body.update(
        {
            "company_name": f"{word} {payload(1)}",
            "contact_name": payload(2),
            "address": payload(3),
            "note": "\n".join(PAYLOADS),
            "misa_code": SHORT,
            "delivery_addresses": [
                {
                    "label": payload(4),
                    "recipient_name": payload(5),
                    "address": payload(6),
                    "is_default": True,
                }
            ],
            "invoice_profiles": [
                {
                    "company_name": payload(7),
                    "tax_code": "0100109106",
                    "address": payload(8),
                    "buyer_name": payload(9),
                    "is_default": True,
                }
            ],
        }
    )
    return body


ATTACHMENT_NAMES = [
    f'"><img src=x onerror=window.{MARK}=20>.pdf',
    "{{7*7}}<svg onload=alert(1)>.png",
    "javascript:alert(1)//.pdf",
]
REASON = f"Sai địa chỉ </textarea><script>window.{MARK}=30</script> {payload(10)} {{{{7*7}}}}"


@pytest.fixture(scope="module")
async def stored_xss(uis: dict[str, Ui], auth_header: Auth) -> dict[str, Any]:
    """One customer with payloads everywhere, submitted (review pending) and a second one
    submitted and rejected with a payload reason, in both services."""
    customer_ui, approval_ui = uis["customer"], uis["approval"]
    word = "x" + uuid.uuid4().hex[:10]
    made: dict[str, Any] = {"word": word}
    for which in ("pending", "rejected"):
        created = await customer_ui.api.post(
            "/api/v1/customers", json=xss_customer(word), headers=auth_header("sales1")
        )
        assert created.status_code == 201, created.text
        cid = created.json()["id"]
        for name, data in zip(
            ATTACHMENT_NAMES, (pdf_bytes(), png_bytes(), pdf_bytes()), strict=True
        ):
            up = await customer_ui.api.post(
                f"/api/v1/customers/{cid}/attachments",
                files={"file": (name, data)},
                data={"kind": "other"},
                headers=auth_header("sales1"),
            )
            assert up.status_code == 201, up.text
        submitted = await customer_ui.api.post(
            f"/api/v1/customers/{cid}/submit", headers=auth_header("sales1")
        )
        assert submitted.status_code == 200, submitted.text
        snapshot = (
            await customer_ui.api.get(f"/api/v1/customers/{cid}", headers=auth_header("sales1"))
        ).json()
        fields = {k: v for k, v in snapshot.items() if k not in ("id", "version", "status")}
        data = submission(uuid.UUID(cid), version=snapshot["version"], **fields)
        await deliver(approval_ui.engine, data)
        review = (
            await approval_ui.api.get(
                "/api/v1/reviews", params={"customer_id": cid}, headers=auth_header("cs1")
            )
        ).json()["items"][0]
        made[which] = {"customer": snapshot, "review_id": review["id"]}
    rejected = made["rejected"]
    answer = await approval_ui.api.post(
        f"/api/v1/reviews/{rejected['review_id']}/reject",
        json={"reason": REASON},
        headers=auth_header("cs1"),
    )
    assert answer.status_code == 200, answer.text
    event = ApprovalCustomerRejectedV1(
        customer_id=uuid.UUID(rejected["customer"]["id"]),
        review_id=uuid.UUID(rejected["review_id"]),
        customer_version=rejected["customer"]["version"],
        reason=answer.json().get("reason") or REASON,
        rejected_by="NV020",
        rejected_at=datetime.now(UTC),
    )
    async with AsyncSession(customer_ui.engine) as session, session.begin():
        await CUSTOMER_HANDLERS[event.TYPE](session, to_cloud_event(event))
    return made


SHOWN = ("<script>window.__xss=1</script>", "{{7*7}}")


async def test_the_salesperson_ui_shows_stored_payloads_as_text(
    uis: dict[str, Ui], stored_xss: dict[str, Any]
) -> None:
    ui = uis["customer"]
    sales = await ui.browser("sales1")
    word = stored_xss["word"]
    pending = stored_xss["pending"]["customer"]["id"]
    rejected = stored_xss["rejected"]["customer"]["id"]
    pages = {
        "list": f"/ui/customers?q={word}",
        "list, all tabs": f"/ui/customers?q={word}&status=all",
        "list fragment": f"/ui/customers?q={word}&partial=1",
        "list, rejected": f"/ui/customers?status=rejected&q={word}",
        "customer page": f"/ui/customers/{pending}",
        "rejected customer page": f"/ui/customers/{rejected}",
        "edit form (locked)": f"/ui/customers/{pending}/edit",
        "edit form (rejected)": f"/ui/customers/{rejected}/edit",
    }
    for what, url in pages.items():
        response = await sales.get(url)
        assert response.status_code in (200, 409), (what, response.status_code)
        texts = () if "fragment" in what else SHOWN[1:]
        if what in ("customer page", "rejected customer page", "edit form (rejected)"):
            texts = SHOWN
        assert_inert(response, *texts)
    rejected_page = await sales.get(f"/ui/customers/{rejected}")
    assert "window.__xss=30" in rejected_page.text.replace("&lt;", "<")  # the reason is shown
    # The form sent back with a problem shows what was typed, escaped, in its inputs.
    edit = await sales.get(f"/ui/customers/{rejected}/edit")
    fields = form_values(edit.text, "customer-form")
    assert fields["note"] == "\n".join(PAYLOADS)  # textarea content round-trips exactly
    fields.update({"email": "not-an-email", "action": "save", "full_name": payload(4)})
    again = await sales.post_form(f"/ui/customers/{rejected}/edit", fields)
    assert again.status_code == 422, again.text[:500]
    assert_inert(again, payload(4))
    new = await sales.get("/ui/customers/new")
    fields = form_values(new.text, "customer-form")
    fields.update({"full_name": payload(5), "note": payload(4), "email": "x", "action": "save"})
    assert_inert(await sales.post_form("/ui/customers/new", fields), payload(5))
    # The attachment list, as the upload script receives it, and the delete confirmation.
    attachments = stored_xss["rejected"]["customer"]["attachments"]
    confirm = await sales.post_form(
        f"/ui/customers/{rejected}/attachments/{attachments[0]['id']}/delete", {}
    )
    assert_inert(confirm)


async def test_the_cs_ui_shows_stored_payloads_as_text(
    uis: dict[str, Ui], stored_xss: dict[str, Any]
) -> None:
    ui = uis["approval"]
    cs = await ui.browser("cs1")
    word = stored_xss["word"]
    pending = stored_xss["pending"]["review_id"]
    rejected = stored_xss["rejected"]["review_id"]
    pages = {
        "queue": f"/ui/reviews?q={word}",
        "queue fragment": f"/ui/reviews?q={word}&partial=1",
        "queue, rejected": f"/ui/reviews?status=rejected&q={word}",
        "queue, all": f"/ui/reviews?status=all&q={word}",
        "review page": f"/ui/reviews/{pending}",
        "rejected review page": f"/ui/reviews/{rejected}",
    }
    for what, url in pages.items():
        response = await cs.get(url)
        assert response.status_code == 200, (what, response.status_code)
        texts = SHOWN if "review page" in what else ()
        assert_inert(response, *texts)
    await cs.get(f"/ui/reviews/{pending}")
    # The reject form's confirmation and its refusal both show the reason typed.
    confirm = await cs.post_form(f"/ui/reviews/{pending}/reject", {"reason": REASON})
    assert confirm.status_code == 200
    assert_inert(confirm, "window.__xss=30")
    await cs.get(f"/ui/reviews/{pending}")
    refused = await cs.post_form(
        f"/ui/reviews/{pending}/reject", {"reason": REASON, "reason_code": payload(1)}
    )
    assert refused.status_code == 422
    assert_inert(refused, "window.__xss=30")
    # The textarea gives back exactly what was typed: `</textarea>` did not end it.
    assert form_values(refused.text, action=f"/ui/reviews/{pending}/reject")["reason"] == REASON
    await cs.get(f"/ui/reviews/{pending}")
    approve_confirm = await cs.post_form(f"/ui/reviews/{pending}/approve", {})
    assert_inert(approve_confirm, "window.__xss=1")


# ---- a real browser ---------------------------------------------------------------------


async def test_a_browser_runs_no_injected_script_on_the_review_page(
    approval_ui_server: Any,
    browser: Any,
    stored_xss: dict[str, Any],
    service_databases: dict[str, str],
) -> None:
    """The review page and queue with every payload, in Chromium: nothing sets
    window.__xss, no dialog opens, no request leaves for evil.example."""
    context = await browser.new_context()
    page = await context.new_page()
    dialogs: list[str] = []
    foreign: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("request", lambda r: foreign.append(r.url) if "evil.example" in r.url else None)
    base = approval_ui_server.base_url
    await sign_in(page, approval_ui_server, "cs1")
    for url in (
        f"{base}/ui/reviews/{stored_xss['pending']['review_id']}",
        f"{base}/ui/reviews/{stored_xss['rejected']['review_id']}",
        f"{base}/ui/reviews?status=all&q={stored_xss['word']}",
    ):
        await page.goto(url)
        await page.wait_for_load_state("load")
        assert await page.evaluate(f"typeof window.{MARK}") == "undefined", url
        assert "Sai địa chỉ" in await page.content() or "reviews?" in url
    await context.close()
    assert dialogs == [] and foreign == []
