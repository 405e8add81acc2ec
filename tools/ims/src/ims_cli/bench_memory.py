"""`ims bench memory`: resident memory of each process of the running stack (issue 8).

Against `ims up`, each part is found by the port it listens on (the four services, the
MISA simulator, the broker, PostgreSQL's postmaster). A lone process is measured by its
RSS; a tree (PostgreSQL's backends) by the sum of its processes' PSS, since their RSS
would count the shared buffers once per backend that touched them. Sampled every
`--interval` seconds:

1. idle, for `--idle` seconds;
2. the soak: the pipeline workload (`ims_cli.bench_drive`: customers created, submitted,
   approved and MISA-linked at `--rate` per second) for `--soak` seconds.

Per part: idle, first, last and max under load, and the trend: the least-squares slope
over the soak after its first fifth (caches and pools fill up first), as MB per 10 min
and as a share of the value it started from. Above `--threshold` percent over the soak's
length it is flagged as growth.
"""

import asyncio
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO

import psutil

from ims_cli.bench_drive import Target, drive_for
from ims_cli.bench_report import (
    Machine,
    machine_info,
    machine_line,
    markdown_table,
    slope_per_s,
    text_table,
)
from ims_cli.bench_stack import StackBenchmark
from ims_cli.stack_config import StackConfig

RESULTS_HEADING = "# Results: `ims bench memory`"
#: The share of the soak left out of the trend: warm-up.
WARM_UP_SHARE = 0.2
MB = 1024 * 1024


def listening_pids(ports: Mapping[str, int]) -> dict[str, int]:
    """part -> pid of the process listening on its TCP port."""
    wanted = {port: part for part, port in ports.items()}
    found: dict[str, int] = {}
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status != psutil.CONN_LISTEN or conn.pid is None:
            continue
        part = wanted.get(conn.laddr.port)
        if part is not None:
            found.setdefault(part, conn.pid)
    return found


def tree_memory(pid: int) -> tuple[int, int]:
    """(bytes, processes) of `pid` and its descendants: the RSS of a lone process; for a
    tree (PostgreSQL's backends) the sum of PSS, which counts shared pages (its shared
    buffers) once overall instead of once per process. (0, 0) if it is gone."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0, 0
    if len(processes) == 1:
        try:
            return root.memory_info().rss, 1
        except psutil.Error:
            return 0, 0
    total = counted = 0
    for process in processes:
        try:
            total += process.memory_full_info().pss
            counted += 1
        except psutil.Error:
            continue  # exited meanwhile
    return total, counted


@dataclass
class Series:
    """One part's samples: (seconds since the start, MB)."""

    part: str
    pid: int
    #: The most processes counted in one sample (1: RSS; more: a tree, PSS summed).
    processes: int = 1
    idle: list[tuple[float, float]] = field(default_factory=list)
    load: list[tuple[float, float]] = field(default_factory=list)

    def trend(self) -> list[tuple[float, float]]:
        skip = int(len(self.load) * WARM_UP_SHARE)
        return self.load[skip:]

    @property
    def slope_mb_per_10min(self) -> float:
        return slope_per_s(self.trend()) * 600

    def growth_pct(self, soak_s: float) -> float:
        trend = self.trend()
        if len(trend) < 2 or trend[0][1] <= 0:
            return 0.0
        return slope_per_s(trend) * soak_s / trend[0][1] * 100


@dataclass(frozen=True, slots=True)
class MemoryOptions:
    idle_s: float = 30.0
    soak_s: float = 600.0
    interval_s: float = 10.0
    rate: float = 1.0
    threshold_pct: float = 10.0
    note: str | None = None

    def command(self) -> str:
        return (
            f"ims bench memory --idle {self.idle_s:g} --soak {self.soak_s:g} "
            f"--interval {self.interval_s:g} --rate {self.rate:g} --threshold {self.threshold_pct:g}"
        )


@dataclass(frozen=True, slots=True)
class MemoryReport:
    command: str
    machine: Machine
    options: MemoryOptions
    series: list[Series]
    soak_s: float
    linked: int
    note: str | None = None

    def flagged(self) -> list[Series]:
        return [s for s in self.series if self.growth(s) > self.options.threshold_pct]

    def growth(self, s: Series) -> float:
        return s.growth_pct(self.soak_s)


def stack_parts(config: StackConfig) -> dict[str, int]:
    """part -> port, for every process of the stack worth watching."""
    ports = {s.name: config.service_ports[s.name] for s in config.services}
    ports[config.simulator.name] = config.simulator_port
    ports["broker"] = config.kafka_port
    if config.embedded_postgres:
        ports["postgres"] = config.pg_port
    return ports


async def _sample(series: Sequence[Series], into: str, started: float) -> None:
    at = time.monotonic() - started
    for s in series:
        size, processes = tree_memory(s.pid)
        s.processes = max(s.processes, processes)
        getattr(s, into).append((at, size / MB))


