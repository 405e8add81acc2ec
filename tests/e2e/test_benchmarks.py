"""`ims bench pipeline`, `replay` and `memory` (issue 8), small, against the real stack.

The same code as the full runs, sized for CI: what is asserted is that every customer got
through, the counts are right and every figure is there; never a timing (targets are
judged by the benchmarks themselves).
"""

import io
from pathlib import Path

import pytest

from ims_cli.bench_memory import MemoryOptions, main_memory, run_memory
from ims_cli.bench_pipeline import PipelineOptions, main_pipeline, stage_stats
from ims_cli.bench_replay import ReplayOptions, run_replay
from ims_cli.stack_config import StackConfig, load_stack_config
from tests.e2e.conftest import Stack

#: The stack's start is shared with the other e2e tests; these three take about a minute.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def config(stack: Stack) -> StackConfig:
    p = stack.ports
    env = {
        "IMS_PG_PORT": str(p["pg"]),
        "IMS_KAFKA_PORT": str(p["kafka"]),
        "CUSTOMER_HTTP_PORT": str(p["customer"]),
        "APPROVAL_HTTP_PORT": str(p["approval"]),
        "MISA_SYNC_HTTP_PORT": str(p["misa_sync"]),
        "REFERENCE_HTTP_PORT": str(p["reference"]),
        "MISA_SIM_PORT": str(p["simulator"]),
    }
    return load_stack_config(env, stack.data_dir)


def test_pipeline_takes_every_customer_to_misa_and_reports_each_stage(
    config: StackConfig, tmp_path: Path
) -> None:
    import asyncio

    from ims_cli.bench_pipeline import run_pipeline

    options = PipelineOptions(rate=4, duration_s=5, ramp=False)
    report = asyncio.run(run_pipeline(config, options, out=io.StringIO()))
    traces = report.steady.traces
    assert len(traces) == 20
    assert [t.error for t in traces if t.error] == []
    assert all(t.linked is not None and t.customer_id for t in traces)
    for name, stats in stage_stats(traces):
        assert stats is not None and stats.n == 20, name
        assert stats.p50 >= 0 and stats.p99 >= stats.p50, name
    whole = dict(stage_stats(traces))["whole way (arrival → linked)"]
    assert whole is not None and whole.p50 > 0
    assert report.steady.floor.n == 20 and report.steady.floor.p50 > 0
    assert report.steady.to_active.done == 20

    # The command's own path: the section lands under its heading in the results file.
    out = tmp_path / "benchmarks.md"
    code = main_pipeline(
        config, PipelineOptions(rate=2, duration_s=1, ramp=False), output=out, out=io.StringIO()
    )
    assert code == 0
    text = out.read_text(encoding="utf-8")
    assert "# Results: `ims bench pipeline`" in text and "Machine: " in text
    assert "| floor: raw aiokafka produce → consume |" in text


def test_replay_rebuilds_approvals_state_in_a_new_consumer_group(config: StackConfig) -> None:
    import asyncio

    report = asyncio.run(
        run_replay(
            config, ReplayOptions(events=90, timeout_s=300, quiet_logs=False), out=io.StringIO()
        )
    )
    assert report.finished
    assert report.counts == report.expected
    assert report.expected.replica_rows == 30 and report.expected.inbox_rows == 90
    assert report.dead_lettered == 0 and report.correct
    assert report.replay_s > 0 and report.floor_s > 0 and report.produce_s > 0


def test_memory_samples_every_process_idle_and_under_load(
    config: StackConfig, tmp_path: Path
) -> None:
    import asyncio

    options = MemoryOptions(idle_s=2, soak_s=12, interval_s=2, rate=1)
    report = asyncio.run(run_memory(config, options, out=io.StringIO()))
    parts = {s.part for s in report.series}
    assert parts == {
        "customer",
        "approval",
        "misa_sync",
        "reference",
        "misa_simulator",
        "broker",
        "postgres",
    }
    for s in report.series:
        assert s.idle and s.load, s.part
        assert all(mb > 0 for _, mb in s.idle + s.load), s.part
    assert next(s for s in report.series if s.part == "postgres").processes > 1
    assert report.linked >= 10

    out = tmp_path / "benchmarks.md"
    code = main_memory(
        config,
        MemoryOptions(idle_s=1, soak_s=2, interval_s=1, rate=1),
        output=out,
        out=io.StringIO(),
    )
    assert code == 0
    assert "# Results: `ims bench memory`" in out.read_text(encoding="utf-8")
