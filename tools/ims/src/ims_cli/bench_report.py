"""What every `ims bench` shares: statistics, the machine line, tables, the results file.

The benchmarks (reference-search, customer, ui, pipeline, replay, memory) print a table
and add a section, with the machine it ran on, to their results file; the helpers here
keep that the same everywhere.
"""

import asyncio
import math
import os
import platform
import statistics
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO


def percentile(samples: Sequence[float], pct: float) -> float:
    """The `pct`-th percentile, interpolating between the two nearest ranks (as numpy's
    default does)."""
    if not samples:
        raise ValueError("no samples")
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile {pct} is outside 0..100")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class Stats:
    """Latencies in milliseconds."""

    n: int
    p50: float
    p95: float
    p99: float
    mean: float
    max: float


def summarize(samples_ms: Sequence[float]) -> Stats:
    return Stats(
        n=len(samples_ms),
        p50=percentile(samples_ms, 50),
        p95=percentile(samples_ms, 95),
        p99=percentile(samples_ms, 99),
        mean=statistics.fmean(samples_ms),
        max=max(samples_ms),
    )


def slope_per_s(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (t, value) points, value units per second (0 if flat or <2)."""
    if len(points) < 2:
        return 0.0
    ts = [t for t, _ in points]
    vs = [v for _, v in points]
    t_mean, v_mean = statistics.fmean(ts), statistics.fmean(vs)
    spread = sum((t - t_mean) ** 2 for t in ts)
    if spread == 0:
        return 0.0
    return sum((t - t_mean) * (v - v_mean) for t, v in points) / spread


@dataclass(frozen=True, slots=True)
class Machine:
    cpu: str
    cpus: int
    memory_gib: float | None
    python: str
    system: str
    date: str


def cpu_model(cpuinfo: str) -> str | None:
    """The first 'model name' of /proc/cpuinfo."""
    for line in cpuinfo.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() == "model name" and value.strip():
            return value.strip()
    return None


def mem_total_gib(meminfo: str) -> float | None:
    """MemTotal of /proc/meminfo, in GiB."""
    for line in meminfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "MemTotal":
            parts = value.split()
            if parts and parts[0].isdigit():
                return int(parts[0]) / (1024 * 1024)  # the kernel reports kB
    return None


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def machine_info(now: datetime | None = None) -> Machine:
    try:
        # What `nproc` reports: the CPUs this process may run on.
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 0
    return Machine(
        cpu=cpu_model(_read("/proc/cpuinfo")) or platform.processor() or "unknown CPU",
        cpus=cpus,
        memory_gib=mem_total_gib(_read("/proc/meminfo")),
        python=platform.python_version(),
        system=f"{platform.system()} {platform.release()}",
        date=(now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"),
    )


def machine_line(machine: Machine, extra: str | None = None) -> str:
    """'Machine: <cpu>, 2 CPUs (nproc), 23.5 GiB, Python 3.12.1, Linux …[; extra].'"""
    m = machine
    memory = f"{m.memory_gib:.1f} GiB" if m.memory_gib is not None else "unknown memory"
    line = f"Machine: {m.cpu}, {m.cpus} CPUs (nproc), {memory}, Python {m.python}, {m.system}"
    return line + (f"; {extra}." if extra else ".")


def markdown_table(
    header: Sequence[str], align: str, rows: Iterable[Sequence[object]]
) -> list[str]:
    """A GitHub table: `align` has one letter per column, 'l' (---) or 'r' (---:)."""
    if len(align) != len(header):
        raise ValueError("one alignment letter per column")
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def text_table(header: Sequence[str], align: str, rows: Iterable[Sequence[object]]) -> list[str]:
    """The same table for the console, columns padded to their widest cell."""
    if len(align) != len(header):
        raise ValueError("one alignment letter per column")
    cells = [list(header), *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return [
        "  ".join(
            cell.rjust(w) if a == "r" else cell.ljust(w)
            for cell, w, a in zip(row, widths, align, strict=True)
        ).rstrip()
        for row in cells
    ]


def append_section(path: Path, heading: str, section: str, *, header: str) -> None:
    """Add `section` at the end of the part of the results file under `heading` (a
    ``# Results: …`` line, added at the end of the file the first time), so that each
    benchmark's runs stay together whichever ran last. A new file starts with `header`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if not text.strip():
        text = header
    lines = text.splitlines(keepends=True)
    if heading + "\n" not in lines:
        lines += ["\n", heading + "\n"]
    start = lines.index(heading + "\n") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("# ")), len(lines))
    before = "".join(lines[:end]).rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    after = "".join(lines[end:])
    path.write_text(before + ("\n" + after if after else ""), encoding="utf-8")


def publish(
    *, table: str, section: str, heading: str, path: Path, header: str, out: TextIO
) -> None:
    """Print the console table, add the markdown section to the results file, say where."""
    print(table, file=out)
    append_section(path, heading, section, header=header)
    print(f"results appended to {path}", file=out)


def run_and_publish[R](
    command: str,
    benchmark: Coroutine[Any, Any, R],
    *,
    table: Callable[[R], str],
    section: Callable[[R], str],
    heading: str,
    path: Path,
    header: str,
    out: TextIO,
    err: TextIO,
) -> R | None:
    """Run a benchmark against the stack and publish its report; None (said on `err`) when
    the stack could not be reached or the run could not finish."""
    try:
        report = asyncio.run(benchmark)
    except (OSError, RuntimeError) as exc:
        print(f"{command}: {exc}", file=err)
        return None
    publish(
        table=table(report),
        section=section(report),
        heading=heading,
        path=path,
        header=header,
        out=out,
    )
    return report
