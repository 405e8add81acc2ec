"""`ims bench ui`: the salesperson web UI's pages with a million customers (issue 7).

"Every page renders in well under a second with 1M customers in the database." Against a
real PostgreSQL, in one run and side by side so that ratios hold on a noisy machine:

- a fresh database loaded as `ims bench customer` loads it (migrations, the reference
  replica, N realistic customers by COPY; `ims_cli.bench_customer`), plus one customer
  made through the API with a history (drafted, edited, submitted, rejected, fixed,
  approved, linked to MISA, a change request pending);
- the customer app in process (httpx over ASGI), each user signed in through the UI's
  demo sign-in as a browser is (the session cookie), timing each page of `/ui/` with
  its HTML fully read: the list newest first as `cs1`, `manager1` and `sales1`, searches
  by name and phone, filters, the live-search fragment, the customer page, the edit and
  the new forms;
- beside each page, alternating which goes first, its JSON API equivalent on the same app
  with the same user's token (the session cookie is that JWT): the floor, so the ratio is
  what building and rendering the page costs on top of the data.

Figures are printed and appended, with the machine, to ``docs/benchmarks.md``. The
target (p95 < 1000 ms per page) is checked here, never in timed tests.
"""

import asyncio
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import unquote_plus, urlencode

from ims_cli.bench_customer import (
    DEFAULT_CUSTOMERS,
    DEFAULT_DB_BASE,
    BenchRequestError,
    FakeCustomer,
    LoadReport,
    append_section,
    build_queries,
    draft_payload,
    drop_database,
    fill_reference_replica,
    libpq_dsn,
    load_customers,
    load_line,
    postgres_description,
    recreate_database,
    silence_service_logs,
)
from ims_cli.bench_report import (
    Machine,
    Stats,
    machine_info,
    machine_line,
    markdown_table,
    summarize,
)
from ims_cli.paths import find_repo_root

if TYPE_CHECKING:
    import httpx
    from fastapi import FastAPI

DEFAULT_DB_NAME = "ims_bench_ui"
DEFAULT_SAMPLES = 400
TARGET_P95_MS = 1000.0
#: "Well under a second": how many pages also stay under this at p95.
WELL_UNDER_MS = 250.0
RESULT_FILE = Path("docs/benchmarks.md")
RESULTS_HEADING = "# Results: `ims bench ui`"
#: Distinct queries per kind of search (cycled when there are more samples).
DISTINCT_QUERIES = 200
#: The salesperson whose pages are timed, and the manager above them (shared.auth.demo).
SALES_USER, SALES_EMPLOYEE = "sales1", "NV001"
MANAGER_USER = "manager1"
CS_USER = "cs1"
#: A big province (TP. Hồ Chí Minh) and one of the smallest (Lai Châu) of the loader's mix:
#: newest first, a rare filter value means reading far down the date index.
COMMON_PROVINCE, RARE_PROVINCE = "79", "12"
ORIGIN = "http://bench"
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
_ROW_LINK = re.compile(r'class="customer-link" href="/ui/customers/([0-9a-f-]{36})"')
_SESSION_COOKIE = "ims_customer_session"  # shared.ui.UiKit: f"ims_{app_id}_session"


@dataclass(frozen=True, slots=True)
class Page:
    """One kind of page: the URLs timed (cycled) and, in the same order, their API floor."""

    name: str
    user: str
    urls: tuple[str, ...]
    floor_urls: tuple[str, ...] = ()
    floor_label: str = ""
    """What the floor is, e.g. ``GET /api/v1/customers?q=…``; empty: no API equivalent."""
    compare_rows: bool = False
    """A list: the customers it shows must be the API's, in the API's order."""
    example: str = ""
    """The first URL as the report shows it (default: the URL, decoded)."""