async def _sample_for(
    series: Sequence[Series],
    into: str,
    seconds: float,
    interval: float,
    started: float,
    *,
    until: "asyncio.Task[int] | None" = None,
) -> None:
    """Every `interval` for `seconds`, or until `until` is done when given."""
    ends = time.monotonic() + seconds
    while True:
        await _sample(series, into, started)
        left = ends - time.monotonic() if until is None else interval
        if left <= 0 or (until is not None and until.done()):
            return
        await asyncio.sleep(min(interval, left))


async def run_memory(config: StackConfig, options: MemoryOptions, *, out: TextIO) -> MemoryReport:
    pids = listening_pids(stack_parts(config))
    missing = set(stack_parts(config)) - set(pids)
    if missing:
        raise RuntimeError(f"no process listens for: {', '.join(sorted(missing))}; is it up?")
    series = [Series(part, pid) for part, pid in pids.items()]
    started = time.monotonic()
    print(f"idle for {options.idle_s:g} s…", file=out, flush=True)
    await _sample_for(series, "idle", options.idle_s, options.interval_s, started)
    print(
        f"soak: {options.rate:g} customers/s through the pipeline for {options.soak_s:g} s…",
        file=out,
        flush=True,
    )
    target = Target.of(config)
    soak_started = time.monotonic()
    load = asyncio.create_task(drive_for(target, rate=options.rate, seconds=options.soak_s))
    # Sampled until the last customers of the load are through, past the soak's length.
    await _sample_for(series, "load", options.soak_s, options.interval_s, started, until=load)
    linked = await load
    return MemoryReport(
        command=options.command(),
        machine=machine_info(),
        options=options,
        series=series,
        soak_s=time.monotonic() - soak_started,
        linked=linked,
        note=options.note,
    )


# ---- the report ---------------------------------------------------------------------------

_HEADER = (
    *("process (measure)", "idle MB", "load first MB", "load last MB", "load max MB"),
    *("trend MB/10 min", "growth over the soak", "verdict"),
)


def _rows(report: MemoryReport) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for s in report.series:
        growth = report.growth(s)
        loaded = [mb for _, mb in s.load] or [0.0]
        rows.append(
            (
                f"{s.part} (pid {s.pid}"
                + (f", PSS of {s.processes} processes)" if s.processes > 1 else ", RSS)"),
                f"{statistics.fmean(mb for _, mb in s.idle):.0f}" if s.idle else "—",
                f"{loaded[0]:.0f}",
                f"{loaded[-1]:.0f}",
                f"{max(loaded):.0f}",
                f"{s.slope_mb_per_10min:+.1f}",
                f"{growth:+.1f}%",
                "GROWS" if growth > report.options.threshold_pct else "flat",
            )
        )
    return rows


def summary_lines(report: MemoryReport) -> list[str]:
    samples = len(report.series[0].load) if report.series else 0
    flagged = report.flagged()
    total_idle = sum(statistics.fmean(mb for _, mb in s.idle) for s in report.series if s.idle)
    total_max = sum(max((mb for _, mb in s.load), default=0.0) for s in report.series)
    return [
        f"soak: {report.soak_s:.0f} s at {report.options.rate:g} customers/s, "
        f"{report.linked:,} customers MISA-linked, {samples} samples per process",
        f"whole stack: {total_idle:,.0f} MB idle, {total_max:,.0f} MB at most under load",
        "growth above the threshold "
        f"({report.options.threshold_pct:g}% over the soak, trend after its first "
        f"{WARM_UP_SHARE:.0%}): " + (", ".join(s.part for s in flagged) if flagged else "none"),
    ]


def render_table(report: MemoryReport) -> str:
    lines = text_table(_HEADER, "lrrrrrrl", _rows(report))
    return "\n".join([*lines, "", *summary_lines(report)])


def render_markdown(report: MemoryReport) -> str:
    o = report.options
    lines = [
        f"## Memory, soak {report.soak_s / 60:.0f} min, {report.machine.date}",
        "",
        machine_line(report.machine),
        f"Command: `{report.command}`.",
    ]
    if report.note:
        lines += ["", report.note]
    lines += [
        "",
        "Memory of each process of `ims up` with its children (psutil): the RSS of a lone "
        "process; for a tree (PostgreSQL's postmaster and backends) the sum of PSS, so "
        f"that its shared buffers count once, not once per backend. Every "
        f"{o.interval_s:g} s: idle for {o.idle_s:g} s (the mean), then under the pipeline "
        f"workload at {o.rate:g} customers/s (created, submitted, approved, MISA-linked) for "
        f"the soak. Trend: least-squares slope after the soak's first "
        f"{WARM_UP_SHARE:.0%}; growth: that slope over the soak's length, as a share of "
        "where it started.",
        "",
        *markdown_table(_HEADER, "lrrrrrrl", _rows(report)),
        "",
        *(f"- {line}" for line in summary_lines(report)),
    ]
    return "\n".join(lines) + "\n"


BENCHMARK: StackBenchmark[MemoryOptions, MemoryReport] = StackBenchmark(
    command="ims bench memory",
    run=lambda config, options, out: run_memory(config, options, out=out),
    table=render_table,
    section=render_markdown,
    heading=RESULTS_HEADING,
)
main_memory = BENCHMARK.main
