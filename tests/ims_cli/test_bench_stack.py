"""The pure parts of `ims bench pipeline|replay|memory` and of `ims_cli.bench_report`.

No timings are asserted: targets are judged by the benchmarks themselves.
"""

import socket
from pathlib import Path

import pytest

from ims_cli.bench_drive import Trace
from ims_cli.bench_memory import MemoryOptions, MemoryReport, Series, listening_pids, tree_memory
from ims_cli.bench_memory import render_markdown as memory_markdown
from ims_cli.bench_pipeline import (
    PipelineReport,
    Step,
    judge,
    stage_stats,
)
from ims_cli.bench_pipeline import render_markdown as pipeline_markdown
from ims_cli.bench_pipeline import render_table as pipeline_table
from ims_cli.bench_replay import Counts, Plan, ReplayReport, customer_events, generate
from ims_cli.bench_replay import render_markdown as replay_markdown
from ims_cli.bench_report import (
    Machine,
    append_section,
    machine_line,
    markdown_table,
    slope_per_s,
    summarize,
    text_table,
)
from ims_cli.main import build_parser
from shared.events.contracts import EVENT_TYPES
from shared.events.envelope import CloudEvent

MACHINE = Machine("Test CPU", 2, 4.0, "3.12.1", "Linux 6", "2026-11-29 01:00 UTC")


# ---- bench_report ---------------------------------------------------------------------------


def test_machine_line_with_and_without_extra() -> None:
    assert machine_line(MACHINE) == (
        "Machine: Test CPU, 2 CPUs (nproc), 4.0 GiB, Python 3.12.1, Linux 6."
    )
    assert machine_line(MACHINE, "PostgreSQL 15").endswith("Linux 6; PostgreSQL 15.")


def test_markdown_and_text_tables() -> None:
    assert markdown_table(("a", "n"), "lr", [("x", 1)]) == ["| a | n |", "|---|---:|", "| x | 1 |"]
    assert text_table(("name", "n"), "lr", [("x", 100)]) == ["name    n", "x     100"]
    with pytest.raises(ValueError):
        markdown_table(("a",), "lr", [])


def test_slope_is_least_squares_and_flat_for_too_few_points() -> None:
    assert slope_per_s([(0, 10), (10, 20), (20, 30)]) == pytest.approx(1.0)
    assert slope_per_s([(0, 5)]) == 0.0
    assert slope_per_s([(3, 5), (3, 9)]) == 0.0


def test_append_section_keeps_each_benchmark_under_its_heading(tmp_path: Path) -> None:
    path = tmp_path / "b.md"
    append_section(path, "# Results: one", "## run 1\n", header="# Head\n")
    append_section(path, "# Results: two", "## run A\n", header="# Head\n")
    append_section(path, "# Results: one", "## run 2\n", header="# Head\n")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Head\n")
    assert text.index("## run 2") < text.index("# Results: two") < text.index("## run A")


# ---- pipeline -------------------------------------------------------------------------------


def _trace(i: int, rate: float = 2.0, lag: float = 1.0, *, linked: bool = True) -> Trace:
    t0 = i / rate
    return Trace(
        index=i,
        scheduled=t0,
        started=t0,
        customer_id=f"c{i}",
        submitted=t0 + 0.05,
        review_seen=t0 + 0.15,
        approved=t0 + 0.2,
        active=t0 + 0.3,
        linked=t0 + lag if linked else None,
    )


def test_a_rate_the_stack_keeps_up_with_is_held() -> None:
    traces = [_trace(i) for i in range(30)]
    verdict = judge(traces, 2.0, lambda t: t.linked, p99_bound_s=10)
    assert verdict.held and verdict.done == 30
    assert verdict.achieved == pytest.approx(2.0)


def test_a_rate_is_not_held_when_customers_are_missing_or_latency_grows() -> None:
    missing = [_trace(i, linked=i < 20) for i in range(30)]
    assert not judge(missing, 2.0, lambda t: t.linked, 10).held
    # Falling behind: each customer waits half a second more than the one before.
    growing = [_trace(i, lag=1 + 0.5 * i) for i in range(30)]
    verdict = judge(growing, 2.0, lambda t: t.linked, 100)
    assert not verdict.held
    assert "kept growing" in verdict.why and "throughput" in verdict.why
    assert not judge([_trace(i, lag=20) for i in range(30)], 2.0, lambda t: t.linked, 10).held


def test_stage_stats_follow_the_trace() -> None:
    stats = dict(stage_stats([_trace(i) for i in range(10)]))
    review = stats["submit → review visible"]
    assert review is not None and review.p50 == pytest.approx(100)
    whole = stats["whole way (arrival → linked)"]
    assert whole is not None and whole.p99 == pytest.approx(1000)
    assert dict(stage_stats([_trace(0, linked=False)]))["active → MISA-linked"] is None