@dataclass(frozen=True, slots=True)
class PageResult:
    name: str
    user: str
    example: str
    distinct: int
    page: Stats
    under_well: float
    """The share of samples under `WELL_UNDER_MS`."""
    kib: float
    """Mean HTML size."""
    rows: float
    """Mean customers per list page (0 for other pages)."""
    mismatches: int
    """List pages whose customers were not the API's (should be 0)."""
    floor: Stats | None = None
    floor_label: str = ""

    @property
    def ratio_p50(self) -> float | None:
        return self.page.p50 / self.floor.p50 if self.floor and self.floor.p50 else None

    @property
    def ratio_p95(self) -> float | None:
        return self.page.p95 / self.floor.p95 if self.floor and self.floor.p95 else None


@dataclass(frozen=True, slots=True)
class Subject:
    """The customer whose page and edit form are timed."""

    id: uuid.UUID
    history_rows: int
    delivery_addresses: int
    status: str


@dataclass(frozen=True, slots=True)
class UiBenchReport:
    command: str
    machine: Machine
    postgres: str
    load: LoadReport
    owners: dict[str, int]
    """Customers per owner (employee id), as loaded."""
    subject: Subject
    pages: list[PageResult]
    note: str | None = None


# ---- the pages ----------------------------------------------------------------------------


def _url(path: str, **params: str) -> str:
    return path + (f"?{urlencode(params)}" if params else "")


def build_pages(
    sample: Sequence[FakeCustomer], subject: uuid.UUID, *, distinct: int = DISTINCT_QUERIES
) -> list[Page]:
    """The pages a salesperson opens, with their API floors. Searches come from the
    salesperson's own customers in the sample (what they look for), as people type them
    (`ims_cli.bench_customer.build_queries`)."""
    own = [c for c in sample if c.owner_employee_id == SALES_EMPLOYEE]
    queries = build_queries(own, per_category=distinct)
    names = [q.q for q in queries["name"] if q.q]
    phones = [q.q for q in queries["phone"] if q.q]
    # The live search has no minimum length: after a 300 ms pause it sends what is typed,
    # often one word ('nguyen', 'tap hoa', a given name alone), which matches a large share.
    one_words = [q.q for q in queries["one word"] if q.q]
    ui, api = "/ui/customers", "/api/v1/customers"

    def listing(name: str, user: str, **params: str) -> Page:
        shown = "&".join(f"{k}={v}" for k, v in params.items())
        return Page(
            name,
            user,
            (_url(ui, **params),),
            (_url(api, **params),),
            f"GET {api}" + (f"?{shown}" if shown else ""),
            compare_rows=True,
        )

    def search(name: str, terms: Sequence[str], **extra: str) -> Page:
        return Page(
            name,
            SALES_USER,
            tuple(_url(ui, q=t, **extra) for t in terms),
            tuple(_url(api, q=t) for t in terms),
            f"GET {api}?q=…",
            compare_rows=True,
        )

    detail, detail_api = f"{ui}/{subject}", f"{api}/{subject}"
    return [
        listing("list, newest first", CS_USER),
        listing("list, newest first", MANAGER_USER),
        listing("list, newest first", SALES_USER),
        search("search by name", names),
        search("search by phone", phones),
        search("live search fragment (partial=1), name", names, partial="1"),
        search("live search fragment (partial=1), one word", one_words, partial="1"),
        listing("filter status=rejected", SALES_USER, status="rejected"),
        listing(
            f"filter province_code={COMMON_PROVINCE}", SALES_USER, province_code=COMMON_PROVINCE
        ),
        listing(
            f"filter province_code={RARE_PROVINCE} (rare)", SALES_USER, province_code=RARE_PROVINCE
        ),
        Page(
            "customer page",
            SALES_USER,
            (detail,),
            (detail_api,),
            f"GET {api}/{{id}}",
            example=f"{ui}/{{id}}",
        ),
        Page(
            "edit form",
            SALES_USER,
            (f"{detail}/edit",),
            (detail_api,),
            f"GET {api}/{{id}}",
            example=f"{ui}/{{id}}/edit",
        ),
        Page("new form (Tạo mới)", SALES_USER, (f"{ui}/new",)),
    ]


# ---- the app and its users ----------------------------------------------------------------


