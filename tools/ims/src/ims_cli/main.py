"""The `ims` command line."""

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ims_cli.bench_stack_args import add_stack_benches
from ims_cli.chaos_cli import add_chaos_parser
from ims_cli.paths import data_dir
from ims_cli.stack_config import ENV_VARS_HELP, ConfigError, load_stack_config
from ims_cli.token_cmd import run_token

_DEFAULT_TTL_S = 12 * 3600


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _up_epilog() -> str:
    width = max(len(name) for name, _ in ENV_VARS_HELP)
    lines = [f"  {name:<{width}}  {meaning}" for name, meaning in ENV_VARS_HELP]
    return "\n".join(
        [
            "environment variables:",
            *lines,
            "",
            "Every other variable is passed on to the children, so service settings",
            "(e.g. CUSTOMER_LOG_LEVEL) can be given here too.",
        ]
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ims", description="The IMS local stack and dev tools.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up",
        help="run the whole local stack in the foreground (Ctrl-C stops it)",
        description=(
            "Start embedded PostgreSQL, the Tansu Kafka-protocol broker, the four services "
            "and the MISA simulator; restart a part that crashes; print one line containing "
            "'ready' once every part answers. Ctrl-C or SIGTERM stops everything; the data "
            "survives in the data folder."
        ),
        epilog=_up_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.set_defaults(handler=_up)

    token = commands.add_parser(
        "token",
        help="print a bearer token (JWT) for a demo user",
        description="Print a JWT for a demo user, signed by the local dev issuer.",
    )
    token.add_argument("username", metavar="USERNAME", help="demo user, e.g. sales1 or cs1")
    token.add_argument(
        "--ttl",
        type=_positive_int,
        default=_DEFAULT_TTL_S,
        metavar="SECONDS",
        help=f"lifetime of the token (default {_DEFAULT_TTL_S})",
    )
    token.set_defaults(handler=_token)

    bench = commands.add_parser(
        "bench",
        help="run a performance benchmark and record its results under docs/benchmarks",
        description="Performance benchmarks; each appends its figures and the machine to a file.",
    )
    benches = bench.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    search = benches.add_parser(
        "reference-search",
        help="latency of the admin-unit type-ahead search (target p95 ≤ 10 ms)",
        description=(
            "Time the admin-unit search index in process against a linear scan, side by side, "
            "and optionally the HTTP endpoint of a running reference service; print a table "
            "and append it to docs/benchmarks/reference-search.md."
        ),
    )
    search.add_argument(
        "--queries",
        type=_positive_int,
        default=600,
        metavar="N",
        help="queries per measurement (default 600)",
    )
    search.add_argument(
        "--url",
        metavar="URL",
        help="also time the endpoint of the reference service at URL, e.g. http://127.0.0.1:8004",
    )
    search.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="append the results here (default docs/benchmarks/reference-search.md)",
    )
    search.set_defaults(handler=_bench_reference_search)

    customers = benches.add_parser(
        "customer",
        help="customer search latency and write throughput on a large table (issue 4)",
        description=(
            "Load N realistic customers with COPY into a fresh PostgreSQL database, then time "
            "search by name, phone, tax code and code against the same SQL sent raw, and "
            "create-draft and submit through the app against a bare FastAPI + asyncpg INSERT; "
            "print a table and append it to docs/benchmarks.md."
        ),
    )
    customers.add_argument(
        "--customers",
        type=_positive_int,
        default=1_000_000,
        metavar="N",
        help="customers to load (default 1000000)",
    )
    customers.add_argument(
        "--database-url-base",
        metavar="URL",
        help="server to create the benchmark database on (default $IMS_TEST_DATABASE_URL_BASE, "
        "else postgresql+asyncpg://postgres@127.0.0.1:5432)",
    )
    customers.add_argument(
        "--samples",
        type=_positive_int,
        default=400,
        metavar="N",
        help="timed searches per kind of query (default 400)",
    )
    customers.add_argument(
        "--writes",
        type=_positive_int,
        default=2000,
        metavar="N",
        help="timed create-draft, submit and floor requests each (default 2000)",
    )
    customers.add_argument(
        "--concurrency",
        type=_positive_int,
        default=16,
        metavar="N",
        help="requests in flight during the write measurements (default 16)",
    )
    customers.add_argument(
        "--keep", action="store_true", help="keep the benchmark database at the end"
    )
    customers.add_argument(
        "--note", metavar="TEXT", help="a remark to write with the results (e.g. why N is smaller)"
    )
    customers.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="append the results here (default docs/benchmarks.md)",
    )
    customers.set_defaults(handler=_bench_customer)

    ui = benches.add_parser(
        "ui",
        help="salesperson web UI page latency on a large table (issue 7; target p95 < 1 s)",
        description=(
            "Load N realistic customers with COPY into a fresh PostgreSQL database, then time "
            "each page of the customer service's /ui/ (lists, searches, filters, the "
            "live-search fragment, the customer page, the edit and new forms) through the app "
            "in process, each beside its JSON API equivalent; print a table and append it to "
            "docs/benchmarks.md."
        ),
    )
    ui.add_argument(
        "--customers",
        type=_positive_int,
        default=1_000_000,
        metavar="N",
        help="customers to load (default 1000000)",
    )
    ui.add_argument(
        "--database-url-base",
        metavar="URL",
        help="server to create the benchmark database on (default $IMS_TEST_DATABASE_URL_BASE, "
        "else postgresql+asyncpg://postgres@127.0.0.1:5432)",
    )
    ui.add_argument(
        "--database-name",
        default="ims_bench_ui",
        metavar="NAME",
        help="the benchmark database, dropped and created afresh (default ims_bench_ui)",
    )
    ui.add_argument(
        "--samples",
        type=_positive_int,
        default=400,
        metavar="N",
        help="timed loads of each page and of its API floor (default 400)",
    )
    ui.add_argument("--keep", action="store_true", help="keep the benchmark database at the end")
    ui.add_argument("--note", metavar="TEXT", help="a remark to write with the results")
    ui.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="append the results here (default docs/benchmarks.md)",
    )
    ui.set_defaults(handler=_bench_ui)
    add_stack_benches(benches)  # pipeline, replay, memory: against `ims up`

    poison = commands.add_parser(
        "poison",
        help="send poison messages to every consumed topic of the running stack (issue 8)",
        description=(
            "Against the stack of `ims up`: publish N malformed, truncated, wrongly typed and "
            "unknown-type messages to each consumed topic with valid events among them, wait, "
            "then report per topic, consumer and kind how many were dead-lettered, skipped "
            "(unknown types, CONTRACT.md §8) and applied, and the valid events' lag. Exits 1 "
            "if a poison message was neither dead-lettered nor skipped as its kind expects, "
            "or a valid event was not applied in time."
        ),
    )
    poison.add_argument(
        "--messages",
        type=_positive_int,
        default=1000,
        metavar="N",
        help="poison messages per topic (default 1000)",
    )
    poison.add_argument(
        "--topics",
        nargs="+",
        metavar="TOPIC",
        help="only these consumed topics (default: all four)",
    )
    poison.add_argument(
        "--timeout",
        type=_positive_int,
        default=120,
        metavar="SECONDS",
        help="how long the consumers get after the last message (default 120)",
    )
    poison.add_argument(
        "--max-lag",
        type=_positive_int,
        default=30,
        metavar="SECONDS",
        help="the longest a valid event may take to be applied (default 30)",
    )
    poison.set_defaults(handler=_poison)
    _add_fuzz(commands)
    _add_scan_logs(commands)
    add_chaos_parser(commands)
    return parser


