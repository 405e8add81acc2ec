"""`ims bench pipeline`: create + submit → approved → MISA-linked through the running stack.

Against `ims up` (its ports and data folder from the same environment as `ims up`):

1. a steady open-loop rate (`--rate`, `--duration`): customers arrive on a schedule
   (`ims_cli.bench_drive`), and each stage's latency is reported, p50/p95/p99:
   create + submit (from the scheduled arrival, so queueing counts), submit → review
   visible in approval's API, the approve request, approve → customer active,
   active → MISA-linked, and the whole way;
2. a ramp (`--ramp`): steps of `--step-seconds` at rates doubling from `--start-rate`;
   a rate is **held** when every customer got through, the achieved throughput is
   ≥ 95% of the offered rate and p99 is bounded (the last third's p99 at most twice the
   first third's plus a second, and under `--p99-bound`). It is judged twice: through
   activation (the event pipeline and the services), and through the MISA link (which
   also meets misa_sync's client-side rate limit towards MISA);
3. beside every rate, the floor: raw aiokafka produce → consume latency on the same
   broker, the same number of records at the same rate, acks=all and the services'
   fetch wait — what the submit → review stage costs at the least.

Figures are printed and added to ``docs/benchmarks.md``; targets are judged here, never
in timed tests.
"""

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ims_cli.bench_drive import Target, Trace, drive, run_drive
from ims_cli.bench_report import (
    Machine,
    Stats,
    machine_info,
    machine_line,
    markdown_table,
    summarize,
    text_table,
)
from ims_cli.bench_stack import StackBenchmark
from ims_cli.stack_config import StackConfig

RESULTS_HEADING = "# Results: `ims bench pipeline`"
HELD_SHARE = 0.95
FLOOR_TOPIC = "ims.bench.floor"
#: The services' consumer settings (shared.config): the floor reads as they do.
FETCH_MAX_WAIT_MS = 10

STAGES: tuple[tuple[str, Callable[[Trace], float | None]], ...] = (
    ("create + submit", lambda t: _gap(t.scheduled, t.submitted)),
    ("submit → review visible", lambda t: _gap(t.submitted, t.review_seen)),
    ("approve request", lambda t: _gap(t.review_seen, t.approved)),
    ("approve → active", lambda t: _gap(t.approved, t.active)),
    ("active → MISA-linked", lambda t: _gap(t.active, t.linked)),
    ("whole way (arrival → linked)", lambda t: _gap(t.scheduled, t.linked)),
)


def _gap(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, end - start) * 1000


def stage_stats(traces: Sequence[Trace]) -> list[tuple[str, Stats | None]]:
    out: list[tuple[str, Stats | None]] = []
    for name, gap in STAGES:
        samples = [v for t in traces if (v := gap(t)) is not None]
        out.append((name, summarize(samples) if samples else None))
    return out


@dataclass(frozen=True, slots=True)
class Verdict:
    done: int
    achieved: float
    p99_ms: float | None
    held: bool
    why: str