class Browser:
    """A user's client on the app: a cookie jar holding the UI session after the demo
    sign-in, and the same JWT as a bearer token for the API."""

    def __init__(self, client: "httpx.AsyncClient", token: str) -> None:
        self.client = client
        self.token = token

    async def get(self, url: str, *, html: bool) -> "httpx.Response":
        headers = None if html else {"Authorization": f"Bearer {self.token}"}
        response = await self.client.get(url, headers=headers)  # the body is read in full
        kind = response.headers.get("content-type", "")
        expected = "text/html" if html else "application/json"
        if response.status_code != 200 or expected not in kind:
            raise BenchRequestError(
                f"GET {url} answered {response.status_code} ({kind}): {response.text[:300]}"
            )
        return response


async def sign_in(app: "FastAPI", username: str) -> Browser:
    """Sign in through the UI as a browser does: the sign-in page's CSRF token, then
    the demo sign-in form; the session cookie it sets is the user's JWT."""
    import httpx

    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN, timeout=120)
    page = await client.get("/ui/sign-in")
    found = _CSRF.search(page.text)
    if page.status_code != 200 or not found:
        await client.aclose()
        raise BenchRequestError(f"GET /ui/sign-in answered {page.status_code} without a form")
    response = await client.post(
        "/ui/sign-in/demo",
        data={"csrf_token": found.group(1), "username": username},
        headers={"Origin": ORIGIN},
    )
    token = client.cookies.get(_SESSION_COOKIE)
    if response.status_code != 303 or not token:
        await client.aclose()
        raise BenchRequestError(
            f"the demo sign-in of {username} answered {response.status_code}: {response.text[:300]}"
        )
    return Browser(client, token)


async def make_subject(app: "FastAPI", sales: Browser) -> Subject:
    """A customer with a real history, made the way it happens: drafted and edited through
    the API, submitted, rejected by CS, fixed, resubmitted, approved, linked to MISA, then a
    change request left pending (CS's and misa_sync's decisions applied as their events'
    handlers apply them)."""
    import random

    from customer.models import Customer
    from customer.service import CustomerService

    auth = {"Authorization": f"Bearer {sales.token}"}
    client = sales.client
    body = draft_payload(random.Random(11), 0)
    body["full_name"] = "Tạp hóa Bench Giao Diện"
    body["delivery_addresses"] = [
        {"address": f"Kho {n}, {n * 7} Lê Lợi", "is_default": n == 1} for n in range(1, 4)
    ]

    async def call(method: str, url: str, status: int, **kwargs: Any) -> "httpx.Response":
        response = await client.request(method, url, **kwargs)
        if response.status_code != status:
            raise BenchRequestError(
                f"{method} {url} answered {response.status_code}: {response.text[:300]}"
            )
        return response

    created = await call("POST", "/api/v1/customers", 201, json=body, headers=auth)
    customer_id = uuid.UUID(created.json()["id"])
    url = f"/api/v1/customers/{customer_id}"
    etag = created.headers["ETag"]

    async def patch(fields: dict[str, Any]) -> None:
        nonlocal etag
        response = await call("PATCH", url, 200, json=fields, headers={**auth, "If-Match": etag})
        etag = response.headers["ETag"]

    async def submit() -> int:
        nonlocal etag
        response = await call("POST", f"{url}/submit", 200, headers=auth)
        etag = response.headers["ETag"]
        return int(response.json()["version"])

    sessions = app.state.runtime.sessionmaker
    now = datetime.now(UTC)
    await patch({"email": "giaodien@example.vn"})
    await patch({"address": "12 Nguyễn Trãi"})
    version = await submit()
    async with sessions() as session, session.begin():
        await CustomerService(session).on_rejected(
            customer_id=customer_id,
            customer_version=version,
            reason="Số điện thoại không liên lạc được",
            rejected_by="NV020",
            rejected_at=now,
        )
    etag = (await call("GET", url, 200, headers=auth)).headers["ETag"]
    await patch({"phone": "0912 000 111"})
    version = await submit()
    async with sessions() as session, session.begin():
        service = CustomerService(session)
        await service.on_approved(
            customer_id=customer_id,
            customer_version=version,
            customer_code="KH9000001",
            approved_by="NV020",
            approved_at=now,
        )
        await service.on_misa_linked(customer_id=customer_id, misa_code="MISA-BENCH-1")
    etag = (await call("GET", url, 200, headers=auth)).headers["ETag"]
    await patch({"credit_days": 30})  # a governed field: a change request for CS
    history = (await call("GET", f"{url}/history", 200, headers=auth)).json()["items"]
    async with sessions() as session:
        customer = await session.get(Customer, customer_id)
        status = customer.status if customer else "?"
    return Subject(customer_id, len(history), len(body["delivery_addresses"]), status)


