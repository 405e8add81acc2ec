"""Issue 8's security matrix, the role half, for approval, misa_sync and reference
(customer's own, with its ownership scoping, is tests/customer/test_scoping_matrix.py).

Every endpoint x every demo role x an object that exists and one that does not, against the
expected tables below, derived from CONTRACT.md §2 and each router's `require_roles`:

- approval: every route is CS's ("approve, reject"), admin passes everything: others 403;
- misa_sync: every route is the accountant's ("see and retry MISA sync"): others 403;
- reference: every authenticated role reads; only admin creates, edits and reads history.

None of these services scopes objects by owner: a role that may act sees every object,
so "an object it may not see" is a missing one (404), and a role that may not act gets
403 on both, before any lookup (a 403 never tells whether the object exists).
"""

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from tests.approval.helpers import deliver as deliver_submission
from tests.approval.helpers import submission
from tests.misa_sync.sync_support import activated
from tests.misa_sync.sync_support import deliver as deliver_activation

Auth = Callable[[str], dict[str, str]]
MakeClient = Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]

ROLES = ("sales1", "manager1", "cs1", "accountant1", "admin1")
CS_ONLY = (403, 403, 200, 403, 200)
CS_ONLY_MISSING = (403, 403, 404, 403, 404)
ACCOUNTANT_ONLY = (403, 403, 403, 200, 200)
ACCOUNTANT_ONLY_MISSING = (403, 403, 403, 404, 404)
EVERYONE = (200, 200, 200, 200, 200)
EVERYONE_MISSING = (404, 404, 404, 404, 404)
ADMIN_ONLY_MISSING = (403, 403, 403, 403, 404)

EXISTING, MISSING, FRESH = "existing", "missing", "fresh"
#: A create with an empty body: the gate, then validation (nothing is created).
INVALID = "invalid body"

# (method, path with {id}, object: existing/missing/fresh (a new one per case)/invalid) ->
# the expected status, one column per entry of ROLES.
# fmt: off
APPROVAL: dict[tuple[str, str, str], tuple[int, ...]] = {
    ("GET",  "/api/v1/reviews",                    EXISTING): CS_ONLY,
    ("GET",  "/api/v1/reviews/reject-reasons",     EXISTING): CS_ONLY,
    ("GET",  "/api/v1/reviews/{id}",               EXISTING): CS_ONLY,
    ("GET",  "/api/v1/reviews/{id}",               MISSING):  CS_ONLY_MISSING,
    ("POST", "/api/v1/reviews/{id}/approve",       FRESH):    CS_ONLY,
    ("POST", "/api/v1/reviews/{id}/approve",       MISSING):  CS_ONLY_MISSING,
    ("POST", "/api/v1/reviews/{id}/reject",        FRESH):    CS_ONLY,
    ("POST", "/api/v1/reviews/{id}/reject",        MISSING):  CS_ONLY_MISSING,
}
MISA_SYNC: dict[tuple[str, str, str], tuple[int, ...]] = {
    ("GET",  "/api/v1/misa-links",                           EXISTING): ACCOUNTANT_ONLY,
    ("GET",  "/api/v1/misa-links/reconciliation?refresh=none", EXISTING): ACCOUNTANT_ONLY,
    ("GET",  "/api/v1/misa-links/reconciliation/runs",       EXISTING): ACCOUNTANT_ONLY,
    ("POST", "/api/v1/misa-links/retry",                     EXISTING): ACCOUNTANT_ONLY,
    ("GET",  "/api/v1/misa-links/{id}",                      EXISTING): ACCOUNTANT_ONLY,
    ("GET",  "/api/v1/misa-links/{id}",                      MISSING):  ACCOUNTANT_ONLY_MISSING,
    ("POST", "/api/v1/misa-links/{id}/retry",                EXISTING): ACCOUNTANT_ONLY,
    ("POST", "/api/v1/misa-links/{id}/retry",                MISSING):  ACCOUNTANT_ONLY_MISSING,
}
REFERENCE_LISTS = (
    "customer-types", "customer-groups", "channels", "payment-terms", "payment-methods",
    "sales-units", "employees",
)
REFERENCE: dict[tuple[str, str, str], tuple[int, ...]] = {
    ("GET",  "/api/v1/provinces",                 EXISTING): EVERYONE,
    ("GET",  "/api/v1/provinces/{id}/wards",      MISSING):  EVERYONE_MISSING,
    ("GET",  "/api/v1/provinces/{id}/districts",  MISSING):  EVERYONE_MISSING,
    ("GET",  "/api/v1/districts/{id}/wards",      MISSING):  EVERYONE_MISSING,
    ("GET",  "/api/v1/snapshot",                  EXISTING): EVERYONE,
    ("GET",  "/api/v1/admin-units/search?q=ha",   EXISTING): EVERYONE,
    ("GET",  "/api/v1/channels/{id}",             EXISTING): EVERYONE,
    ("POST", "/api/v1/channels",                  FRESH):    (403, 403, 403, 403, 201),
    ("PATCH", "/api/v1/channels/{id}",            FRESH):    (403, 403, 403, 403, 200),
    ("GET",  "/api/v1/channels/{id}/history",     EXISTING): (403, 403, 403, 403, 200),
    **{("GET", f"/api/v1/{name}", EXISTING): EVERYONE for name in REFERENCE_LISTS},
    **{("GET", f"/api/v1/{name}/{{id}}", MISSING): EVERYONE_MISSING for name in REFERENCE_LISTS},
    **{("PATCH", f"/api/v1/{name}/{{id}}", MISSING): ADMIN_ONLY_MISSING
       for name in REFERENCE_LISTS},
    **{("GET", f"/api/v1/{name}/{{id}}/history", MISSING): ADMIN_ONLY_MISSING
       for name in REFERENCE_LISTS},
    **{("POST", f"/api/v1/{name}", INVALID): (403, 403, 403, 403, 422)
       for name in REFERENCE_LISTS},
}
# fmt: on

