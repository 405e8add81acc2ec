"""What `ims bench pipeline|replay|memory` share: run against the stack, publish the
report to docs/benchmarks.md, answer an exit code."""

import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ims_cli.bench_customer import HEADER, RESULT_FILE
from ims_cli.bench_report import run_and_publish
from ims_cli.paths import find_repo_root
from ims_cli.stack_config import StackConfig


@dataclass(frozen=True)
class StackBenchmark[O, R]:
    """One benchmark: how it runs (printing its progress on `out`), how its report reads
    in the console and in the results file, and whether the run passed."""

    command: str
    run: Callable[[StackConfig, O, TextIO], Coroutine[Any, Any, R]]
    table: Callable[[R], str]
    section: Callable[[R], str]
    heading: str
    passed: Callable[[R], bool] = lambda _: True

    def main(
        self,
        config: StackConfig,
        options: O,
        *,
        output: Path | None = None,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> int:
        """0 when the run finished and passed, 1 otherwise (said on `err`)."""
        out = out or sys.stdout
        report = run_and_publish(
            self.command,
            self.run(config, options, out),
            table=self.table,
            section=self.section,
            heading=self.heading,
            path=output or find_repo_root() / RESULT_FILE,
            header=HEADER,
            out=out,
            err=err or sys.stderr,
        )
        return 0 if report is not None and self.passed(report) else 1