def judge(
    traces: Sequence[Trace], rate: float, end: Callable[[Trace], float | None], p99_bound_s: float
) -> Verdict:
    """Held: all done, throughput ≥ 95% of offered, p99 bounded (see the module)."""
    total = len(traces)
    ends = sorted(e for t in traces if (e := end(t)) is not None)
    latencies = [(e - t.scheduled) * 1000 for t in traces if (e := end(t)) is not None]
    done = len(ends)
    if done < 2:
        return Verdict(done, 0.0, None, False, f"{done} of {total} got through")
    # Completions spread as arrivals did when the stack keeps up: (n-1) gaps of 1/rate.
    achieved = (done - 1) / max(ends[-1] - ends[0], 1e-9)
    achieved = min(achieved, rate * 10)
    p99 = summarize(latencies).p99
    third = max(1, total // 3)
    first = [v for t in traces[:third] if (e := end(t)) is not None for v in [e - t.scheduled]]
    last = [v for t in traces[-third:] if (e := end(t)) is not None for v in [e - t.scheduled]]
    growing = bool(first and last) and (summarize(last).p99 > 2 * summarize(first).p99 + 1.0)
    problems = []
    if done < total:
        problems.append(f"{total - done} of {total} did not get through")
    if achieved < HELD_SHARE * rate:
        problems.append(f"throughput {achieved:.2f}/s < {HELD_SHARE:.0%} of {rate:g}/s")
    if p99 > p99_bound_s * 1000:
        problems.append(f"p99 {p99 / 1000:.1f} s > {p99_bound_s:g} s")
    if growing:
        problems.append("latency kept growing (last third's p99 > 2× first third's + 1 s)")
    return Verdict(done, achieved, p99, not problems, "; ".join(problems) or "held")


async def ensure_floor_topic(bootstrap: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if FLOOR_TOPIC not in await admin.list_topics():
            await admin.create_topics([NewTopic(FLOOR_TOPIC, partitions, 1)])
    finally:
        await admin.close()


async def kafka_floor(target: Target, *, rate: float, count: int) -> Stats:
    """Raw aiokafka: `count` records at `rate`, each timed from send() to its fetch."""
    await ensure_floor_topic(target.bootstrap_servers, target.partitions)
    producer = AIOKafkaProducer(bootstrap_servers=target.bootstrap_servers, acks="all", linger_ms=5)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=target.bootstrap_servers,
        enable_auto_commit=False,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )
    await producer.start()
    await consumer.start()
    run = uuid.uuid4().bytes[:8]
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    try:
        for _ in range(50):
            partitions = consumer.partitions_for_topic(FLOOR_TOPIC)
            if partitions:
                break
            await consumer.topics()  # refreshes the metadata
            await asyncio.sleep(0.1)
        tps = [TopicPartition(FLOOR_TOPIC, p) for p in sorted(partitions or ())]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)

        async def read() -> None:
            while len(latencies) < count:
                batch = await consumer.getmany(timeout_ms=200)
                now = time.monotonic()
                for records in batch.values():
                    for r in records:
                        if r.value is None or r.value[:8] != run:
                            continue
                        i = int.from_bytes(r.value[8:16], "big")
                        if i in sent_at:
                            latencies.append((now - sent_at.pop(i)) * 1000)

        reader = asyncio.create_task(read())
        t0 = time.monotonic() + 0.1
        for i in range(count):
            await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
            sent_at[i] = time.monotonic()
            await producer.send(
                FLOOR_TOPIC, run + i.to_bytes(8, "big") + bytes(600), key=str(i).encode()
            )
        await asyncio.wait_for(reader, timeout=60)
    finally:
        await producer.stop()
        await consumer.stop()
    return summarize(latencies)


# ---- the run ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    rate: float
    seconds: float
    traces: list[Trace]
    floor: Stats
    to_active: Verdict
    to_linked: Verdict
    #: The period of each watching loop ("reviews", "customers"), ms.
    polls: dict[str, Stats] = field(default_factory=dict)

    @property
    def errors(self) -> list[str]:
        return [t.error for t in self.traces if t.error]


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    rate: float = 1.0
    duration_s: float = 60.0
    ramp: bool = True
    start_rate: float = 1.0
    max_rate: float = 64.0
    step_s: float = 30.0
    p99_bound_s: float = 10.0
    timeout_s: float = 120.0
    note: str | None = None

    def command(self) -> str:
        ramp = (
            f" --start-rate {self.start_rate:g} --max-rate {self.max_rate:g}"
            f" --step-seconds {self.step_s:g}"
            if self.ramp
            else " --no-ramp"
        )
        return f"ims bench pipeline --rate {self.rate:g} --duration {self.duration_s:g}{ramp}"


@dataclass(frozen=True, slots=True)
class PipelineReport:
    command: str
    machine: Machine
    steady: Step
    ramp: list[Step]
    note: str | None = None

    def highest(self, which: str) -> float | None:
        held = [s.rate for s in self.ramp if getattr(s, which).held]
        return max(held) if held else None


NOT_FOLLOWED = Verdict(0, 0.0, None, False, "not followed (a lower rate was not held)")


