"""Keeping a child running: prefixed output, restart with back-off, orderly stop."""

import asyncio
import time
from collections.abc import Awaitable, Callable

from ims_cli.console import Console
from ims_cli.processes import ChildProcess, ProcessSpec, describe_exit

Hook = Callable[[], Awaitable[None]]


class Backoff:
    """1 s, 2 s, 4 s … up to `maximum`; back to `initial` after a run of `reset_after_s`."""

    def __init__(
        self, initial_s: float = 1.0, maximum_s: float = 30.0, reset_after_s: float = 60.0
    ) -> None:
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self.reset_after_s = reset_after_s
        self._next_s = initial_s

    def next_delay(self, uptime_s: float) -> float:
        """The pause before restarting a child that ran `uptime_s` seconds."""
        if uptime_s >= self.reset_after_s:
            self._next_s = self.initial_s
        delay = self._next_s
        self._next_s = min(self._next_s * 2, self.maximum_s)
        return delay


class ManagedProcess:
    """One child under supervision.

    Until `enable_restart()` an exit is final and reported by `wait_failed()` (a part
    that cannot even start is a start-up error); afterwards the child is restarted with
    back-off; `before_restart` runs before and `after_restart` after each restart.
    """

    def __init__(
        self,
        spec: ProcessSpec,
        console: Console,
        *,
        restart: bool = True,
        before_restart: Hook | None = None,
        after_restart: Hook | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.spec = spec
        self._console = console
        self._restart = restart
        self._before_restart = before_restart
        self._after_restart = after_restart
        self._backoff = backoff or Backoff()
        self._child: ChildProcess | None = None
        self._task: asyncio.Task[None] | None = None
        self._failed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._stopping = False
        self.restarts = 0
        console.register(spec.name)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    @property
    def running(self) -> bool:
        return self._child is not None and self._child.returncode is None

    def _show(self, text: str) -> None:
        if not any(hidden in text for hidden in self.spec.hidden_lines):
            self._console.line(self.spec.name, text)

    async def start(self) -> None:
        """Start the child (OSError if it cannot be started) and begin watching it."""
        self._child = await ChildProcess.spawn(self.spec, self._show)
        self._task = asyncio.create_task(self._supervise(), name=f"supervise-{self.name}")

    def enable_restart(self) -> None:
        self._restart = True

    async def wait_failed(self) -> int:
        """Returns the exit code if the child exits while restarts are off."""
        return await asyncio.shield(self._failed)

    async def _supervise(self) -> None:
        while True:
            assert self._child is not None
            started = time.monotonic()
            code = await self._child.wait()
            await self._child.drain_output()
            if self._stopping:
                return
            # Whatever the dead child left in its group (a worker holding the port) goes.
            await self._child.stop()
            if not self._restart:
                self._failed.set_result(code)
                return
            await self._restart_after(time.monotonic() - started, describe_exit(code))

    async def _restart_after(self, uptime_s: float, why: str) -> None:
        while True:
            delay = self._backoff.next_delay(uptime_s)
            self._console.info(
                f"{self.name} stopped unexpectedly ({why}); restarting in {delay:g} s"
            )
            await asyncio.sleep(delay)
            try:
                if self._before_restart is not None:
                    await self._before_restart()
                self._child = await ChildProcess.spawn(self.spec, self._show)
            except Exception as exc:
                why, uptime_s = f"cannot start: {exc}", 0.0
                continue
            self.restarts += 1
            self._console.info(f"{self.name} restarted (pid {self._child.pid})")
            break
        if self._after_restart is not None:
            try:
                await self._after_restart()
            except Exception as exc:
                self._console.error(f"{self.name}: after restart: {exc}")

    async def stop(self, *, force: asyncio.Event | None = None) -> None:
        """Stop for good: no more restarts; stop signal, then SIGKILL after the timeout."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception as exc:  # a bug in supervision must not block the stop
                self._console.error(f"{self.name}: supervision failed: {exc!r}")
        if self._child is not None:
            await self._child.stop(force=force)
