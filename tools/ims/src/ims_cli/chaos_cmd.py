"""`ims chaos`: the whole stack under a workload while its parts are killed (issue 8).

1. Start an own `ims up` (chaos_stack) on free ports with a fresh data folder.
2. Arm MISA faults in the simulator (a share of calls: 500, timeout, 429, expired token),
   start the clients (chaos_workload) and the fault injector (chaos_faults) together.
3. When the workload is done and every fault injected, disarm MISA's faults and wait for
   quiescence: outboxes drained, nothing pending, every consumer at the end of its topics.
4. Check the invariants (chaos_invariants) and scan everything the stack printed for
   personal data (log_scan); print the report; exit 0 only if every invariant holds.
"""

import asyncio
import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import asyncpg
import httpx

from ims_cli.chaos_faults import FaultInjector, InjectedFault, plan_faults
from ims_cli.chaos_invariants import (
    ChaosState,
    Invariant,
    check,
    collect_state,
    describe_state,
)
from ims_cli.chaos_stack import ChaosStack, start_chaos_stack
from ims_cli.chaos_workload import (
    CS_USER,
    SALES_USERS,
    CustomerSpec,
    Outcome,
    Workload,
    WorkloadStats,
    customer_spec,
    run_workload,
)
from shared.auth.demo import DEMO_USERS

DEFAULT_CUSTOMERS = 2000
DEFAULT_CONCURRENCY = 8
DEFAULT_TIMEOUT_S = 3600
MISA_FAULT_RATE = 0.2
MISA_FAULT_MODES = ("http_500", "timeout", "rate_limit", "expired_token")
_QUIET_POLL_S = 2.0


@dataclass(frozen=True, slots=True)
class ChaosOptions:
    customers: int = DEFAULT_CUSTOMERS
    concurrency: int = DEFAULT_CONCURRENCY
    seed: int = 1
    timeout_s: float = DEFAULT_TIMEOUT_S
    kills_per_service: int = 3
    broker_pause_s: float = 20.0
    keep_data: bool = False
    data_dir: Path | None = None


@dataclass
class ChaosReport:
    options: ChaosOptions
    outcomes: list[Outcome] = field(default_factory=list)
    stats: WorkloadStats = field(default_factory=WorkloadStats)
    faults: list[InjectedFault] = field(default_factory=list)
    misa_faults: dict[str, int] = field(default_factory=dict)
    invariants: list[Invariant] = field(default_factory=list)
    state_counts: dict[str, object] = field(default_factory=dict)
    quiescence_s: float | None = None
    startup_s: float = 0.0
    total_s: float = 0.0
    topics_recreated: list[str] = field(default_factory=list)
    data_dir: Path | None = None

    @property
    def ok(self) -> bool:
        return bool(self.invariants) and all(i.ok for i in self.invariants)


# ---- personal data ---------------------------------------------------------------------


def known_personal_values(specs: list[CustomerSpec]) -> list[str]:
    """Every personal value the workload sent, in each form a log could carry it; minus
    the demo employees' names (staff, in the tokens, not customers' data)."""
    staff = {u.name for u in DEMO_USERS.values()}
    values: set[str] = set()
    for spec in specs:
        for value in spec.personal_values():
            values.add(value)
        phone = str(spec.payload["phone"]).replace(" ", "")
        values.update({phone, "+84" + phone[1:]})
    return sorted(values - staff)


def personal_data_invariant(lines: list[str], known: list[str]) -> Invariant:
    from ims_cli.log_scan import find_personal_data

    findings = find_personal_data(lines, known)
    return Invariant.of(
        "no personal data in the stack's log",
        f"{len({f.line_no for f in findings})} of {len(lines)} lines",
        [f"line {f.line_no}: {f.kind}: {f.excerpt}" for f in findings],
    )


# ---- quiescence ------------------------------------------------------------------------


async def _count(dsn: str, query: str) -> int:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return int(await conn.fetchval(query) or 0)
    finally:
        await conn.close()


