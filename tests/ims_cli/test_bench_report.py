"""ims_cli.bench_report.run_and_publish: what every stack benchmark does with its run."""

import io
from pathlib import Path

from ims_cli.bench_report import run_and_publish


async def _fine() -> int:
    return 7


async def _unreachable() -> int:
    raise OSError("connection refused")


def test_a_finished_run_is_printed_and_appended_under_its_heading(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    results = tmp_path / "benchmarks.md"
    report = run_and_publish(
        "ims bench x",
        _fine(),
        table=lambda r: f"table {r}",
        section=lambda r: f"## run\n\nsection {r}\n",
        heading="# Results: `ims bench x`",
        path=results,
        header="# Benchmarks\n",
        out=out,
        err=err,
    )
    assert report == 7 and err.getvalue() == ""
    assert "table 7" in out.getvalue() and str(results) in out.getvalue()
    text = results.read_text()
    assert "# Results: `ims bench x`" in text and "section 7" in text


def test_an_unreachable_stack_is_said_and_nothing_is_written(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    results = tmp_path / "benchmarks.md"
    report = run_and_publish(
        "ims bench x",
        _unreachable(),
        table=str,
        section=str,
        heading="# Results",
        path=results,
        header="",
        out=out,
        err=err,
    )
    assert report is None and not results.exists()
    assert err.getvalue() == "ims bench x: connection refused\n"
