"""One-shot `python -m <service> migrate` runs, all at once (each service has its own database)."""

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from ims_cli.processes import ProcessSpec, describe_exit, run_to_completion


@dataclass(frozen=True, slots=True)
class MigrationResult:
    service: str
    #: The name its output is shown under.
    label: str
    returncode: int
    output: list[str]

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        return describe_exit(self.returncode)


async def _migrate(service: str, spec: ProcessSpec) -> MigrationResult:
    try:
        code, output = await run_to_completion(spec)
    except OSError as exc:
        return MigrationResult(service, spec.name, 127, [f"cannot start {spec.argv[0]}: {exc}"])
    return MigrationResult(service, spec.name, code, output)


async def run_migrations(specs: Mapping[str, ProcessSpec]) -> list[MigrationResult]:
    """Run every service's migration (`{service: spec}`) to completion, in parallel.

    Cancelling stops them all.
    """
    return list(await asyncio.gather(*(_migrate(name, spec) for name, spec in specs.items())))
