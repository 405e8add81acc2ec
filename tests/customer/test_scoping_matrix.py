"""The scoping matrix (CONTRACT.md §2, issue 4 "Access"): every role × every customer
endpoint × a customer the caller may see and one it may not.

Two customers: one owned by sales1 (NV001, unit HN-T1, under manager1's MB-HN) and one
owned by sales3 (NV003, unit HCM-T1, outside MB-HN). The expected answers are the tables
below; every case is generated from them. What they encode (CONTRACT.md §2):

- a customer the caller may not see answers 404 on every endpoint that names it, exactly
  as a missing id does (same status, same problem body); search just does not find it;
- visible, but the role may not do it: 403 (cs and accountant read but do not write;
  only cs and admin deactivate and reactivate);
- no token: 401;
- visible and allowed: 2xx; every allowed case here is a plain success, none needs a
  business 4xx to prove the gate was passed.

Reads run against one customer per owner made once for the module. Every mutating case
gets a fresh customer (unique name) in the state its endpoint needs (drafts; active or
inactive set through SQL, as if approved), so no case sees another's effects; a refused
mutation is checked to have changed nothing, an allowed one to have had its effect.
"""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.customer.test_api import complete_customer, create
from tests.customer.test_attachments import pdf_bytes, upload
from tests.fixtures.apps import app_client, build_app

Auth = Callable[[str], dict[str, str]]
PROBLEM = "application/problem+json"

ANON = "anonymous"  # no Authorization header at all
USERS = ("sales1", "sales2", "sales3", "manager1", "cs1", "accountant1", "admin1", ANON)
HIT, MISS = "1 item", "0 items"  # the search row: the customer is found, or not

# The expected answer of each endpoint, one column per entry of USERS, on the customer owned
# by sales1 (HN-T1) and on the one owned by sales3 (HCM-T1).
# fmt: off
MATRIX: dict[str, dict[str, tuple[int | str, ...]]] = {
    # endpoint              sales1 sales2 sales3 manager1 cs1 accountant1 admin1 anonymous
    "sales1": {
        "get":               (200,  404,  404,  200,  200,  200,  200,  401),
        "patch":             (200,  404,  404,  200,  403,  403,  200,  401),
        "submit":            (200,  404,  404,  200,  403,  403,  200,  401),
        "history":           (200,  404,  404,  200,  200,  200,  200,  401),
        "eligibility":       (200,  404,  404,  200,  200,  200,  200,  401),
        "search":            (HIT,  MISS, MISS, HIT,  HIT,  HIT,  HIT,  401),
        "upload":            (201,  404,  404,  201,  403,  403,  201,  401),
        "attachments":       (200,  404,  404,  200,  200,  200,  200,  401),
        "download":          (200,  404,  404,  200,  200,  200,  200,  401),
        "delete_attachment": (204,  404,  404,  204,  403,  403,  204,  401),
        "deactivate":        (403,  404,  404,  403,  200,  403,  200,  401),
        "reactivate":        (403,  404,  404,  403,  200,  403,  200,  401),
    },
    "sales3": {
        "get":               (404,  404,  200,  404,  200,  200,  200,  401),
        "patch":             (404,  404,  200,  404,  403,  403,  200,  401),
        "submit":            (404,  404,  200,  404,  403,  403,  200,  401),
        "history":           (404,  404,  200,  404,  200,  200,  200,  401),
        "eligibility":       (404,  404,  200,  404,  200,  200,  200,  401),
        "search":            (MISS, MISS, HIT,  MISS, HIT,  HIT,  HIT,  401),
        "upload":            (404,  404,  201,  404,  403,  403,  201,  401),
        "attachments":       (404,  404,  200,  404,  200,  200,  200,  401),
        "download":          (404,  404,  200,  404,  200,  200,  200,  401),
        "delete_attachment": (404,  404,  204,  404,  403,  403,  204,  401),
        "deactivate":        (404,  404,  403,  404,  200,  403,  200,  401),
        "reactivate":        (404,  404,  403,  404,  200,  403,  200,  401),
    },
}
# fmt: on

#: Who may see each customer (CONTRACT.md §2); the tables above must agree with it.
VISIBLE_TO = {
    "sales1": {"sales1", "manager1", "cs1", "accountant1", "admin1"},
    "sales3": {"sales3", "cs1", "accountant1", "admin1"},
}

NOTE = "Ghi chú từ ma trận phân quyền"


# ---- the endpoints ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """The customer a call names (and its attachment, for the attachment endpoints)."""

    id: str
    name: str
    version: int = 1
    attachment_id: str = ""