async def run_step(
    target: Target,
    rate: float,
    seconds: float,
    options: PipelineOptions,
    *,
    out: TextIO,
    until: str = "linked",
) -> Step:
    """One rate; `until="active"` stops following customers once active (when the MISA
    link was not held at a lower rate, waiting for it would only wait for the backlog)."""
    count = max(2, round(rate * seconds))
    print(f"  {rate:g}/s for {seconds:g} s ({count} customers)…", file=out, flush=True)
    run = await run_drive(target, rate=rate, count=count, timeout_s=options.timeout_s, until=until)
    traces = run.traces
    floor = await kafka_floor(target, rate=rate, count=count)
    step = Step(
        rate=rate,
        seconds=seconds,
        traces=traces,
        floor=floor,
        polls={name: summarize(ms) for name, ms in run.poll_ms.items() if ms},
        to_active=judge(traces, rate, lambda t: t.active, options.p99_bound_s),
        to_linked=(
            judge(traces, rate, lambda t: t.linked, options.p99_bound_s)
            if until == "linked"
            else NOT_FOLLOWED
        ),
    )
    print(
        f"    active: {step.to_active.why}; linked: {step.to_linked.why}",
        file=out,
        flush=True,
    )
    return step


async def warm_up(target: Target, *, out: TextIO) -> None:
    """Two customers the whole way first: caches, connections, the reference replica."""
    print("warming up (2 customers the whole way)…", file=out, flush=True)
    traces = await drive(target, rate=2, count=2, timeout_s=120)
    failed = [t.error for t in traces if t.error]
    if failed:
        raise RuntimeError(f"the stack did not take a customer the whole way: {failed[0]}")


async def run_pipeline(
    config: StackConfig, options: PipelineOptions, *, out: TextIO
) -> PipelineReport:
    print(
        f"ims bench pipeline against {config.service_url(config.services[0])} "
        f"(broker {config.kafka_bootstrap_servers})",
        file=out,
        flush=True,
    )
    target = Target.of(config)
    await warm_up(target, out=out)
    print(f"steady rate {options.rate:g}/s for {options.duration_s:g} s:", file=out)
    steady = await run_step(target, options.rate, options.duration_s, options, out=out)
    ramp: list[Step] = []
    if options.ramp:
        print("ramp:", file=out)
        rate = options.start_rate
        until = "linked"
        while rate <= options.max_rate:
            step = await run_step(target, rate, options.step_s, options, out=out, until=until)
            ramp.append(step)
            if not step.to_linked.held:
                until = "active"
            if not step.to_active.held:
                break
            rate *= 2
    return PipelineReport(
        command=options.command(),
        machine=machine_info(),
        steady=steady,
        ramp=ramp,
        note=options.note,
    )


# ---- the report ---------------------------------------------------------------------------


def _ms(stats: Stats | None) -> tuple[str, str, str, str]:
    if stats is None:
        return ("0", "—", "—", "—")
    return (str(stats.n), f"{stats.p50:.0f}", f"{stats.p95:.0f}", f"{stats.p99:.0f}")


def _stage_rows(step: Step) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [(name, *_ms(stats)) for name, stats in stage_stats(step.traces)]
    rows.append(("floor: raw aiokafka produce → consume", *_ms(step.floor)))
    return rows


def _ramp_rows(report: PipelineReport) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for s in report.ramp:
        stages = dict(stage_stats(s.traces))
        review = stages["submit → review visible"]
        rows.append(
            (
                f"{s.rate:g}",
                str(len(s.traces)),
                f"{s.to_active.achieved:.2f}",
                f"{s.to_active.p99_ms / 1000:.2f}" if s.to_active.p99_ms is not None else "—",
                f"{review.p99:.0f}" if review else "—",
                f"{s.floor.p99:.0f}",
                "held" if s.to_active.held else f"NOT held: {s.to_active.why}",
                f"{s.to_linked.achieved:.2f}",
                f"{s.to_linked.p99_ms / 1000:.2f}" if s.to_linked.p99_ms is not None else "—",
                "held" if s.to_linked.held else f"NOT held: {s.to_linked.why}",
            )
        )
    return rows


_STAGE_HEADER = ("stage", "n", "p50 ms", "p95 ms", "p99 ms")
_RAMP_HEADER = (
    *("offered /s", "customers", "active /s", "→active p99 s", "review p99 ms"),
    *("floor p99 ms", "through activation", "linked /s", "→linked p99 s", "through MISA link"),
)


