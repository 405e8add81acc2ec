"""The pure parts of `ims bench customer`: the generator, the queries, the report.

No timings are asserted and no database is needed: the benchmark checks its targets
itself. (Percentiles and the machine description come from `ims_cli.bench_cmd`, whose
own tests cover them; here they are only fed.)
"""

import asyncio
import re
from collections import Counter
from pathlib import Path

import pytest
from stdnum.vn import mst

from customer.identifiers import normalise_phone
from customer.models import Customer
from customer.service import search_text
from ims_cli.bench_cmd import Machine, Stats, percentile, summarize
from ims_cli.bench_customer import (
    BROAD_QUERIES,
    CATEGORIES,
    COLUMNS,
    HEADER,
    CustomerBenchReport,
    CustomerGenerator,
    FakeCustomer,
    LoadReport,
    SearchQuery,
    SearchResult,
    Throughput,
    append_report,
    build_queries,
    copy_record,
    distinctive_part,
    draft_payload,
    mst_check_digit,
    name_variants,
    phone_variants,
    render_markdown,
    render_table,
    run_concurrently,
    search_text_of,
    search_verdict,
    tax_variants,
    write_verdicts,
)
from ims_cli.main import build_parser
from shared.text import fold


@pytest.fixture(scope="module")
def customers() -> list[FakeCustomer]:
    return list(CustomerGenerator(seed=1).customers(1500))


def test_the_generator_is_deterministic() -> None:
    first = [c.full_name for c in CustomerGenerator(seed=3).customers(50)]
    again = [c.full_name for c in CustomerGenerator(seed=3).customers(50)]
    other = [c.full_name for c in CustomerGenerator(seed=4).customers(50)]
    assert first == again and first != other


def test_generated_customers_look_vietnamese(customers: list[FakeCustomer]) -> None:
    names = [c.full_name for c in customers]
    for start in ("Tạp hóa ", "Nhà thuốc ", "Công ty TNHH ", "Cửa hàng ", "Đại lý "):
        assert any(n.startswith(start) for n in names), start
    families = Counter(n.split()[0] for n in names if n.split()[0] in ("Nguyễn", "Trần", "Lê"))
    assert families["Nguyễn"] > families["Trần"] > 0  # Nguyễn is by far the commonest
    assert len({c.id for c in customers}) == len(customers)
    assert {c.status for c in customers} == {
        "active",
        "inactive",
        "draft",
        "pending_approval",
        "rejected",
    }
    assert {c.owner_employee_id for c in customers} <= {"NV001", "NV002", "NV003", "NV010"}
    created = [c.created_at for c in customers]
    assert created[0] < created[-1] and all(t.tzinfo is not None for t in created)


def test_phones_are_valid_e164(customers: list[FakeCustomer]) -> None:
    phones = [c.phone for c in customers if c.phone]
    assert len(phones) > 0.9 * len(customers)
    for phone in phones[:300]:
        assert normalise_phone(phone) == phone


def test_tax_codes_pass_the_checksum_or_are_personal_ids(customers: list[FakeCustomer]) -> None:
    codes = [c.tax_code for c in customers if c.tax_code]
    assert any("-" in c for c in codes) and any(len(c) == 12 for c in codes)
    for code in codes:
        if len(code) == 12:
            assert code.isdigit()
        else:
            assert mst.is_valid(code), code
    assert mst_check_digit("010004751") == 6  # the circular's worked example


def test_codes_are_sequential_and_only_for_approved_customers(
    customers: list[FakeCustomer],
) -> None:
    coded = [c for c in customers if c.customer_code]
    assert all(c.status in ("active", "inactive") for c in coded)
    assert all(c.customer_code is None for c in customers if c.status not in ("active", "inactive"))
    assert [c.customer_code for c in coded[:3]] == ["KH000001", "KH000002", "KH000003"]
    assert all(re.fullmatch(r"KH\d{6}", c.customer_code or "") for c in coded)


def test_search_text_is_the_services_own(customers: list[FakeCustomer]) -> None:
    for fake in customers[:300]:
        real = Customer(
            full_name=fake.full_name,
            company_name=fake.company_name,
            email=fake.email,
            tax_code=fake.tax_code,
            customer_code=fake.customer_code,
            misa_code=fake.misa_code,
            phone=fake.phone,
        )
        assert search_text_of(fake) == search_text(real)


def test_copy_records_follow_the_columns(customers: list[FakeCustomer]) -> None:
    fake = next(c for c in customers if c.status == "active")
    record = dict(zip(COLUMNS, copy_record(fake), strict=True))
    assert record["id"] == fake.id and record["full_name"] == fake.full_name
    assert record["search_text"] == search_text_of(fake)
    assert record["approved_at"] is not None and record["submitted_by"] == fake.owner_employee_id
    draft = next(c for c in customers if c.status == "draft")
    record = dict(zip(COLUMNS, copy_record(draft), strict=True))
    assert record["submitted_at"] is None and record["version"] == 1


def test_query_variants() -> None:
    assert distinctive_part("Tạp hóa Minh Châu") == "Minh Châu"
    assert distinctive_part("Tạp hóa Cô Bình") == "Bình"
    assert distinctive_part("Công ty TNHH Thương mại và Dịch vụ Phát Lộc") == "Phát Lộc"
    assert distinctive_part("Nguyễn Văn An") == "Nguyễn Văn An"
    assert name_variants("Tạp hóa Minh Châu") == [
        "Tạp hóa Minh Châu",
        "tap hoa minh chau",
        "Minh Châu",
        "Tạp hóa Minh",
    ]
    assert phone_variants("+84912345678") == [
        "0912 345 678",
        "+84912345678",
        "912345678",
        "0912345678",
        "0912.345.678",
    ]
    assert tax_variants("0314409058-002") == ["0314409058-002", "0314409058 002", "0314409058002"]
    assert tax_variants("0314409058") == ["0314409058"]


