"""`ims bench ui` end to end on a small table, and where its report lands.

No timing is asserted: the benchmark checks its target itself. The run goes through the
command line in a child process, against the machine's PostgreSQL
(IMS_TEST_DATABASE_URL_BASE or the default), on a database of its own; the child keeps
the service's production logging set-up, which the benchmark installs, out of this
process.
"""

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from ims_cli.bench_customer import HEADER, append_section
from ims_cli.bench_customer import RESULTS_HEADING as CUSTOMER_RESULTS
from ims_cli.bench_ui import RESULTS_HEADING as UI_RESULTS
from ims_cli.main import build_parser

PAGES = (
    ("list, newest first", "cs1"),
    ("list, newest first", "manager1"),
    ("list, newest first", "sales1"),
    ("search by name", "sales1"),
    ("search by phone", "sales1"),
    ("live search fragment (partial=1), name", "sales1"),
    ("live search fragment (partial=1), one word", "sales1"),
    ("filter status=rejected", "sales1"),
    ("filter province_code=79", "sales1"),
    ("filter province_code=12 (rare)", "sales1"),
    ("customer page", "sales1"),
    ("edit form", "sales1"),
    ("new form (Tạo mới)", "sales1"),
)


def test_the_subcommand_parses_its_options() -> None:
    defaults = build_parser().parse_args(["bench", "ui"])
    assert (defaults.customers, defaults.samples, defaults.keep) == (1_000_000, 400, False)
    assert defaults.database_name == "ims_bench_ui" and defaults.output is None
    args = build_parser().parse_args(["bench", "ui", "--customers", "5000", "--keep"])
    assert (args.customers, args.keep) == (5000, True)


def test_each_benchmark_keeps_its_runs_under_its_own_heading(tmp_path: Path) -> None:
    target = tmp_path / "benchmarks.md"
    append_section(target, CUSTOMER_RESULTS, "## customer run 1\n")
    append_section(target, UI_RESULTS, "## ui run 1\n")
    append_section(target, CUSTOMER_RESULTS, "## customer run 2\n")
    append_section(target, UI_RESULTS, "## ui run 2\n")
    text = target.read_text(encoding="utf-8")
    assert text.startswith(HEADER)
    order = [
        CUSTOMER_RESULTS,
        "## customer run 1",
        "## customer run 2",
        UI_RESULTS,
        "## ui run 1",
        "## ui run 2",
    ]
    positions = [text.index(line) for line in order]
    assert positions == sorted(positions)
    assert text.count(UI_RESULTS) == 1 and text.count(CUSTOMER_RESULTS) == 1


def test_the_benchmark_runs_end_to_end_and_reports_every_page(tmp_path: Path) -> None:
    output = tmp_path / "benchmarks.md"
    database = f"ims_bench_ui_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ims_cli.main",
            "bench",
            "ui",
            "--customers",
            "2000",
            "--samples",
            "5",
            "--database-name",
            database,
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert f"dropped {database}" in done.stdout
    assert "target p95 < 1000 ms: met by" in done.stdout  # the verdict, whatever it is

    text = output.read_text(encoding="utf-8")
    section = text[text.index(UI_RESULTS) :]
    assert "## UI pages, customers: 2,000, " in section
    assert re.search(r"^Machine: .+ CPUs \(nproc\), .+; PostgreSQL \d+", section, re.M)
    assert (
        f"Command: `ims bench ui --customers 2000 --samples 5 --database-name {database}`."
        in section
    )
    assert re.search(r"Customers per owner: .*NV001 \d+", section)
    assert re.search(r"one customer made through the API: active, \d+ history rows", section)

    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| ")][1:]
    assert [(r[0].removeprefix("| ").split(" (e.g. ")[0], r[1]) for r in rows] == list(PAGES)
    for row in rows:
        assert row[3] == "5", row  # n: every page was loaded --samples times
        assert re.fullmatch(r"\d+\.\d", row[4]) and re.fullmatch(r"\d+%", row[7]), row
    floors = {r[0].split(" (e.g. ")[0].removeprefix("| "): r[10] for r in rows}
    assert floors["list, newest first"] == "`GET /api/v1/customers`"
    assert floors["customer page"] == "`GET /api/v1/customers/{id}`"
    assert floors["new form (Tạo mới)"] == "none"
    lists = [r for r in rows if r[10].startswith("`GET /api/v1/customers`")]
    assert lists and all(r[9] == "50" for r in lists)  # a full first page of customers
    assert "- list pages whose customers differed from the API's: 0" in section
    assert re.search(r"- target p95 < 1000 ms: met by \d+ of 13 pages; \d+ of 13 under", section)
