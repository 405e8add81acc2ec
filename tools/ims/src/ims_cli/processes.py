"""Child processes of the local stack, each in its own process group.

A child gets its own session (so the terminal's Ctrl-C reaches only `ims`, which then
stops the children in order) and the parent-death signal (so a child does not outlive an
`ims` that was killed outright). Its exit is watched through a pidfd rather than through
its output pipe, which a grandchild may keep open.
"""

import asyncio
import contextlib
import ctypes
import os
import pwd
import signal
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_PR_SET_PDEATHSIG = 1
_background: set[asyncio.Task[None]] = set()
_MAX_LINE_BYTES = 64 * 1024
_EXIT_POLL_INTERVAL_S = 0.1


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """How to start one child and how to stop it."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    #: Run as this system user (only when ims itself runs as root).
    run_as: str | None = None
    #: Sent on stop, and by the kernel should ims die without stopping the child.
    stop_signal: signal.Signals = signal.SIGTERM
    #: Send `stop_signal` to the whole process group (False: to the leader only).
    stop_whole_group: bool = True
    stop_timeout_s: float = 10.0
    #: Output lines containing one of these are not shown.
    hidden_lines: tuple[str, ...] = ()


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def _load_prctl() -> Callable[[int, int], int] | None:
    """Linux's prctl from the C library already loaded into this process (None elsewhere)."""
    try:
        prctl: Callable[[int, int], int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_prctl = _load_prctl()


def _child_setup(death_signal: int, parent_pid: int) -> Callable[[], None]:
    """Runs in the child between fork and exec (after the switch to `run_as`)."""

    def setup() -> None:
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, death_signal)
        if os.getppid() != parent_pid:
            # ims died before the parent-death signal was armed.
            os._exit(1)

    return setup


@dataclass(frozen=True, slots=True)
class _Credentials:
    user: int | None = None
    group: int | None = None
    extra_groups: tuple[int, ...] | None = None


def _credentials(run_as: str | None) -> _Credentials:
    """Switch to `run_as` (with its own group only) when ims runs as root."""
    if run_as is None or os.geteuid() != 0:
        return _Credentials()
    entry = pwd.getpwnam(run_as)
    return _Credentials(user=entry.pw_uid, group=entry.pw_gid, extra_groups=())


