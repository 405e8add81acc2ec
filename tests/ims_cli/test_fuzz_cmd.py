"""`ims fuzz` end to end on one service with two examples: the table's shape, not timing.

In a child process, as a user runs it: the command quiets the services' logging for the
rest of its process, which must not reach the other tests.
"""

import re
import subprocess
import sys

import pytest

from ims_cli.main import main
from tests.fixtures.infra import DB_BASE


def test_fuzz_reference_prints_a_row_per_role_and_passes(run_id: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ims_cli.main",
            "fuzz",
            "--examples",
            "2",
            "--service",
            "reference",
            "--database-url-base",
            DB_BASE,
            "--database-prefix",
            f"ims_test_fuzzcli_{run_id}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    lines = out.splitlines()
    assert lines[0].split() == ["service", "role", "operations", "cases", "failures", "seconds"]
    rows = [line.split() for line in lines[1:6]]
    assert [r[:2] for r in rows] == [
        ["reference", role] for role in ("sales", "manager", "cs", "accountant", "admin")
    ]
    for row in rows:
        operations, cases, failures = (int(v) for v in row[2:5])
        assert operations > 30 and cases >= operations and failures == 0
        assert re.fullmatch(r"\d+\.\d", row[5])
    assert lines[-1] == "0 distinct failures"


def test_fuzz_rejects_an_unknown_service() -> None:
    with pytest.raises(SystemExit):
        main(["fuzz", "--service", "billing"])