def test_build_queries_covers_every_category_without_repeats(
    customers: list[FakeCustomer],
) -> None:
    queries = build_queries(customers[::5], per_category=40)
    assert list(queries) == list(CATEGORIES)
    for category, mix in queries.items():
        assert mix and len(mix) == len(set(mix)) and len(mix) <= 40, category
    assert [q.q for q in queries["one word"]][: len(BROAD_QUERIES)] == list(BROAD_QUERIES)
    assert all(" " not in (q.q or "") for q in queries["one word"][len(BROAD_QUERIES) :])
    assert all(" " in (q.q or "") for q in queries["name"])
    assert all(q.q is None for q in queries["list (no q)"])
    assert all(
        fold(q.q or "").replace(" ", "").isdigit() or "+" in (q.q or "") or "." in (q.q or "")
        for q in queries["phone"]
    )
    assert SearchQuery("x", (("status", "active"),)).label() == "'x' status=active"


def test_draft_payloads_are_complete_and_unique() -> None:
    import random

    rng = random.Random(1)
    payloads = [draft_payload(rng, n) for n in range(50)]
    assert len({p["full_name"] for p in payloads}) == 50
    for p in payloads:
        assert normalise_phone(p["phone"]).startswith("+84")


def test_run_concurrently_runs_every_call_once() -> None:
    seen: list[int] = []

    async def call(i: int) -> None:
        await asyncio.sleep(0)
        seen.append(i)

    result = asyncio.run(run_concurrently("x", 25, 4, call))
    assert sorted(seen) == list(range(25))
    assert result.requests == 25 and result.latency.n == 25 and result.concurrency == 4


def test_run_concurrently_reports_the_first_failure() -> None:
    async def call(i: int) -> None:
        if i == 3:
            raise LookupError("boom")

    with pytest.raises(LookupError, match="boom"):
        asyncio.run(run_concurrently("x", 10, 2, call))


def _stats(p95: float) -> Stats:
    return summarize([p95 / 2, p95 / 2, p95])


def _report() -> CustomerBenchReport:
    machine = Machine("Test CPU", 2, 23.5, "3.12.1", "Linux 6", "2026-11-28 20:00 UTC")
    raw = summarize([1.0, 1.0, 2.0])
    return CustomerBenchReport(
        command="ims bench customer --customers 1000",
        machine=machine,
        postgres="PostgreSQL 15.20 (shared_buffers 128MB, work_mem 4MB)",
        load=LoadReport(1000, 2.0, 1.0, 0.5, 10.0, {"ix_customers_search_trgm": 3.0}),
        search=[
            SearchResult("name", 10, _stats(2.5), raw, 1.5, 0, "'Tạp hóa An'", ("ix_a",)),
            SearchResult("phone", 10, _stats(80.0), raw, 2.0, 0, "'0912 345 678'", ()),
            SearchResult("one word", 8, _stats(300.0), raw, 1.0, 0, "'nguyen'", ()),
        ],
        writes=[
            Throughput("create draft", 100, 16, 2.0, _stats(10.0)),
            Throughput("submit", 100, 16, 10.0, _stats(10.0)),
            Throughput("floor: one INSERT", 100, 16, 1.0, _stats(5.0)),
        ],
        note="Ran at 1,000 customers.",
    )


def test_verdicts() -> None:
    report = _report()
    name, phone, _ = report.search
    assert search_verdict(name) == "met"
    assert search_verdict(phone).startswith("NOT met (p95 76.0 ms > 50")
    assert write_verdicts(report) == [
        "create draft: 50/s = 50% of the floor's 100/s (target ≥ 50%): met",
        "submit: 10/s = 10% of the floor's 100/s (target ≥ 50%): NOT met",
    ]


def test_report_renders_and_appends_under_one_header(tmp_path: Path) -> None:
    report = _report()
    table = render_table(report)
    assert "name" in table and "(not a target)" in table and "NOT met" in table
    markdown = render_markdown(report)
    assert "Machine: Test CPU, 2 CPUs (nproc), 23.5 GiB, Python 3.12.1" in markdown
    assert "PostgreSQL 15.20" in markdown and "Ran at 1,000 customers." in markdown
    assert "| one word (e.g. 'nguyen') |" in markdown and "not a target" in markdown
    target = tmp_path / "docs" / "benchmarks.md"
    append_report(target, report)
    append_report(target, report)
    text = target.read_text(encoding="utf-8")
    assert text.startswith(HEADER) and text.count("# Benchmarks\n") == 1
    assert "benchmarks/reference-search.md" in text
    assert text.count("## Customers: 1,000") == 2


def test_percentiles_feed_the_report() -> None:
    samples = [float(i) for i in range(1, 101)]
    assert percentile(samples, 50) == pytest.approx(50.5)
    assert summarize(samples).p99 == pytest.approx(99.01)


def test_the_subcommand_parses_its_options() -> None:
    args = build_parser().parse_args(
        ["bench", "customer", "--customers", "200000", "--keep", "--writes", "10"]
    )
    assert (args.customers, args.keep, args.writes, args.concurrency) == (200000, True, 10, 16)
    assert args.samples == 400 and args.database_url_base is None
    defaults = build_parser().parse_args(["bench", "customer"])
    assert defaults.customers == 1_000_000 and not defaults.keep
