"""The faults of `ims chaos`: what, when (a seeded plan), and injecting them for real.

The plan is pure: each fault fires when the workload has reached a random share of its
customers (so "random moments" fall inside the workload whatever its size and speed).
Injection uses signals on the real children of `ims up`, found with psutil:

- ``kill``: SIGKILL of a service process; `ims up` restarts it with back-off;
- ``broker-pause``: SIGSTOP of the broker for `pause_s`, then SIGCONT (a hung broker);
- ``broker-restart``: SIGKILL of the broker; `ims up` restarts it and re-creates the
  topics (with durable storage they are all still there: "0 new");
- ``postgres-restart``: SIGKILL of the postmaster (a crash); `ims up` clears the stale
  lock files and restarts it, PostgreSQL runs crash recovery, the services reconnect.

Faults may overlap. After each one the injector waits until the killed service (for the
broker and PostgreSQL: every service) answers `/readyz` again and records how long that
took from the kill or the SIGCONT: the recovery time of the report.
"""

import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from ims_cli.chaos_stack import SERVICE_MODULES, ChaosStack

KILL = "kill"
BROKER_PAUSE = "broker-pause"
BROKER_RESTART = "broker-restart"
POSTGRES_RESTART = "postgres-restart"


@dataclass(frozen=True, slots=True)
class PlannedFault:
    #: Fires once this share of the customers went through the workload.
    at_progress: float
    kind: str
    target: str

    def describe(self) -> str:
        if self.kind == KILL:
            return f"kill -9 {self.target}"
        return self.kind


def plan_faults(
    seed: int,
    *,
    kills_per_service: int = 3,
    services: tuple[str, ...] = SERVICE_MODULES,
    first: float = 0.05,
    last: float = 0.85,
) -> list[PlannedFault]:
    """Every fault once (kills `kills_per_service` times each) at seeded random moments."""
    rng = random.Random(seed)
    faults = [(KILL, s) for s in services for _ in range(kills_per_service)]
    faults += [(BROKER_PAUSE, "broker"), (BROKER_RESTART, "broker"), (POSTGRES_RESTART, "postgres")]
    rng.shuffle(faults)
    moments = sorted(rng.uniform(first, last) for _ in faults)
    return [
        PlannedFault(at, kind, target) for at, (kind, target) in zip(moments, faults, strict=True)
    ]


@dataclass(slots=True)
class InjectedFault:
    planned: PlannedFault
    at_s: float  # seconds since the workload started
    pid: int | None
    recovery_s: float | None = None  # from the fault (or SIGCONT) until every part answers
    note: str = ""


class FaultInjector:
    def __init__(
        self,
        stack: ChaosStack,
        plan: list[PlannedFault],
        *,
        pause_s: float = 20.0,
        recovery_timeout_s: float = 180.0,
        log: Callable[[str], None] = print,
    ) -> None:
        self._stack = stack
        self._plan = list(plan)
        self._pause_s = pause_s
        self._recovery_timeout_s = recovery_timeout_s
        self._log = log
        self.injected: list[InjectedFault] = []
        self.progress = 0.0
        self._progress_changed = asyncio.Event()
        self._started = time.monotonic()

    def set_progress(self, share: float) -> None:
        self.progress = share
        self._progress_changed.set()

    async def run(self) -> None:
        """Inject the plan in order, each when its moment comes; returns when every fault
        has been injected and recovered from (or not, by the recovery timeout).

        Faults overlap as they fall: each is injected at its moment and recovers in its own
        task; only a fault whose target is still down (a service killed again before it
        came back) waits for it to run again.
        """
        self._started = time.monotonic()
        running: list[asyncio.Task[None]] = []
        for fault in self._plan:
            while self.progress < fault.at_progress:
                self._progress_changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._progress_changed.wait(), 5)
            pid = await self._wait_pid(fault.target)
            running.append(asyncio.create_task(self._inject(fault, pid)))
            await asyncio.sleep(0)
        await asyncio.gather(*running)

    async def _inject(self, fault: PlannedFault, pid: int | None) -> None:
        at_s = time.monotonic() - self._started
        record = InjectedFault(fault, at_s, pid)
        self.injected.append(record)
        if pid is None:
            record.note = "not running: skipped"
            self._log(f"chaos: {fault.describe()}: {fault.target} not running, skipped")
            return
        self._log(f"chaos: {fault.describe()} (pid {pid}) at {at_s:.1f} s")
        if fault.kind == BROKER_PAUSE:
            os.kill(pid, signal.SIGSTOP)
            await asyncio.sleep(self._pause_s)
            os.kill(pid, signal.SIGCONT)
            record.note = f"SIGSTOP {self._pause_s:g} s, then SIGCONT"
        else:
            os.kill(pid, signal.SIGKILL)
        since = time.monotonic()
        await self._until_restarted(fault.target, pid)
        # A killed service: until it answers again; the broker or PostgreSQL: until every
        # service says it reaches them again.
        parts = (fault.target,) if fault.kind == KILL else SERVICE_MODULES
        recovered = await self._until_ready(parts)
        record.recovery_s = time.monotonic() - since if recovered else None
        self._log(
            f"chaos: {fault.describe()}: "
            + (f"recovered in {record.recovery_s:.1f} s" if recovered else "NOT recovered")
        )

    async def _wait_pid(self, part: str, timeout_s: float = 60) -> int | None:
        deadline = time.monotonic() + timeout_s
        while True:  # polling: a new process is no event we could wait on
            pid = self._stack.pid_of(part)
            if pid is not None or time.monotonic() > deadline:
                return pid
            await asyncio.sleep(0.2)

    async def _until_restarted(self, part: str, old_pid: int) -> None:
        deadline = time.monotonic() + self._recovery_timeout_s
        while time.monotonic() < deadline:
            pid = self._stack.pid_of(part)
            if pid is not None and pid != old_pid:
                return
            if part == "broker" and pid == old_pid:
                return  # paused, not killed: the same process goes on
            await asyncio.sleep(0.1)

    async def _until_ready(self, parts: tuple[str, ...]) -> bool:
        deadline = time.monotonic() + self._recovery_timeout_s
        urls = [f"{self._stack.url(s)}/readyz" for s in parts]
        async with httpx.AsyncClient(timeout=3) as http:
            while time.monotonic() < deadline:
                ok = 0
                for url in urls:
                    with contextlib.suppress(httpx.HTTPError):
                        ok += (await http.get(url)).status_code == 200
                if ok == len(urls):
                    return True
                await asyncio.sleep(0.2)
        return False
