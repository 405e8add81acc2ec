"""The pure parts of `ims bench reference-search`: statistics, query mix, machine, report.

No timings are asserted: targets are checked by the benchmark itself, not by tests.
"""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ims_cli.bench_cmd import (
    HEADER,
    BenchQuery,
    HttpBenchError,
    Machine,
    Report,
    Stats,
    append_report,
    cpu_model,
    machine_info,
    measure_http,
    mem_total_gib,
    percentile,
    query_mix,
    render_markdown,
    render_table,
    summarize,
    typed_prefixes,
)
from ims_cli.main import main


def test_percentile_interpolates_between_ranks() -> None:
    samples = [4.0, 1.0, 3.0, 2.0, 5.0]  # unsorted on purpose
    assert percentile(samples, 0) == 1.0
    assert percentile(samples, 50) == 3.0
    assert percentile(samples, 100) == 5.0
    assert percentile(samples, 25) == 2.0
    assert percentile(samples, 95) == pytest.approx(4.8)
    assert percentile([1.0, 2.0], 50) == 1.5
    assert percentile([7.0], 99) == 7.0
    # Same as numpy.percentile(range(1, 101), 95) with the default method.
    assert percentile([float(i) for i in range(1, 101)], 95) == pytest.approx(95.05)


def test_percentile_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 101)


def test_summarize() -> None:
    stats = summarize([float(i) for i in range(1, 101)])
    assert stats.n == 100
    assert stats.p50 == pytest.approx(50.5)
    assert stats.p99 == pytest.approx(99.01)
    assert stats.mean == pytest.approx(50.5)
    assert stats.max == 100.0


def test_typed_prefixes_follow_the_keystrokes() -> None:
    assert typed_prefixes("ho chi") == ["h", "ho", "ho c", "ho ch", "ho chi"]
    assert typed_prefixes("") == []


def test_the_query_mix_is_realistic() -> None:
    mix = query_mix()
    texts = [q.q for q in mix]
    for expected in ("h", "ho", "ho c", "ho chi", "hcm", "sai gon", "ben nghe", "zzz", "%%%"):
        assert expected in texts
    assert any(q.scheme or q.kind or q.province_code for q in mix)
    assert all(1 <= q.limit <= 50 and 1 <= len(q.q) <= 100 for q in mix)


def test_http_parameters_leave_out_unset_filters() -> None:
    assert BenchQuery("hcm").params() == {"q": "hcm", "limit": 10}
    assert BenchQuery(
        "tan", scheme="legacy", kind="ward", province_code="79", limit=5
    ).params() == {
        "q": "tan",
        "limit": 5,
        "scheme": "legacy",
        "kind": "ward",
        "province_code": "79",
    }


def test_machine_parsing() -> None:
    cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\n"
    assert cpu_model(cpuinfo) == "AMD EPYC 7B13"
    assert cpu_model("processor : 0\n") is None
    assert mem_total_gib("MemTotal:       24576000 kB\nMemFree: 1 kB\n") == pytest.approx(23.4375)
    assert mem_total_gib("") is None
    machine = machine_info(datetime(2026, 11, 28, 9, 5, tzinfo=UTC))
    assert machine.date == "2026-11-28 09:05 UTC"
    assert machine.cpus >= 1 and machine.python


def _report(p95: float, http: Stats | None = None) -> Report:
    stats = Stats(n=100, p50=0.1, p95=p95, p99=p95 * 2, mean=0.2, max=p95 * 3)
    slow = Stats(n=100, p50=30.0, p95=40.0, p99=45.0, mean=31.0, max=50.0)
    return Report(
        command="ims bench reference-search --queries 100",
        machine=Machine("AMD EPYC", 2, 23.4, "3.12.1", "Linux 6.1", "2026-11-28 09:05 UTC"),
        distinct_queries=113,
        data_load_ms=400.0,
        build_ms=(500.0, 450.0, 480.0),
        index=stats,
        linear=slow,
        mismatches=0,
        http=http,
        url="http://127.0.0.1:8004" if http else None,
    )


def test_the_report_names_the_machine_and_the_verdict() -> None:
    text = render_markdown(_report(0.4))
    assert "AMD EPYC, 2 CPUs (nproc), 23.4 GiB, Python 3.12.1" in text
    assert "| index, in process | 100 | 0.100 | 0.400 |" in text
    assert "in process: met (p95 0.400 ms)" in text
    assert "p95 ×100" in text  # 40 / 0.4
    assert "HTTP" not in text

    slow_http = Stats(n=100, p50=5.0, p95=12.0, p99=20.0, mean=6.0, max=30.0)
    text = render_markdown(_report(11.0, slow_http))
    assert "in process: NOT met (p95 11.000 ms)" in text
    assert "over HTTP: NOT met (p95 12.000 ms)" in text
    assert "| HTTP `http://127.0.0.1:8004` | 100 |" in text
    assert "HTTP http://127.0.0.1:8004" in render_table(_report(11.0, slow_http))


def test_results_are_appended_under_one_header(tmp_path: Path) -> None:
    target = tmp_path / "docs" / "benchmarks" / "reference-search.md"
    append_report(target, _report(0.4))
    append_report(target, _report(0.5))
    text = target.read_text(encoding="utf-8")
    assert text.startswith(HEADER)
    assert text.count("# Benchmark:") == 1
    assert text.count("## 2026-11-28 09:05 UTC") == 2


def test_an_unreachable_service_is_reported() -> None:
    with pytest.raises(HttpBenchError):
        measure_http("http://127.0.0.1:1", "token", 1)


def test_the_subcommand_is_wired(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "reference-search", "--help"])
    assert exit_info.value.code == 0
    assert "--queries" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["bench", "reference-search", "--queries", "0"])
    assert "must be positive" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench"])