def _step(rate: float, held: bool) -> Step:
    traces = [_trace(i, rate) for i in range(10)]
    verdict = judge(traces, rate, lambda t: t.active, 10)
    linked = judge(traces, rate, lambda t: t.linked if held else None, 10)
    return Step(rate, 5, traces, summarize([5.0, 6.0]), verdict, linked)


def test_pipeline_report_names_the_highest_rate_held() -> None:
    report = PipelineReport(
        "ims bench pipeline", MACHINE, _step(1, True), [_step(1, True), _step(2, False)]
    )
    assert report.highest("to_active") == 2
    assert report.highest("to_linked") == 1
    text = pipeline_markdown(report)
    assert "## Pipeline, 2026-11-29 01:00 UTC" in text and "Machine: Test CPU" in text
    assert "| floor: raw aiokafka produce → consume | 2 |" in text
    assert "highest rate held through activation: 2/s; through the MISA link: 1/s" in text
    assert "NOT held" in pipeline_table(report)


# ---- replay ---------------------------------------------------------------------------------


def test_plan_splits_events_into_customers() -> None:
    assert (Plan(9).customers, Plan(9).complete, Plan(9).events_of(2)) == (3, 3, 3)
    assert (Plan(10).customers, Plan(10).complete, Plan(10).events_of(3)) == (4, 3, 1)


def test_generated_events_are_real_cloud_events_of_the_contract() -> None:
    records = list(generate(Plan(7)))
    assert len(records) == 7
    events = [CloudEvent.from_kafka(headers, value) for _, value, headers in records]
    types = [e.type.split(".")[-2] for e in events]
    assert types == ["CustomerSubmitted", "CustomerActivated", "CustomerUpdated"] * 2 + [
        "CustomerSubmitted"
    ]
    for (key, _, _), event in zip(records, events, strict=True):
        data = EVENT_TYPES[event.type].model_validate(event.data)
        assert key.decode() == event.subject == data.subject()
    assert events[0].subject == events[2].subject != events[3].subject


def test_customer_events_carry_rising_versions() -> None:
    from ims_cli.bench_customer import CustomerGenerator

    c = CustomerGenerator(seed=1).customer(0, total=1)
    versions = [e.model_dump()["version"] for e in customer_events(c, 0, 3)]
    assert versions == [2, 3, 4]


def _replay_report(inbox: int, *, finished: bool = True) -> ReplayReport:
    return ReplayReport(
        command="ims bench replay --events 9",
        machine=MACHINE,
        postgres="PostgreSQL 15",
        events=9,
        customers=3,
        topic_mb=0.01,
        produce_s=1.0,
        replay_s=3.0,
        floor_s=0.5,
        finished=finished,
        counts=Counts(3, 3, 3, inbox),
        dead_lettered=0,
    )


def test_replay_report_checks_the_rebuilt_counts() -> None:
    assert _replay_report(9).correct
    assert not _replay_report(8).correct
    partial = _replay_report(6, finished=False)
    assert not partial.correct and partial.applied == 6
    text = replay_markdown(partial)
    assert "stopped at the time-out, 6 of 9" in text and "incomplete (time-out)" in text
    assert "| floor: raw aiokafka, no processing | 9 | 0.5 | 18.0 | 1.0000 |" in text


# ---- memory ---------------------------------------------------------------------------------


def test_series_growth_leaves_the_warm_up_out() -> None:
    # Jumps in the first fifth (warm-up), then flat: not growth.
    flat = Series("a", 1, load=[(0, 100), (10, 150), *((t, 150.0) for t in range(20, 101, 10))])
    assert flat.growth_pct(100) == pytest.approx(0.0)
    rising = Series("b", 2, load=[(t, 100.0 + t) for t in range(0, 101, 10)])
    assert rising.growth_pct(100) > 50
    report = MemoryReport(
        "ims bench memory", MACHINE, MemoryOptions(threshold_pct=10), [flat, rising], 100, 5
    )
    assert [s.part for s in report.flagged()] == ["b"]
    text = memory_markdown(report)
    assert "GROWS" in text and "growth above the threshold (10% over the soak" in text


def test_listening_pids_and_tree_memory_find_this_process() -> None:
    import os

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert listening_pids({"me": port}) == {"me": os.getpid()}
    size, processes = tree_memory(os.getpid())
    assert size > 0 and processes >= 1


def test_the_commands_are_registered() -> None:
    parser = build_parser()
    args = parser.parse_args(["bench", "pipeline", "--rate", "2", "--no-ramp"])
    assert (args.rate, args.ramp, args.duration) == (2.0, False, 60.0)
    args = parser.parse_args(["bench", "replay"])
    assert args.events == 1_000_000
    args = parser.parse_args(["bench", "memory", "--soak", "20"])
    assert (args.soak, args.interval, args.threshold) == (20.0, 10.0, 10.0)
    with pytest.raises(SystemExit):
        parser.parse_args(["bench", "replay", "--events", "0"])