# ---- measuring ----------------------------------------------------------------------------


def row_ids(html: str) -> list[str]:
    """The customers a list page shows, in its order."""
    return _ROW_LINK.findall(html)


async def measure_page(page: Page, browser: Browser, samples: int, *, out: TextIO) -> PageResult:
    """`samples` loads of the page and of its floor, one at a time, alternating which
    goes first so that drift in the machine's load hits both alike."""
    distinct = min(len(page.urls), samples)
    urls = page.urls[:distinct]
    floors = page.floor_urls[:distinct]
    print(f"  {page.name} as {page.user}: {distinct} distinct URL(s)", file=out)
    for i, url in enumerate(urls):  # warm-up: each URL once, the app's and PostgreSQL's caches
        await browser.get(url, html=True)
        if floors:
            await browser.get(floors[i], html=False)
    page_ms: list[float] = []
    floor_ms: list[float] = []
    sizes: list[int] = []
    rows: list[int] = []
    mismatches = 0
    for i in range(samples):
        url = urls[i % distinct]

        async def load_page(url: str = url) -> "httpx.Response":
            started = time.perf_counter_ns()
            response = await browser.get(url, html=True)
            page_ms.append((time.perf_counter_ns() - started) / 1_000_000)
            return response

        async def load_floor(i: int = i) -> "httpx.Response | None":
            if not floors:
                return None
            started = time.perf_counter_ns()
            response = await browser.get(floors[i % distinct], html=False)
            floor_ms.append((time.perf_counter_ns() - started) / 1_000_000)
            return response

        if i % 2:
            floor = await load_floor()
            html = await load_page()
        else:
            html = await load_page()
            floor = await load_floor()
        sizes.append(len(html.content))
        if page.compare_rows:
            shown = row_ids(html.text)
            rows.append(len(shown))
            if floor is not None:
                mismatches += shown != [item["id"] for item in floor.json()["items"]]
    stats = summarize(page_ms)
    return PageResult(
        name=page.name,
        user=page.user,
        example=page.example or unquote_plus(urls[0]),
        distinct=distinct,
        page=stats,
        under_well=sum(ms < WELL_UNDER_MS for ms in page_ms) / len(page_ms),
        kib=sum(sizes) / len(sizes) / 1024,
        rows=sum(rows) / len(rows) if rows else 0.0,
        mismatches=mismatches,
        floor=summarize(floor_ms) if floor_ms else None,
        floor_label=page.floor_label,
    )


async def owners_of(url: str) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(libpq_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT owner_employee_id, count(*) AS n FROM customers GROUP BY 1 ORDER BY 2 DESC"
        )
    finally:
        await conn.close()
    return {str(r["owner_employee_id"]): int(r["n"]) for r in rows}