async def _busy(stack: ChaosStack) -> list[str]:
    """What still moves, from the databases (cheap); empty when nothing does."""
    busy = []
    for service in ("customer", "approval", "misa_sync", "reference"):
        n = await _count(
            stack.database_dsn(service), "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        )
        if n:
            busy.append(f"{service} outbox {n}")
    checks = (
        ("approval", "SELECT count(*) FROM reviews WHERE status = 'pending'", "pending reviews"),
        (
            "customer",
            "SELECT count(*) FROM customers WHERE status = 'pending_approval'",
            "pending customers",
        ),
        ("misa_sync", "SELECT count(*) FROM misa_links WHERE state = 'pending'", "pending links"),
        (
            "customer",
            "SELECT count(*) FROM customers WHERE status = 'active' AND misa_code IS NULL",
            "active customers without misa_code",
        ),
    )
    for service, query, what in checks:
        n = await _count(stack.database_dsn(service), query)
        if n:
            busy.append(f"{n} {what}")
    return busy


async def wait_for_quiescence(
    stack: ChaosStack, partitions: int, deadline: float, log: Callable[[str], None]
) -> ChaosState:
    """Poll until nothing moves and every consumer is at the end of its topics."""
    last = ""
    while True:
        try:
            busy = await _busy(stack)
        except (OSError, asyncpg.PostgresError) as exc:
            busy = [f"database: {exc}"]
        if not busy:
            state = await _collect(stack, partitions)
            lagging = next(i for i in check(state, []) if i.name.startswith("nothing stuck"))
            if lagging.ok or time.monotonic() > deadline:
                return state
            busy = list(lagging.problems)
        if time.monotonic() > deadline:
            log(f"chaos: quiescence deadline passed; still: {'; '.join(busy)}")
            return await _collect(stack, partitions)
        now = "; ".join(busy)
        if now != last:
            log(f"chaos: waiting for quiescence: {now}")
            last = now
        await asyncio.sleep(_QUIET_POLL_S)


async def _collect(stack: ChaosStack, partitions: int) -> ChaosState:
    dsns = {s: stack.database_dsn(s) for s in ("customer", "approval", "misa_sync", "reference")}
    return await collect_state(
        dsns, stack.config.simulator_url, stack.config.kafka_bootstrap_servers, partitions
    )


# ---- the run ---------------------------------------------------------------------------


async def _wait_reference_replica(stack: ChaosStack, timeout_s: float = 120) -> None:
    """Until the customer service's replica of reference's lists stops growing."""
    dsn = stack.database_dsn("customer")
    deadline = time.monotonic() + timeout_s
    counts: list[int] = []
    while time.monotonic() < deadline:
        counts.append(await _count(dsn, "SELECT count(*) FROM ref_items"))
        if len(counts) >= 3 and counts[-1] > 0 and counts[-1] == counts[-3]:
            return
        await asyncio.sleep(1)


async def _arm_misa_faults(stack: ChaosStack, seed: int, rate: float) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            f"{stack.config.simulator_url}/_sim/faults/random",
            json={"rate": rate, "modes": list(MISA_FAULT_MODES), "seed": seed},
        )
        response.raise_for_status()


async def _misa_faults_injected(stack: ChaosStack) -> dict[str, int]:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{stack.config.simulator_url}/_sim/faults/random")
        injected: dict[str, int] = response.json()["injected"]
        return injected


