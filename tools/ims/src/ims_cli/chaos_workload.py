"""The clients of `ims chaos`: salespeople create and submit customers, CS approves them.

Each client behaves as a real one would through outages: it retries a request that got
no answer (connection refused or reset, a timeout) or a 5xx, with capped back-off, until
its deadline. The customer API has no idempotency key for creating a draft (CONTRACT.md
§4 offers none), so after a create whose answer was lost the client first looks the
customer up by its tax code (unique per customer here) and only creates it again when it
is not there: a retried POST never makes a second customer. Submitting and approving are
safe to repeat: a 409 is resolved by reading the customer or the review.
"""

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from stdnum.vn import mst

#: The reference codes the customers use (seeded demo data; tests/e2e DEMO_CODES).
DEMO_CODES = {
    "customer_type_code": "HKD",
    "customer_group_code": "TAPHOA",
    "channel_code": "GT",
    "payment_term_code": "NET15",
    "payment_method_code": "CK",
}
SALES_USERS = ("sales1", "sales2")
CS_USER = "cs1"
#: Fields a refusal may name while reference's snapshot is still arriving after start.
REFERENCE_FIELDS = {*DEMO_CODES, "sales_unit_code", "owner_employee_id"}

_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng")
_MIDDLE = ("Văn", "Thị", "Hữu", "Minh", "Ngọc", "Thanh", "Đức", "Quang")
_GIVEN = ("An", "Bình", "Chi", "Dũng", "Giang", "Hà", "Hải", "Hương", "Khánh", "Lan")
_SHOP = ("Tạp hóa", "Cửa hàng", "Đại lý", "Quầy")
_STREETS = ("Phố Huế", "Hàng Bài", "Lê Duẩn", "Kim Mã", "Nguyễn Trãi", "Giải Phóng")
_MOBILE_PREFIXES = ("090", "091", "093", "094", "096", "097", "098")
_RETRYABLE_STATUS = frozenset({500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class CustomerSpec:
    index: int
    owner: str  # the demo user who creates it
    payload: dict[str, Any]

    @property
    def tax_code(self) -> str:
        return str(self.payload["tax_code"])

    def personal_values(self) -> list[str]:
        """What of it is personal data: must never appear in a log."""
        p = self.payload
        return [p["full_name"], p["contact_name"], p["phone"], p["email"], p["tax_code"]]


def tax_code_for(index: int, seed: int) -> str:
    """A valid, unique 10-digit MST (python-stdnum's rules) for customer `index`."""
    step = 0
    while True:
        # Digits 3-9 carry index + 1 (never 0000000); a prefix whose check digit would be
        # 10 is replaced by the next one, so the index alone keeps the codes unique.
        code = f"{10 + (seed + step) % 90:02d}{index + 1:07d}"
        code += mst.calc_check_digit(code)
        if mst.is_valid(code):
            return code
        step += 1


def customer_spec(index: int, seed: int) -> CustomerSpec:
    """Customer `index` of a run: full, valid for submission, unique phone, email, tax code."""
    rng = random.Random(seed * 1_000_003 + index)
    person = f"{rng.choice(_FAMILY)} {rng.choice(_MIDDLE)} {rng.choice(_GIVEN)}"
    shop = f"{rng.choice(_SHOP)} {person} {index:05d}"
    local = f"{index:07d}"
    phone = (
        f"{_MOBILE_PREFIXES[index % len(_MOBILE_PREFIXES)]}{(seed * 7919 + int(local)) % 10**7:07d}"
    )
    payload = {
        "full_name": shop,
        "phone": f"{phone[:4]} {phone[4:7]} {phone[7:]}",
        "email": f"kh{index:05d}.s{seed}@vidu.vn",
        "address": f"{rng.randint(1, 300)} {rng.choice(_STREETS)}",
        "province_code": "01",
        "tax_code": tax_code_for(index, seed),
        "contact_name": person,
        "credit_days": 15,
        "note": f"chaos run {seed}",
        **DEMO_CODES,
    }
    return CustomerSpec(index=index, owner=SALES_USERS[index % len(SALES_USERS)], payload=payload)


@dataclass
class Outcome:
    """What became of one customer, from the client's side."""

    spec: CustomerSpec
    customer_id: uuid.UUID | None = None
    review_id: uuid.UUID | None = None
    customer_code: str | None = None
    error: str | None = None
    finished_at: float | None = None


@dataclass
class WorkloadStats:
    requests: Counter[str] = field(default_factory=Counter)
    #: Requests retried, by why: "ConnectError", "ReadTimeout", "503", ...
    retries: Counter[str] = field(default_factory=Counter)
    #: Creates whose answer was lost, found again by the look-up instead of re-created.
    creates_found_by_lookup: int = 0
    conflicts_resolved: Counter[str] = field(default_factory=Counter)
    started_at: float = 0.0
    finished_at: float = 0.0

    @property
    def elapsed_s(self) -> float:
        return max(self.finished_at - self.started_at, 1e-9)


class GaveUpError(RuntimeError):
    pass


class Client:
    """HTTP with retries through outages, until `deadline` (monotonic seconds)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        tokens: dict[str, str],
        stats: WorkloadStats,
        deadline: float,
    ) -> None:
        self._http = http
        self._tokens = tokens
        self._stats = stats
        self._deadline = deadline

    def _headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._tokens[user]}"}

    async def _pause(self, attempt: int) -> None:
        if time.monotonic() > self._deadline:
            raise GaveUpError("deadline passed")
        await asyncio.sleep(min(0.1 * 2**attempt, 2.0) * (0.5 + random.random()))

    async def request(
        self,
        method: str,
        url: str,
        user: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        on_lost: Callable[[], Any] | None = None,
    ) -> httpx.Response:
        """The answer (any status but a retryable one). `on_lost`: awaited after a request
        that may have been applied without its answer arriving; a non-None result ends the
        call (the caller's check found it done)."""
        attempt = 0
        while True:
            self._stats.requests[f"{method} {url.split('/api/v1/')[-1].split('/')[0]}"] += 1
            try:
                response = await self._http.request(
                    method, url, json=json, params=params, headers=self._headers(user)
                )
            except httpx.ConnectError as exc:  # nothing was sent
                self._stats.retries[type(exc).__name__] += 1
            except httpx.TransportError as exc:  # maybe applied, answer lost
                self._stats.retries[type(exc).__name__] += 1
                if on_lost is not None:
                    await self._pause(attempt)
                    found = await on_lost()
                    if found is not None:
                        return found  # type: ignore[no-any-return]
            else:
                if response.status_code not in _RETRYABLE_STATUS:
                    return response
                self._stats.retries[str(response.status_code)] += 1
                if on_lost is not None and response.status_code != 503:
                    await self._pause(attempt)
                    found = await on_lost()
                    if found is not None:
                        return found  # type: ignore[no-any-return]
            attempt += 1
            await self._pause(attempt)


@dataclass
class Workload:
    base_urls: dict[str, str]  # "customer", "approval"
    tokens: dict[str, str]
    stats: WorkloadStats
    deadline: float
    review_wait_s: float = 600.0

    def client(self, http: httpx.AsyncClient) -> Client:
        return Client(http, self.tokens, self.stats, self.deadline)

    async def run_one(self, http: httpx.AsyncClient, outcome: Outcome) -> None:
        c = self.client(http)
        spec = outcome.spec
        outcome.customer_id = await self._create(c, spec)
        await self._submit(c, spec, outcome.customer_id)
        outcome.review_id = await self._pending_review(c, outcome.customer_id)
        outcome.customer_code = await self._approve(c, outcome.review_id)
        outcome.finished_at = time.monotonic()

    # ---- create ------------------------------------------------------------------------

    async def _lookup(self, c: Client, spec: CustomerSpec) -> uuid.UUID | None:
        url = f"{self.base_urls['customer']}/api/v1/customers"
        response = await c.request("GET", url, spec.owner, params={"q": spec.tax_code})
        if response.status_code != 200:
            return None
        for item in response.json()["items"]:
            if item.get("tax_code") == spec.tax_code:
                return uuid.UUID(item["id"])
        return None

    async def _create(self, c: Client, spec: CustomerSpec) -> uuid.UUID:
        url = f"{self.base_urls['customer']}/api/v1/customers"
        found: list[uuid.UUID] = []

        async def look_up() -> httpx.Response | None:
            customer_id = await self._lookup(c, spec)
            if customer_id is None:
                return None
            found.append(customer_id)
            self.stats.creates_found_by_lookup += 1
            return httpx.Response(200)

        response = await c.request("POST", url, spec.owner, json=spec.payload, on_lost=look_up)
        if found:
            return found[-1]
        if response.status_code != 201:
            raise GaveUpError(f"create answered {response.status_code}: {response.text[:300]}")
        return uuid.UUID(response.json()["id"])

    # ---- submit ------------------------------------------------------------------------

    async def _status(self, c: Client, spec: CustomerSpec, customer_id: uuid.UUID) -> str:
        url = f"{self.base_urls['customer']}/api/v1/customers/{customer_id}"
        response = await c.request("GET", url, spec.owner)
        return str(response.json().get("status")) if response.status_code == 200 else "?"

    async def _submit(self, c: Client, spec: CustomerSpec, customer_id: uuid.UUID) -> None:
        url = f"{self.base_urls['customer']}/api/v1/customers/{customer_id}/submit"
        attempt = 0
        while True:
            response = await c.request("POST", url, spec.owner)
            if response.status_code == 200:
                return
            if response.status_code == 409:
                if await self._status(c, spec, customer_id) in ("pending_approval", "active"):
                    self.stats.conflicts_resolved["submit"] += 1
                    return
            elif response.status_code == 422:
                fields = {e.get("field") for e in response.json().get("errors", [])}
                if not fields <= REFERENCE_FIELDS:
                    raise GaveUpError(f"submit refused: {sorted(map(str, fields))}")
                self.stats.retries["422-reference-warming-up"] += 1
            else:
                raise GaveUpError(f"submit answered {response.status_code}: {response.text[:300]}")
            attempt += 1
            await c._pause(attempt)

    # ---- review and approval -----------------------------------------------------------

    async def _pending_review(self, c: Client, customer_id: uuid.UUID) -> uuid.UUID:
        url = f"{self.base_urls['approval']}/api/v1/reviews"
        waited_until = min(self.deadline, time.monotonic() + self.review_wait_s)
        pause = 0.2
        while True:
            response = await c.request(
                "GET", url, CS_USER, params={"customer_id": str(customer_id), "kind": "new"}
            )
            if response.status_code == 200:
                items = response.json()["items"]
                if items:
                    return uuid.UUID(items[0]["id"])
            if time.monotonic() > waited_until:
                raise GaveUpError("no review appeared")
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, 2.0)  # a polling client, not a load generator

    async def _approve(self, c: Client, review_id: uuid.UUID) -> str:
        base = f"{self.base_urls['approval']}/api/v1/reviews/{review_id}"

        async def decided() -> httpx.Response | None:
            response = await c.request("GET", base, CS_USER)
            if response.status_code == 200 and response.json()["status"] == "approved":
                return response
            return None

        response = await c.request("POST", f"{base}/approve", CS_USER, on_lost=decided)
        if response.status_code == 409:
            already = await decided()
            if already is None:
                raise GaveUpError(f"approve: 409 and the review is not approved: {response.text}")
            self.stats.conflicts_resolved["approve"] += 1
            response = already
        if response.status_code != 200:
            raise GaveUpError(f"approve answered {response.status_code}: {response.text[:300]}")
        return str(response.json()["customer_code"])


async def run_workload(
    workload: Workload,
    specs: list[CustomerSpec],
    *,
    concurrency: int,
    on_progress: Callable[[int], None] = lambda _: None,
) -> list[Outcome]:
    """Every customer through create, submit and approval by `concurrency` clients."""
    outcomes = [Outcome(spec) for spec in specs]
    queue: asyncio.Queue[Outcome] = asyncio.Queue()
    for outcome in outcomes:
        queue.put_nowait(outcome)
    done = 0
    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(15.0, connect=3.0)
    workload.stats.started_at = time.monotonic()

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal done
        while True:
            try:
                outcome = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                await workload.run_one(http, outcome)
            except GaveUpError as exc:
                outcome.error = str(exc)
            except Exception as exc:  # report it with the customer, keep the others going
                outcome.error = f"{type(exc).__name__}: {exc}"
            done += 1
            on_progress(done)

    async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    workload.stats.finished_at = time.monotonic()
    return outcomes