Send = Callable[[httpx.AsyncClient, Target, dict[str, str]], Awaitable[httpx.Response]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    send: Send
    #: True: a fresh customer per case; False: the module's shared customer of the owner.
    mutates: bool = False
    #: The status the customer must have for the call to be allowed (drafts otherwise).
    status: str = "draft"
    #: Whether the fresh customer needs an attachment.
    with_attachment: bool = False
    #: False only for search, whose path names no customer.
    names_customer: bool = True


def path(target: Target, tail: str = "") -> str:
    return f"/api/v1/customers/{target.id}{tail}"


def one_attachment(target: Target) -> str:
    return path(target, f"/attachments/{target.attachment_id}")


ENDPOINTS: dict[str, Endpoint] = {
    "get": Endpoint(lambda api, t, h: api.get(path(t), headers=h)),
    "patch": Endpoint(
        lambda api, t, h: api.patch(
            path(t), json={"note": NOTE}, headers={**h, "If-Match": f'"{t.version}"'}
        ),
        mutates=True,
    ),
    "submit": Endpoint(lambda api, t, h: api.post(path(t, "/submit"), headers=h), mutates=True),
    "history": Endpoint(lambda api, t, h: api.get(path(t, "/history"), headers=h)),
    "eligibility": Endpoint(lambda api, t, h: api.get(path(t, "/order-eligibility"), headers=h)),
    "search": Endpoint(
        lambda api, t, h: api.get("/api/v1/customers", params={"q": t.name}, headers=h),
        names_customer=False,
    ),
    "upload": Endpoint(
        lambda api, t, h: api.post(
            path(t, "/attachments"),
            files={"file": ("hop-dong.pdf", pdf_bytes(), "application/pdf")},
            data={"kind": "contract"},
            headers=h,
        ),
        mutates=True,
    ),
    "attachments": Endpoint(lambda api, t, h: api.get(path(t, "/attachments"), headers=h)),
    "download": Endpoint(lambda api, t, h: api.get(one_attachment(t), headers=h)),
    "delete_attachment": Endpoint(
        lambda api, t, h: api.delete(one_attachment(t), headers=h),
        mutates=True,
        with_attachment=True,
    ),
    "deactivate": Endpoint(
        lambda api, t, h: api.post(
            path(t, "/deactivate"), json={"reason": "Ngừng hợp tác"}, headers=h
        ),
        mutates=True,
        status="active",
    ),
    "reactivate": Endpoint(
        lambda api, t, h: api.post(
            path(t, "/reactivate"), json={"reason": "Hợp tác lại"}, headers=h
        ),
        mutates=True,
        status="inactive",
    ),
}


def missing_target() -> Target:
    return Target(id=str(uuid.uuid4()), name="", attachment_id=str(uuid.uuid4()))


def assert_allowed(
    endpoint: str, response: httpx.Response, target: Target, after: dict[str, Any] | None
) -> None:
    """What a 2xx must have done; `after` is the customer as admin1 reads it afterwards."""
    body = response.json() if response.headers.get("content-type") == "application/json" else None
    match endpoint:
        case "get":
            assert body is not None and body["id"] == target.id
        case "history":
            assert body is not None and body["items"][0]["action"] == "created"
        case "eligibility":
            assert body == {"eligible": False, "reason": "not_approved"}
        case "attachments":
            assert body is not None
            assert [a["id"] for a in body["items"]] == [target.attachment_id]
        case "download":
            assert response.content == pdf_bytes()
        case "patch":
            assert after is not None
            assert (after["note"], after["version"]) == (NOTE, target.version + 1)
        case "submit":
            assert after is not None and after["status"] == "pending_approval"
        case "upload":
            assert body is not None and after is not None
            assert [a["id"] for a in after["attachments"]] == [body["id"]]
        case "delete_attachment":
            assert after is not None and after["attachments"] == []
        case "deactivate":
            assert after is not None and after["status"] == "inactive"
        case "reactivate":
            assert after is not None and after["status"] == "active"
        case _:
            raise AssertionError(f"no check for {endpoint}")


# ---- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def api(
    service_databases: dict[str, str],
    dev_keys: tuple[Path, Path],
    tmp_path_factory: pytest.TempPathFactory,
    customer_replica: None,
) -> AsyncIterator[httpx.AsyncClient]:
    """One customer app for the module, with its blobs in a temporary folder."""
    folder = tmp_path_factory.mktemp("scoping-matrix")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CUSTOMER_BLOB_DIR", str(folder / "blobs"))
        env.setenv("CUSTOMER_UPLOAD_TMP_DIR", str(folder / "spool"))
        for name in ("BLOB_STORE", "ATTACHMENT_MAX_BYTES", "ATTACHMENTS_PER_CUSTOMER"):
            env.delenv(f"CUSTOMER_{name}", raising=False)
        app = build_app("customer", service_databases["customer"], dev_keys[1])
        async with app_client(app) as client:
            yield client


@pytest.fixture(scope="module")
def auth(auth_header: Auth) -> Auth:
    """`auth_header`, signing one token per user for the module (signing is the slow part)."""
    tokens: dict[str, dict[str, str]] = {ANON: {}}

    def headers(user: str) -> dict[str, str]:
        if user not in tokens:
            tokens[user] = auth_header(user)
        return tokens[user]

    return headers