async def run_chaos(options: ChaosOptions, log: Callable[[str], None]) -> ChaosReport:
    report = ChaosReport(options)
    started = time.monotonic()
    deadline = started + options.timeout_s
    data_dir = options.data_dir or Path(tempfile.mkdtemp(prefix="ims-chaos-"))
    report.data_dir = data_dir
    specs = [customer_spec(i, options.seed) for i in range(options.customers)]
    log(f"chaos: starting ims up in {data_dir}")
    stack = await start_chaos_stack(data_dir)
    report.startup_s = time.monotonic() - started
    try:
        log(f"chaos: stack ready in {report.startup_s:.1f} s")
        await _wait_reference_replica(stack)
        tokens = {u: stack.token(u) for u in (*SALES_USERS, CS_USER)}
        workload = Workload(
            base_urls={"customer": stack.url("customer"), "approval": stack.url("approval")},
            tokens=tokens,
            stats=report.stats,
            deadline=deadline,
        )
        plan = plan_faults(options.seed, kills_per_service=options.kills_per_service)
        injector = FaultInjector(stack, plan, pause_s=options.broker_pause_s, log=log)
        await _arm_misa_faults(stack, options.seed, MISA_FAULT_RATE)
        step = max(1, options.customers // 10)

        def progress(done: int) -> None:
            injector.set_progress(done / options.customers)
            if done % step == 0:
                log(f"chaos: {done} of {options.customers} customers through the workload")

        faults_task = asyncio.create_task(injector.run())
        report.outcomes = await run_workload(
            workload, specs, concurrency=options.concurrency, on_progress=progress
        )
        injector.set_progress(1.0)
        await faults_task
        report.faults = injector.injected
        report.misa_faults = await _misa_faults_injected(stack)
        await _arm_misa_faults(stack, options.seed, 0.0)
        log("chaos: workload and faults done; waiting for quiescence")
        quiet_from = time.monotonic()
        state = await wait_for_quiescence(
            stack, stack.config.kafka_partitions, max(deadline, quiet_from + 120), log
        )
        report.quiescence_s = time.monotonic() - quiet_from
        submitted = [str(o.customer_id) for o in report.outcomes if o.customer_id is not None]
        report.invariants = check(state, submitted)
        report.state_counts = describe_state(state)
        report.topics_recreated = [line for line in stack.lines if "topics re-created" in line]
    finally:
        await stack.stop()
    report.invariants.append(personal_data_invariant(stack.lines, known_personal_values(specs)))
    report.total_s = time.monotonic() - started
    if report.ok and not options.keep_data and options.data_dir is None:
        shutil.rmtree(data_dir, ignore_errors=True)  # a failed run's is kept for a look
    return report


# ---- the report ------------------------------------------------------------------------


def print_report(report: ChaosReport, out: TextIO) -> None:
    o = report.options
    stats = report.stats
    finished = [x for x in report.outcomes if x.error is None]
    failed = [x for x in report.outcomes if x.error is not None]
    print("", file=out)
    print(f"ims chaos: {o.customers} customers, {o.concurrency} clients, seed {o.seed}", file=out)
    print(
        f"workload: {len(finished)} created, submitted and approved in {stats.elapsed_s:.1f} s "
        f"({len(finished) / stats.elapsed_s:.1f} customers/s); {len(failed)} gave up",
        file=out,
    )
    for x in failed[:5]:
        print(f"  gave up on customer {x.spec.index}: {x.error}", file=out)
    retries = ", ".join(f"{k} {n}" for k, n in stats.retries.most_common())
    print(f"  requests {sum(stats.requests.values())}; retried: {retries or 'none'}", file=out)
    print(
        f"  lost creates found again by tax code: {stats.creates_found_by_lookup}; "
        f"409s resolved: {dict(stats.conflicts_resolved) or 0}",
        file=out,
    )
    print(
        "faults injected (time into the workload; recovered: the killed service, or for "
        "the broker and PostgreSQL every service, ready again):",
        file=out,
    )
    for f in report.faults:
        rec = f"recovered in {f.recovery_s:.1f} s" if f.recovery_s is not None else "NOT recovered"
        note = f" ({f.note})" if f.note else ""
        print(f"  {f.at_s:7.1f} s  {f.planned.describe():<22} pid {f.pid}  {rec}{note}", file=out)
    misa = ", ".join(f"{k} {n}" for k, n in sorted(report.misa_faults.items()))
    print(
        f"  MISA faults ({MISA_FAULT_RATE:.0%} of calls): {sum(report.misa_faults.values())} "
        f"({misa or 'none'})",
        file=out,
    )
    for line in report.topics_recreated:
        print(f"  {line.strip()}", file=out)
    quiet = f"{report.quiescence_s:.1f} s" if report.quiescence_s is not None else "-"
    print(
        f"quiescence after {quiet}; stack start {report.startup_s:.1f} s; "
        f"whole run {report.total_s:.1f} s",
        file=out,
    )
    print("invariants:", file=out)
    for inv in report.invariants:
        print(f"  {'✓' if inv.ok else '✗'} {inv.name}: {inv.count}", file=out)
        for problem in inv.problems:
            print(f"      {problem}", file=out)
        if inv.more:
            print(f"      … and {inv.more} more", file=out)
    for key, value in report.state_counts.items():
        print(f"  ({key}: {value})", file=out)
    if report.data_dir is not None and report.data_dir.exists():
        print(f"data and stack.log kept in {report.data_dir}", file=out)
    print(f"result: {'ok' if report.ok else 'FAILED'}", file=out)


def main_chaos(options: ChaosOptions, out: TextIO = sys.stdout) -> int:
    def log(text: str) -> None:
        print(text, file=out, flush=True)

    try:
        report = asyncio.run(run_chaos(options, log))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        with contextlib.suppress(Exception):
            log(f"ims chaos: {type(exc).__name__}: {exc}")
        return 1
    print_report(report, out)
    out.flush()
    return 0 if report.ok else 1