def _add_fuzz(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from ims_cli.fuzz_stack import ROLE_USERS, SERVICES

    fuzz = commands.add_parser(
        "fuzz",
        help="fuzz every service's API from its OpenAPI document, as each role (issue 8)",
        description=(
            "Fresh databases on a PostgreSQL server, a MISA simulator and the four services "
            "in process; schemathesis sends each operation generated valid and invalid "
            "requests as each demo role and checks: no 5xx, documented status codes, content "
            "types and response schemas. Prints operations, cases and failures per service "
            "and role; exits 1 on any failure. The CI runs a small version (tests/fuzz)."
        ),
    )
    fuzz.add_argument(
        "--service", choices=SERVICES, action="append", help="only this service (repeatable)"
    )
    fuzz.add_argument(
        "--role", choices=list(ROLE_USERS), action="append", help="only this role (repeatable)"
    )
    fuzz.add_argument(
        "--examples",
        type=_positive_int,
        default=200,
        metavar="N",
        help="valid and invalid requests per operation, each (default 200)",
    )
    fuzz.add_argument(
        "--seed", type=int, default=None, metavar="N", help="the Hypothesis seed (default fixed)"
    )
    fuzz.add_argument(
        "--database-url-base",
        metavar="URL",
        help="server to create the databases on (default $IMS_TEST_DATABASE_URL_BASE, "
        "else postgresql+asyncpg://postgres@127.0.0.1:5432)",
    )
    fuzz.add_argument(
        "--database-prefix",
        default="ims_fuzz",
        metavar="NAME",
        help="databases NAME_<service>, dropped and created afresh (default ims_fuzz)",
    )
    fuzz.add_argument("--keep", action="store_true", help="keep the databases at the end")
    fuzz.set_defaults(handler=_fuzz)


def _up(args: argparse.Namespace) -> int:
    from ims_cli.up_cmd import run_up  # here: keeps `ims token` quick

    try:
        config = load_stack_config(os.environ, data_dir())
    except ConfigError as exc:
        print(f"ims up: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run_up(config))
    except KeyboardInterrupt:  # only before the signal handlers are in place
        return 130


def _token(args: argparse.Namespace) -> int:
    return run_token(args.username, ttl_seconds=args.ttl, data=data_dir())


def _bench_reference_search(args: argparse.Namespace) -> int:
    from ims_cli.bench_cmd import run_reference_search_bench  # here: keeps `ims token` quick

    return run_reference_search_bench(
        queries=args.queries, url=args.url, data=data_dir(), output=args.output
    )


def _bench_customer(args: argparse.Namespace) -> int:
    from ims_cli.bench_customer import (  # here: keeps `ims token` quick
        BenchOptions,
        default_database_url_base,
        run_customer_bench,
    )

    options = BenchOptions(
        customers=args.customers,
        database_url_base=args.database_url_base or default_database_url_base(),
        samples=args.samples,
        writes=args.writes,
        concurrency=args.concurrency,
        keep=args.keep,
        note=args.note,
    )
    return run_customer_bench(options, output=args.output)


def _bench_ui(args: argparse.Namespace) -> int:
    from ims_cli.bench_customer import default_database_url_base  # here: keeps `ims token` quick
    from ims_cli.bench_ui import UiBenchOptions, run_ui_bench

    options = UiBenchOptions(
        customers=args.customers,
        database_url_base=args.database_url_base or default_database_url_base(),
        database_name=args.database_name,
        samples=args.samples,
        keep=args.keep,
        note=args.note,
    )
    return run_ui_bench(options, output=args.output)


def _poison(args: argparse.Namespace) -> int:
    from ims_cli.poison import CONSUMED_TOPICS  # here: keeps `ims token` quick
    from ims_cli.poison_cmd import main_poison

    unknown = set(args.topics or ()) - set(CONSUMED_TOPICS)
    if unknown:
        print(f"ims poison: not a consumed topic: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    try:
        config = load_stack_config(os.environ, data_dir())
    except ConfigError as exc:
        print(f"ims poison: {exc}", file=sys.stderr)
        return 2
    return main_poison(
        config,
        messages=args.messages,
        topics=args.topics or CONSUMED_TOPICS,
        timeout_s=args.timeout,
        max_lag_s=args.max_lag,
    )


def _fuzz(args: argparse.Namespace) -> int:
    from ims_cli.bench_customer import default_database_url_base  # here: keeps `ims token` quick
    from ims_cli.fuzz_cmd import FuzzOptions, run_fuzz
    from ims_cli.fuzz_engine import DEFAULT_SEED
    from ims_cli.fuzz_stack import ROLE_USERS, SERVICES

    options = FuzzOptions(
        services=args.service or SERVICES,
        roles=args.role or tuple(ROLE_USERS),
        examples=args.examples,
        seed=DEFAULT_SEED if args.seed is None else args.seed,
        database_url_base=args.database_url_base or default_database_url_base(),
        database_prefix=args.database_prefix,
        keep=args.keep,
    )
    return run_fuzz(options)


def _add_scan_logs(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    scan = commands.add_parser(
        "scan-logs",
        help="find personal data (phones, e-mails, tax codes, known names) in log files",
        description=(
            "Scan log files for Vietnamese phone numbers, e-mail addresses, tax codes and "
            "any value listed in --known-file (accent- and case-insensitively). Prints each "
            "finding as FILE:LINE: KIND: the line with the data masked; exits 1 if any."
        ),
    )
    scan.add_argument("files", nargs="+", type=Path, metavar="FILE", help="log file to scan")
    scan.add_argument(
        "--known-file",
        type=Path,
        metavar="F",
        help="personal values to look for too, one a line (e.g. the customer names of a run)",
    )
    scan.set_defaults(handler=_scan_logs)


def _scan_logs(args: argparse.Namespace) -> int:
    from ims_cli.log_scan import run_scan_logs  # here: keeps `ims token` quick

    return run_scan_logs(args.files, known_file=args.known_file)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