def summary_lines(report: PipelineReport) -> list[str]:
    steady = report.steady
    whole = dict(stage_stats(steady.traces))["whole way (arrival → linked)"]
    review = dict(stage_stats(steady.traces))["submit → review visible"]
    lines = [
        f"steady {steady.rate:g}/s: {steady.to_linked.done} of {len(steady.traces)} customers "
        f"MISA-linked; whole way p50 {whole.p50 / 1000:.2f} s, p99 {whole.p99 / 1000:.2f} s"
        if whole
        else f"steady {steady.rate:g}/s: no customer reached MISA ({steady.to_linked.why})",
    ]
    if review:
        lines.append(
            f"event pipeline (submit → review visible) p50 {review.p50:.0f} ms, p99 "
            f"{review.p99:.0f} ms; raw aiokafka floor p50 {steady.floor.p50:.0f} ms, p99 "
            f"{steady.floor.p99:.0f} ms at the same rate"
        )
    if report.ramp:
        active, linked = report.highest("to_active"), report.highest("to_linked")
        lines.append(
            "highest rate held through activation: "
            + (f"{active:g}/s" if active else "none of the rates tried")
            + "; through the MISA link: "
            + (f"{linked:g}/s" if linked else "none of the rates tried")
            + f" (held: every customer through, throughput ≥ {HELD_SHARE:.0%} of offered, "
            "p99 bounded)"
        )
    errors = [e for s in (report.steady, *report.ramp) for e in s.errors]
    if errors:
        lines.append(f"customers that failed: {len(errors)}, e.g. {errors[0]}")
    return lines


def render_table(report: PipelineReport) -> str:
    lines = [f"steady rate {report.steady.rate:g}/s, {len(report.steady.traces)} customers:"]
    lines += text_table(_STAGE_HEADER, "lrrrr", _stage_rows(report.steady))
    lines.append(f"stage ends seen by: {_poll_text(report.steady)}")
    if report.ramp:
        lines += ["", "ramp:"]
        lines += text_table(_RAMP_HEADER, "rrrrrrlrrl", _ramp_rows(report))
    lines += ["", *summary_lines(report)]
    return "\n".join(lines)


def _poll_text(step: Step) -> str:
    names = {"reviews": "approval's review list", "customers": "the customer rows"}
    return "; ".join(
        f"{names.get(name, name)} every {stats.p50:.0f} ms at p50, {stats.p95:.0f} at p95"
        for name, stats in sorted(step.polls.items())
    )


def render_markdown(report: PipelineReport) -> str:
    s = report.steady
    lines = [
        f"## Pipeline, {report.machine.date}",
        "",
        machine_line(report.machine),
        f"Command: `{report.command}`.",
    ]
    if report.note:
        lines += ["", report.note]
    lines += [
        "",
        f"Steady open-loop rate: {s.rate:g} customers/s for {s.seconds:g} s "
        f"({len(s.traces)} customers), each created and submitted as sales1, its review "
        "approved by cs1 as soon as approval's API lists it. Times from the scheduled "
        "arrival; stage ends are seen by polls (50 ms apart, plus the look itself: "
        f"{_poll_text(s)}). The floor: raw aiokafka produce → consume on the same broker, "
        "the same count at the same rate.",
        "",
        *markdown_table(_STAGE_HEADER, "lrrrr", _stage_rows(s)),
    ]
    if report.ramp:
        lines += [
            "",
            f"Ramp: {report.ramp[0].seconds:g} s per rate, doubling until activation no "
            f"longer holds. Held: every customer through, achieved throughput ≥ "
            f"{HELD_SHARE:.0%} of offered, p99 bounded (the last third's p99 at most twice "
            "the first third's + 1 s, and under the bound).",
            "",
            *markdown_table(_RAMP_HEADER, "rrrrrrlrrl", _ramp_rows(report)),
        ]
    lines += ["", *(f"- {line}" for line in summary_lines(report))]
    return "\n".join(lines) + "\n"


BENCHMARK: StackBenchmark[PipelineOptions, PipelineReport] = StackBenchmark(
    command="ims bench pipeline",
    run=lambda config, options, out: run_pipeline(config, options, out=out),
    table=render_table,
    section=render_markdown,
    heading=RESULTS_HEADING,
    passed=lambda report: not report.steady.errors,
)
main_pipeline = BENCHMARK.main