async def measure_ui(
    url: str, sample: Sequence[FakeCustomer], samples: int, *, keys_dir: Path, out: TextIO
) -> tuple[Subject, list[PageResult]]:
    """The customer app in process, its users signed in, every page timed."""
    from customer.app import create_app
    from customer.settings import CustomerSettings
    from shared.auth.dev_issuer import ensure_keypair

    private_path, public_path = ensure_keypair(keys_dir)
    settings = CustomerSettings(
        env="dev",
        database_url=url,
        jwt_public_key_file=str(public_path),
        ui_dev_signin_key_file=str(private_path),  # what the demo sign-in signs with
        run_workers=False,
        kafka_bootstrap_servers="127.0.0.1:1",
        blob_dir=keys_dir / "blobs",
    )
    silence_service_logs()
    app = create_app(settings)
    browsers: dict[str, Browser] = {}
    try:
        for user in (SALES_USER, MANAGER_USER, CS_USER):
            browsers[user] = await sign_in(app, user)
        subject = await make_subject(app, browsers[SALES_USER])
        print(
            f"  the customer page's subject: {subject.id}, {subject.status}, "
            f"{subject.history_rows} history rows",
            file=out,
        )
        results = [
            await measure_page(page, browsers[page.user], samples, out=out)
            for page in build_pages(sample, subject.id)
        ]
    finally:
        for browser in browsers.values():
            await browser.client.aclose()
        await app.state.runtime.engine.dispose()
    return subject, results


# ---- the report ---------------------------------------------------------------------------


def verdict(result: PageResult) -> str:
    p95 = result.page.p95
    if p95 >= TARGET_P95_MS:
        return f"NOT met (p95 {p95:.0f} ms)"
    return "met" + (f", under {WELL_UNDER_MS:g} ms" if p95 < WELL_UNDER_MS else "")


def summary_lines(report: UiBenchReport) -> list[str]:
    pages = report.pages
    met = sum(r.page.p95 < TARGET_P95_MS for r in pages)
    well = sum(r.page.p95 < WELL_UNDER_MS for r in pages)
    slowest = max(pages, key=lambda r: r.page.p95)
    mismatches = sum(r.mismatches for r in pages)
    return [
        f"target p95 < {TARGET_P95_MS:g} ms: met by {met} of {len(pages)} pages; "
        f"{well} of {len(pages)} under {WELL_UNDER_MS:g} ms at p95",
        f"slowest at p95: {slowest.name} as {slowest.user}, {slowest.page.p95:.1f} ms",
        f"list pages whose customers differed from the API's: {mismatches}",
    ]


