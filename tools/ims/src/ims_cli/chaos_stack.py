"""The stack `ims chaos` runs against: its own `ims up`, a child on free ports.

Started exactly as a person would (`python -m ims_cli.main up`) with a fresh data folder,
durable broker storage (ADR 0012: a broker restart must lose nothing, as with Kafka) and
settings that keep a run short: MISA's client timeout and back-off caps are lowered so
the simulator's timeouts and 429s cost seconds, not minutes. Every line the stack prints
is kept (and written to `stack.log` in the data folder) for the personal-data scan.
"""

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import psutil

from ims_cli.paths import dev_issuer_dir
from ims_cli.ports import free_ports
from ims_cli.processes import _PR_SET_PDEATHSIG, _prctl
from ims_cli.stack_config import StackConfig, load_stack_config
from shared.auth.dev_issuer import issue_token

READY_MARK = "ims ready:"

#: Settings of the services and the simulator for a chaos run (any can be overridden
#: from the environment of `ims chaos`).
CHAOS_SETTINGS: dict[str, str] = {
    "IMS_BROKER_STORAGE": "s3",
    # A MISA call that hangs is abandoned after 2 s; the simulator holds a timeout 3 s.
    "MISA_SYNC_MISA_TIMEOUT_S": "2",
    "MISA_SIM_TIMEOUT_DELAY_S": "3",
    # No client-side throttle: the simulator is local (MISA publishes no quota either).
    "MISA_SYNC_MISA_RATE_LIMIT_PER_S": "0",
    "MISA_SYNC_MISA_CIRCUIT_COOLDOWN_S": "3",
    "MISA_SYNC_MISA_RETRY_MAX_DELAY_S": "2",
    "MISA_SYNC_SYNC_MAX_BACKOFF_S": "5",
    "NO_COLOR": "1",
}

#: The parts `ims up` starts that chaos may kill, by the module in their command line.
SERVICE_MODULES = ("customer", "approval", "misa_sync", "reference")


class StackStartError(RuntimeError):
    pass


@dataclass
class ChaosStack:
    process: asyncio.subprocess.Process
    config: StackConfig
    lines: list[str] = field(default_factory=list)
    log_file: TextIO | None = None
    _pump: asyncio.Task[None] | None = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    # ---- addresses and tokens ----------------------------------------------------------

    def url(self, part: str) -> str:
        if part == "simulator":
            return self.config.simulator_url
        service = next(s for s in self.config.services if s.name == part)
        return self.config.service_url(service)

    def token(self, username: str) -> str:
        key = (dev_issuer_dir(self.config.data_dir) / "private.pem").read_bytes()
        return issue_token(key, username=username, ttl_seconds=24 * 3600)

    def database_dsn(self, service: str) -> str:
        from shared.db import asyncpg_dsn

        database = next(s.database for s in self.config.services if s.name == service)
        return asyncpg_dsn(self.config.database_url(database))

    # ---- the children ------------------------------------------------------------------

    def children(self) -> list[psutil.Process]:
        try:
            return list(psutil.Process(self.process.pid).children(recursive=True))
        except psutil.Error:
            return []

    def pid_of(self, part: str) -> int | None:
        """The pid of a part: a service module, 'broker', 'postgres' or 'broker-storage'."""
        for child in self.children():
            try:
                argv = child.cmdline()
                parent = child.ppid()
            except psutil.Error:
                continue
            if not argv:
                continue
            program = Path(argv[0]).name
            found = (
                (part in SERVICE_MODULES and "-m" in argv and part in argv and "serve" in argv)
                or (part == "broker" and "broker" in argv and program.startswith("tansu"))
                # The postmaster is the child of ims up; its backends are its children.
                or (part == "postgres" and program == "postgres" and parent == self.process.pid)
            )
            if found:
                pid: int = child.pid
                return pid
        return None

    # ---- start and stop ----------------------------------------------------------------

    async def _read_output(self) -> None:
        assert self.process.stdout is not None
        while True:
            raw = await self.process.stdout.readline()
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            self.lines.append(line)
            if self.log_file is not None:
                self.log_file.write(line + "\n")
            if READY_MARK in line:
                self._ready.set()

    async def wait_ready(self, timeout_s: float) -> None:
        ready = asyncio.create_task(self._ready.wait())
        exited = asyncio.create_task(self.process.wait())
        done, _ = await asyncio.wait(
            {ready, exited}, timeout=timeout_s, return_when="FIRST_COMPLETED"
        )
        for task in (ready, exited):
            task.cancel()
        if ready not in done:
            tail = "\n".join(self.lines[-40:])
            raise StackStartError(f"ims up did not print its ready line:\n{tail}")

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.process.wait(), 90)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                await self.process.wait()
        if self._pump is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pump, 10)
        if self.log_file is not None:
            self.log_file.close()


def chaos_env(data_dir: Path, base_env: Mapping[str, str]) -> dict[str, str]:
    """The environment of the child `ims up`: free ports, the data folder, CHAOS_SETTINGS."""
    env = {**CHAOS_SETTINGS, **base_env}
    env.pop("IMS_DATABASE_URL_BASE", None)
    names = (
        "IMS_PG_PORT",
        "IMS_KAFKA_PORT",
        "IMS_BROKER_S3_PORT",
        "CUSTOMER_HTTP_PORT",
        "APPROVAL_HTTP_PORT",
        "MISA_SYNC_HTTP_PORT",
        "REFERENCE_HTTP_PORT",
        "MISA_SIM_PORT",
    )
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    env.update({name: str(port) for name, port in ports.items()})
    env.update(
        {
            "IMS_DATA_DIR": str(data_dir),
            "IMS_READY_TIMEOUT_S": "600",
            "PYTHONUNBUFFERED": "1",
            "NO_COLOR": "1",
        }
    )
    return env


def _die_with_parent() -> None:
    """In the child: SIGINT (ims up's orderly stop) when `ims chaos` dies, however it dies."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGINT)


def _prepare(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o755)  # PostgreSQL's own user must reach its folder inside


async def start_chaos_stack(data_dir: Path, *, ready_timeout_s: float = 660) -> ChaosStack:
    _prepare(data_dir)
    env = chaos_env(data_dir, os.environ)
    config = load_stack_config(env, data_dir)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ims_cli.main",
        "up",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,
        limit=1 << 20,
    )
    stack = ChaosStack(process=process, config=config)
    stack.log_file = (data_dir / "stack.log").open("w", encoding="utf-8", buffering=1)
    stack._pump = asyncio.create_task(stack._read_output())
    started = time.monotonic()
    try:
        await stack.wait_ready(ready_timeout_s)
    except BaseException:
        await stack.stop()
        raise
    stack.lines.append(f"# chaos: stack ready after {time.monotonic() - started:.1f} s")
    return stack
