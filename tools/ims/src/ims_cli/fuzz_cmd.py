"""`ims fuzz`: the API fuzzing of issue 8 at full size.

The same stack and checks as tests/fuzz (ims_cli.fuzz_stack, ims_cli.fuzz_engine) with
many more examples: fresh databases on a PostgreSQL server, a MISA simulator process, the
four apps in process, each service fuzzed as each role. Prints operations, cases and
failures per service x role, then each distinct failure with a curl command to reproduce
it; the exit code is 1 when anything failed.
"""

import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ims_cli.fuzz_engine import DEFAULT_SEED, FuzzFailure, fuzz_app, load_operations
from ims_cli.fuzz_stack import (
    ROLE_USERS,
    SERVICES,
    build_stack,
    prepare_databases,
    start_misa_simulator,
)

DEFAULT_EXAMPLES = 200
DEFAULT_PREFIX = "ims_fuzz"


@dataclass(frozen=True, slots=True)
class FuzzOptions:
    services: Sequence[str] = SERVICES
    roles: Sequence[str] = tuple(ROLE_USERS)
    examples: int = DEFAULT_EXAMPLES
    seed: int = DEFAULT_SEED
    database_url_base: str = "postgresql+asyncpg://postgres@127.0.0.1:5432"
    database_prefix: str = DEFAULT_PREFIX
    keep: bool = False


def _stop(process: "subprocess.Popen[bytes]") -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def run_fuzz(options: FuzzOptions, out: TextIO = sys.stdout) -> int:
    from ims_cli.bench_customer import drop_database, silence_service_logs
    from shared.auth.dev_issuer import ensure_keypair

    silence_service_logs()  # the services' request lines would bury the table
    failures: dict[tuple[str, str, int | None], FuzzFailure] = {}
    with tempfile.TemporaryDirectory(prefix="ims-fuzz-") as tmp:
        folder = Path(tmp)
        misa_url, simulator = start_misa_simulator(folder)
        try:
            urls = asyncio.run(
                prepare_databases(options.database_url_base, options.database_prefix)
            )
            keys = ensure_keypair(folder / "keys")
            stack = asyncio.run(build_stack(urls, keys, folder / "blobs", misa_url))
            print(
                f"{'service':<10} {'role':<11} {'operations':>10} {'cases':>7} "
                f"{'failures':>8} {'seconds':>8}",
                file=out,
                flush=True,
            )
            for service in options.services:
                app = stack.apps[service]
                operations = load_operations(app)
                for role in options.roles:
                    started = time.perf_counter()
                    result = fuzz_app(
                        app,
                        headers=stack.headers(role),
                        examples=options.examples,
                        seed=options.seed,
                        known=stack.known[service],
                        operations=operations,
                    )
                    failures |= result.failures
                    print(
                        f"{service:<10} {role:<11} {result.operations:>10} {result.cases:>7} "
                        f"{result.failing_cases:>8} {time.perf_counter() - started:>8.1f}",
                        file=out,
                        flush=True,
                    )
        finally:
            _stop(simulator)
            if not options.keep:
                for service in SERVICES:
                    asyncio.run(
                        drop_database(
                            options.database_url_base, f"{options.database_prefix}_{service}"
                        )
                    )
    for failure in failures.values():
        print(
            f"\nFAILED {failure.operation}: {failure.check} ({failure.status})\n"
            f"{failure.message}\n{failure.reproduce}",
            file=out,
        )
    print(f"\n{len(failures)} distinct failures", file=out)
    return 1 if failures else 0