CASES = [
    (service, key, role, expected)
    for service, table in (
        ("approval", APPROVAL),
        ("misa_sync", MISA_SYNC),
        ("reference", REFERENCE),
    )
    for key, row in table.items()
    for role, expected in zip(ROLES, row, strict=True)
]


@pytest.fixture
async def client(
    request: pytest.FixtureRequest, make_client: MakeClient
) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(request.param) as c:
        yield c


async def new_review(database: str, api: httpx.AsyncClient, auth: Auth) -> str:
    engine = create_async_engine(database)
    data = submission()
    await deliver_submission(engine, data)
    await engine.dispose()
    page = await api.get(
        "/api/v1/reviews", params={"customer_id": str(data.customer_id)}, headers=auth("cs1")
    )
    return str(page.json()["items"][0]["id"])


async def new_link(database: str) -> str:
    engine = create_async_engine(database)
    data = activated()
    await deliver_activation(engine, data)
    await engine.dispose()
    return str(data.customer_id)


async def new_channel(api: httpx.AsyncClient, auth: Auth) -> str:
    code = f"SEC-{uuid.uuid4().hex[:8].upper()}"
    answer = await api.post(
        "/api/v1/channels", json={"code": code, "name": f"Kênh {code}"}, headers=auth("admin1")
    )
    assert answer.status_code == 201, answer.text
    return code


async def an_object(service: str, database: str, api: httpx.AsyncClient, auth: Auth) -> str:
    if service == "approval":
        return await new_review(database, api, auth)
    if service == "misa_sync":
        return await new_link(database)
    return await new_channel(api, auth)


def body_for(service: str, method: str, path: str, which: str) -> dict[str, Any] | None:
    if which == INVALID:
        return {}
    if path.endswith("/reject"):
        return {"reason": "Thông tin không đúng"}
    if service == "reference" and method == "POST":
        code = f"SEC-{uuid.uuid4().hex[:8].upper()}"
        return {"code": code, "name": f"Kênh {code}"}
    if service == "reference" and method == "PATCH":
        return {"name": f"Đổi tên {uuid.uuid4().hex[:6]}"}
    return None


@pytest.mark.parametrize(
    ("client", "key", "role", "expected"),
    CASES,
    ids=[f"{s}:{k[0]} {k[1]} [{k[2]}]-{r}" for s, k, r, _ in CASES],
    indirect=["client"],
)
async def test_role_matrix(
    client: httpx.AsyncClient,
    service_databases: dict[str, str],
    auth_header: Auth,
    key: tuple[str, str, str],
    role: str,
    expected: int,
) -> None:
    method, template, which = key
    service = {"/api/v1/reviews": "approval", "/api/v1/misa-links": "misa_sync"}.get(
        "/".join(template.split("/")[:4]).split("?")[0], "reference"
    )
    if which in (MISSING, INVALID):
        obj = str(uuid.uuid4()) if service != "reference" else "NO-SUCH-CODE"
    else:
        obj = await an_object(service, service_databases[service], client, auth_header)
    headers = auth_header(role)
    body = body_for(service, method, template, which)
    if method == "PATCH" and which == FRESH:
        current = await client.get(f"/api/v1/channels/{obj}", headers=auth_header("admin1"))
        headers = {**headers, "If-Match": current.headers["ETag"]}
    elif method == "PATCH":  # past the If-Match precondition (428) to the lookup
        headers = {**headers, "If-Match": '"1"'}
    answer = await client.request(method, template.format(id=obj), headers=headers, json=body)
    assert answer.status_code == expected, answer.text
    if expected >= 400:
        assert answer.headers["content-type"] == "application/problem+json"