def _ratio(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "—"


def render_table(report: UiBenchReport) -> str:
    lines = [load_line(report.load), ""]
    width = max(len(f"{r.name} ({r.user})") for r in report.pages)
    lines.append(
        f"{'page (ms)':<{width}} {'n':>5} {'p50':>8} {'p95':>8} {'p99':>8} {'<250':>5} "
        f"{'KiB':>6} {'api p50':>8} {'api p95':>8} {'×p95':>6}  target"
    )
    for r in report.pages:
        f = r.floor
        lines.append(
            f"{f'{r.name} ({r.user})':<{width}} {r.page.n:>5} {r.page.p50:>8.1f} "
            f"{r.page.p95:>8.1f} {r.page.p99:>8.1f} {r.under_well:>5.0%} {r.kib:>6.1f} "
            f"{f'{f.p50:.1f}' if f else '—':>8} {f'{f.p95:.1f}' if f else '—':>8} "
            f"{_ratio(r.ratio_p95):>6}  {verdict(r)}"
        )
    lines.append("")
    lines += summary_lines(report)
    return "\n".join(lines)


def _markdown_row(r: PageResult) -> tuple[object, ...]:
    f = r.floor
    floor = (
        (f"`{r.floor_label}`", f"{f.p50:.1f}", f"{f.p95:.1f}", _ratio(r.ratio_p95))
        if f
        else ("none", "—", "—", "—")
    )
    return (
        *(f"{r.name} (e.g. `{r.example}`)", r.user, r.distinct, r.page.n),
        *(f"{r.page.p50:.1f}", f"{r.page.p95:.1f}", f"{r.page.p99:.1f}", f"{r.under_well:.0%}"),
        *(f"{r.kib:.1f}", f"{r.rows:.0f}" if r.rows else "—", *floor, verdict(r)),
    )


def render_markdown(report: UiBenchReport) -> str:
    owners = ", ".join(f"{k} {v:,}" for k, v in report.owners.items())
    s = report.subject
    lines = [
        f"## UI pages, customers: {report.load.customers:,}, {report.machine.date}",
        "",
        machine_line(report.machine, report.postgres),
        f"Command: `{report.command}`.",
    ]
    if report.note:
        lines += ["", report.note]
    lines += [
        "",
        f"Load: {load_line(report.load)}. Customers per owner: {owners} "
        f"(`{SALES_USER}` is {SALES_EMPLOYEE}; `{MANAGER_USER}` sees the units of Hà Nội; "
        f"`{CS_USER}` sees everyone).",
        "",
        f"The customer page and the edit form show one customer made through the API: "
        f"{s.status}, {s.history_rows} history rows, {s.delivery_addresses} delivery "
        "addresses, a change request pending.",
        "",
        "Each page through the customer app in process (httpx over ASGI, the session cookie of "
        "the demo sign-in), the HTML read in full, one request at a time; beside it, "
        "alternating which goes first, its JSON API equivalent with the same user's token. "
        f"`<{WELL_UNDER_MS:g} ms`: the share of the page's samples under {WELL_UNDER_MS:g} ms.",
        "",
    ]
    lines += markdown_table(
        (
            *("page", "user", "distinct", "n", "p50 ms", "p95 ms", "p99 ms", "<250 ms"),
            *("KiB", "rows", "API floor", "floor p50", "floor p95", "×floor p95", "target"),
        ),
        "llrrrrrrrrlrrrl",
        (_markdown_row(r) for r in report.pages),
    )
    lines.append("")
    lines += [f"- {line}" for line in summary_lines(report)]
    return "\n".join(lines) + "\n"


def append_report(path: Path, report: UiBenchReport) -> None:
    append_section(path, RESULTS_HEADING, render_markdown(report))


# ---- the command --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UiBenchOptions:
    customers: int = DEFAULT_CUSTOMERS
    database_url_base: str = DEFAULT_DB_BASE
    database_name: str = DEFAULT_DB_NAME
    samples: int = DEFAULT_SAMPLES
    keep: bool = False
    note: str | None = None

    def command(self) -> str:
        named = (
            f" --database-name {self.database_name}"
            if self.database_name != DEFAULT_DB_NAME
            else ""
        )
        return f"ims bench ui --customers {self.customers} --samples {self.samples}{named}"


async def run_bench(options: UiBenchOptions, *, out: TextIO) -> UiBenchReport:
    from shared.migrations import upgrade_to_head

    base = options.database_url_base.rstrip("/")
    print(f"creating {options.database_name} on {base} and migrating it…", file=out)
    url = await recreate_database(base, options.database_name)
    try:
        await asyncio.to_thread(upgrade_to_head, "customer", url)
        await fill_reference_replica(url)
        print(f"loading {options.customers:,} customers with COPY…", file=out)
        load, sample = await load_customers(url, options.customers, out=out)
        print(load_line(load), file=out)
        owners = await owners_of(url)
        print("measuring the pages…", file=out)
        with tempfile.TemporaryDirectory(prefix="ims-bench-ui-") as keys:
            subject, pages = await measure_ui(
                url, sample, options.samples, keys_dir=Path(keys), out=out
            )
        postgres = await postgres_description(url)
    finally:
        if not options.keep:
            await drop_database(base, options.database_name)
            print(f"dropped {options.database_name}", file=out)
        else:
            print(f"kept {url}", file=out)
    return UiBenchReport(
        command=options.command(),
        machine=machine_info(),
        postgres=postgres,
        load=load,
        owners=owners,
        subject=subject,
        pages=pages,
        note=options.note,
    )


def run_ui_bench(
    options: UiBenchOptions,
    *,
    output: Path | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        import customer.ui  # noqa: F401
    except ImportError:
        print("ims bench: the ims-customer package is not installed here", file=err)
        return 2
    try:
        report = asyncio.run(run_bench(options, out=out))
    except (OSError, BenchRequestError) as exc:
        print(f"ims bench: {exc}", file=err)
        return 1
    print(render_table(report), file=out)
    target = output or find_repo_root() / RESULT_FILE
    append_report(target, report)
    print(f"results appended to {target}", file=out)
    return 0