@pytest.fixture(scope="module")
async def database(service_databases: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(service_databases["customer"])
    yield engine
    await engine.dispose()


async def read_as_admin(api: httpx.AsyncClient, auth: Auth, target: Target) -> dict[str, Any]:
    response = await api.get(path(target), headers=auth("admin1"))
    assert response.status_code == 200, response.text
    return dict(response.json())


MakeTarget = Callable[[str, str, bool], Awaitable[Target]]


@pytest.fixture(scope="module")
def make_target(api: httpx.AsyncClient, auth: Auth, database: AsyncEngine) -> MakeTarget:
    """A new complete customer of `owner`, in `status`, with one attachment or none."""

    async def make(owner: str, status: str, with_attachment: bool) -> Target:
        name = f"Đại lý Ma Trận {owner} {uuid.uuid4().hex}"
        customer = await create(api, auth, owner, **complete_customer(name))
        attachment_id = ""
        if with_attachment:
            uploaded = await upload(api, auth, customer, pdf_bytes(), user=owner)
            assert uploaded.status_code == 201, uploaded.text
            attachment_id = uploaded.json()["id"]
        if status != "draft":
            async with database.begin() as conn:  # as if CS had approved it
                await conn.execute(
                    text("UPDATE customers SET status = :s, customer_code = :c WHERE id = :i"),
                    {"s": status, "c": f"MX{uuid.uuid4().hex}", "i": customer["id"]},
                )
        target = Target(id=customer["id"], name=name, attachment_id=attachment_id)
        current = await read_as_admin(api, auth, target)
        assert current["status"] == status
        return Target(target.id, name, current["version"], attachment_id)

    return make


@pytest.fixture(scope="module")
async def shared(make_target: MakeTarget) -> dict[str, Target]:
    """One draft customer per owner, with one attachment, for the read-only endpoints."""
    return {owner: await make_target(owner, "draft", True) for owner in MATRIX}


@pytest.fixture(scope="module")
async def invisible_404(
    api: httpx.AsyncClient, auth: Auth, shared: dict[str, Target]
) -> dict[str, Any]:
    """The problem sales2 gets for sales1's customer."""
    response = await api.get(path(shared["sales1"]), headers=auth("sales2"))
    assert response.status_code == 404 and response.headers["content-type"] == PROBLEM
    return dict(response.json())


# ---- the tests ----------------------------------------------------------------------------


def test_the_tables_follow_contract_section_2() -> None:
    """Every 404 (and every search miss) is a customer the caller may not see, and only
    those; every call without a token is 401."""
    for owner, table in MATRIX.items():
        assert table.keys() == ENDPOINTS.keys()
        for endpoint, row in table.items():
            assert len(row) == len(USERS)
            for user, expected in zip(USERS, row, strict=True):
                if user == ANON:
                    assert expected == 401, (owner, endpoint, user)
                elif user not in VISIBLE_TO[owner]:
                    hidden = MISS if endpoint == "search" else 404
                    assert expected == hidden, (owner, endpoint, user)
                else:
                    assert expected not in (401, 404, MISS), (owner, endpoint, user)


CASES = [
    pytest.param(endpoint, owner, user, expected, id=f"{endpoint}-{owner}s_customer-{user}")
    for owner, table in MATRIX.items()
    for endpoint, row in table.items()
    for user, expected in zip(USERS, row, strict=True)
]


@pytest.mark.parametrize(("endpoint", "owner", "user", "expected"), CASES)
async def test_scoping_matrix(
    api: httpx.AsyncClient,
    auth: Auth,
    make_target: MakeTarget,
    shared: dict[str, Target],
    endpoint: str,
    owner: str,
    user: str,
    expected: int | str,
) -> None:
    spec = ENDPOINTS[endpoint]
    if spec.mutates:
        target = await make_target(owner, spec.status, spec.with_attachment)
    else:
        target = shared[owner]
    headers = auth(user)
    before = await read_as_admin(api, auth, target)
    response = await spec.send(api, target, headers)

    if isinstance(expected, str):  # search: found or not, never an error
        assert response.status_code == 200, response.text
        found = [c["id"] for c in response.json()["items"]]
        assert found == ([target.id] if expected == HIT else [])
        return

    assert response.status_code == expected, response.text
    if expected < 400:
        after = await read_as_admin(api, auth, target) if spec.mutates else None
        assert_allowed(endpoint, response, target, after)
        return

    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == expected
    assert await read_as_admin(api, auth, target) == before  # refused: nothing changed
    if expected == 404:  # exactly as a customer that does not exist: nothing leaks
        missing = await spec.send(api, missing_target(), headers)
        assert missing.status_code == 404
        assert missing.headers["content-type"] == PROBLEM
        assert missing.json() == response.json()


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("endpoint", [e for e, s in ENDPOINTS.items() if s.names_customer])
async def test_a_missing_id_answers_as_an_invisible_customer_does(
    api: httpx.AsyncClient,
    auth: Auth,
    invisible_404: dict[str, Any],
    endpoint: str,
    user: str,
) -> None:
    """For every caller, including those who see every customer: a random id is the same
    404 problem as a customer out of sight (and 401 without a token)."""
    headers = auth(user)
    response = await ENDPOINTS[endpoint].send(api, missing_target(), headers)
    assert response.headers["content-type"] == PROBLEM
    if user == ANON:
        assert response.status_code == 401
        return
    assert response.status_code == 404, response.text
    assert response.json() == invisible_404