class _LineProtocol(asyncio.Protocol):
    """Splits a pipe into lines for `on_line`; resolves `done` at end of file."""

    def __init__(self, on_line: Callable[[str], None], done: asyncio.Future[None]) -> None:
        self._on_line = on_line
        self._done = done
        self._buffer = bytearray()

    def _emit(self, raw: bytes) -> None:
        self._on_line(raw.decode("utf-8", errors="replace").rstrip("\r"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\n")) >= 0:
            self._emit(bytes(self._buffer[:end]))
            del self._buffer[: end + 1]
        if len(self._buffer) > _MAX_LINE_BYTES:
            self._emit(bytes(self._buffer))
            self._buffer.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._buffer:
            self._emit(bytes(self._buffer))
            self._buffer.clear()
        if not self._done.done():
            self._done.set_result(None)


def _start(spec: ProcessSpec) -> subprocess.Popen[bytes]:
    """fork+exec returns at once; the waiting happens in the event loop (pidfd, pipe)."""
    credentials = _credentials(spec.run_as)
    return subprocess.Popen(  # noqa: S603 - argv from our own specs, no shell
        spec.argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=dict(spec.env) if spec.env is not None else None,
        cwd=spec.cwd,
        start_new_session=True,
        preexec_fn=_child_setup(int(spec.stop_signal), os.getpid()),
        user=credentials.user,
        group=credentials.group,
        extra_groups=credentials.extra_groups,
    )


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send `sig` to a process group; a group that is gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class ChildProcess:
    """A started child: output delivered line by line, exit observed without threads."""

    def __init__(
        self,
        spec: ProcessSpec,
        popen: subprocess.Popen[bytes],
        exited: asyncio.Future[int],
        output_done: asyncio.Future[None],
        transport: asyncio.BaseTransport | None,
    ) -> None:
        self.spec = spec
        self._popen = popen
        self._exited = exited
        self._output_done = output_done
        self._transport = transport

    @classmethod
    async def spawn(cls, spec: ProcessSpec, on_line: Callable[[str], None]) -> "ChildProcess":
        """Start `spec`; its stdout and stderr lines go to `on_line`. Raises OSError."""
        loop = asyncio.get_running_loop()
        popen = _start(spec)
        exited: asyncio.Future[int] = loop.create_future()
        _watch_exit(loop, popen, exited)
        output_done: asyncio.Future[None] = loop.create_future()
        transport: asyncio.BaseTransport | None = None
        assert popen.stdout is not None
        try:
            transport, _ = await loop.connect_read_pipe(
                lambda: _LineProtocol(on_line, output_done), popen.stdout
            )
        except BaseException:
            signal_group(popen.pid, signal.SIGKILL)
            raise
        return cls(spec, popen, exited, output_done, transport)

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._exited.result() if self._exited.done() else None

    async def wait(self) -> int:
        """The exit code of the child (its output may still be draining)."""
        return await asyncio.shield(self._exited)

    async def drain_output(self, timeout_s: float = 2.0) -> None:
        """Wait for the rest of the output; give up on it after `timeout_s`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._output_done), timeout_s)
        if not self._output_done.done() and self._transport is not None:
            self._transport.close()

    def send(self, sig: signal.Signals, *, whole_group: bool = True) -> None:
        if whole_group:
            signal_group(self.pid, sig)
        elif self.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, sig)

    async def stop(self, *, force: asyncio.Event | None = None) -> int:
        """Stop signal, up to `stop_timeout_s` (or until `force`), then SIGKILL; reap the group."""
        if self.returncode is None:
            self.send(self.spec.stop_signal, whole_group=self.spec.stop_whole_group)
            if not await self._exited_within(self.spec.stop_timeout_s, force):
                self.send(signal.SIGKILL)
        code = await self.wait()
        # Anything the child left behind in its group goes too.
        self.send(signal.SIGKILL)
        await self.drain_output()
        return code

    async def _exited_within(self, timeout_s: float, force: asyncio.Event | None) -> bool:
        waiters: set[asyncio.Future[Any]] = {self._exited}
        force_task = asyncio.create_task(force.wait()) if force is not None else None
        if force_task is not None:
            waiters.add(force_task)
        try:
            # asyncio.wait leaves the futures alone: `_exited` stays intact.
            await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if force_task is not None:
                force_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await force_task
        return self._exited.done()


def _watch_exit(
    loop: asyncio.AbstractEventLoop, popen: subprocess.Popen[bytes], exited: asyncio.Future[int]
) -> None:
    """Resolve `exited` with the child's exit code as soon as it terminates."""

    def reap() -> bool:
        code = popen.poll()
        if code is None:
            return False
        if not exited.done():
            exited.set_result(code)
        return True

    try:
        pidfd = os.pidfd_open(popen.pid)
    except (AttributeError, OSError):
        task = loop.create_task(_poll_exit(reap))
        _background.add(task)
        task.add_done_callback(_background.discard)
        return

    def on_readable() -> None:
        if reap():
            loop.remove_reader(pidfd)
            os.close(pidfd)

    loop.add_reader(pidfd, on_readable)


async def _poll_exit(reap: Callable[[], bool]) -> None:
    # Fallback where pidfd_open is missing: nothing to await but time.
    while not reap():  # noqa: ASYNC110
        await asyncio.sleep(_EXIT_POLL_INTERVAL_S)


async def run_to_completion(spec: ProcessSpec) -> tuple[int, list[str]]:
    """Run a one-shot child; its exit code and output lines. Cancelling stops the child."""
    lines: list[str] = []
    child = await ChildProcess.spawn(spec, lines.append)
    try:
        code = await child.wait()
        child.send(signal.SIGKILL)
        await child.drain_output()
    except BaseException:
        await asyncio.shield(child.stop())
        raise
    return code, lines


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_cmdline(pid: int) -> list[str] | None:
    """The argv of a running process (Linux /proc), None when it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
