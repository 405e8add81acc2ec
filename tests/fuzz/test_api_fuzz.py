"""Every operation of the four services' OpenAPI documents, fuzzed as each role (CONTRACT.md
§2) over the real apps on PostgreSQL: no 5xx, every response in its documented status,
content type and schema.

The CI size: a few examples per operation under a fixed seed, so a run is repeatable and
takes well under a minute; `ims fuzz` runs the same checks with many more.
"""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from ims_cli.bench_customer import drop_database
from ims_cli.fuzz_engine import FuzzResult, fuzz_app, load_operations
from ims_cli.fuzz_stack import ROLE_USERS, SERVICES, FuzzStack, build_stack, prepare_databases
from tests.fixtures.infra import DB_BASE
from tests.fixtures.misa_simulator import MisaSimulator

#: Positive and negative examples per operation each; ~35 s for 4 services x 5 roles.
EXAMPLES = 8


@pytest.fixture(scope="module")
def stack(
    run_id: str,
    dev_keys: tuple[Path, Path],
    misa_simulator: MisaSimulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[FuzzStack]:
    """Databases of its own: the fuzzer's customers must not show up in other tests' lists."""
    prefix = f"ims_test_fuzz_{run_id}"
    urls = asyncio.run(prepare_databases(DB_BASE, prefix))
    blobs = tmp_path_factory.mktemp("fuzz-blobs")
    yield asyncio.run(build_stack(urls, dev_keys, blobs, misa_simulator.base_url))
    for service in SERVICES:
        asyncio.run(drop_database(DB_BASE, f"{prefix}_{service}"))


def report(result: FuzzResult) -> str:
    return "\n".join(
        f"{f.operation}: {f.check} ({f.status})\n  {f.message}\n  {f.reproduce}"
        for f in result.failures.values()
    )


@pytest.mark.parametrize("role", list(ROLE_USERS))
@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_keeps_its_contract(stack: FuzzStack, service: str, role: str) -> None:
    app = stack.apps[service]
    result = fuzz_app(
        app,
        headers=stack.headers(role),
        examples=EXAMPLES,
        known=stack.known[service],
        operations=load_operations(app),
    )
    assert result.operations > 0 and result.cases >= result.operations
    assert not result.failures, report(result)
