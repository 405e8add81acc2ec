"""Children in their own process group: output, exit, restart with back-off, stop."""

import asyncio
import io
import os
import signal
import sys
import time
from pathlib import Path

from ims_cli.console import Console
from ims_cli.processes import ChildProcess, ProcessSpec, pid_alive
from ims_cli.supervisor import Backoff, ManagedProcess


def python(code: str, name: str = "child", **kwargs: object) -> ProcessSpec:
    return ProcessSpec(name=name, argv=(sys.executable, "-c", code), **kwargs)  # type: ignore[arg-type]


async def eventually(condition, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def test_backoff_doubles_up_to_the_maximum_and_resets_after_a_long_run() -> None:
    backoff = Backoff(initial_s=1, maximum_s=30, reset_after_s=60)

    delays = [backoff.next_delay(uptime_s=0.5) for _ in range(7)]

    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.next_delay(uptime_s=120) == 1
    assert backoff.next_delay(uptime_s=1) == 2


async def test_exit_is_seen_even_when_a_grandchild_keeps_the_pipe_open() -> None:
    lines: list[str] = []
    spec = ProcessSpec(
        name="sh", argv=("sh", "-c", "sleep 30 & echo started; exit 3"), stop_timeout_s=2
    )
    child = await ChildProcess.spawn(spec, lines.append)

    code = await asyncio.wait_for(child.wait(), 5)

    assert code == 3
    await child.stop()  # kills the sleeping grandchild, closing the pipe
    assert lines == ["started"]


async def test_lines_are_prefixed_and_hidden_lines_dropped() -> None:
    out = io.StringIO()
    console = Console(out=out, colour=False)
    spec = python(
        "import sys; print('one'); print('secret ready to go', file=sys.stderr); print('two')",
        name="demo",
        hidden_lines=("ready to go",),
    )
    process = ManagedProcess(spec, console, restart=False)
    await process.start()

    assert await asyncio.wait_for(process.wait_failed(), 10) == 0
    await process.stop()

    assert out.getvalue().splitlines() == ["demo | one", "demo | two"]


async def test_a_crashing_child_is_restarted_with_backoff(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(out=out, colour=False)
    counter = tmp_path / "starts"
    code = (
        "import pathlib, sys, time\n"
        f"p = pathlib.Path({str(counter)!r})\n"
        "n = int(p.read_text()) + 1 if p.exists() else 1\n"
        "p.write_text(str(n))\n"
        "if n < 3: sys.exit(7)\n"
        "time.sleep(60)\n"
    )
    restarted: list[int] = []

    async def after_restart() -> None:
        restarted.append(process.restarts)

    process = ManagedProcess(
        python(code, name="flaky"),
        console,
        after_restart=after_restart,
        backoff=Backoff(initial_s=0.1, maximum_s=0.2),
    )
    await process.start()
    await eventually(lambda: counter.exists() and counter.read_text() == "3")
    assert process.running
    await process.stop()

    text = out.getvalue()
    assert "flaky stopped unexpectedly (exit code 7); restarting in 0.1 s" in text
    assert "restarting in 0.2 s" in text
    assert restarted == [1, 2]
    assert not process.running


async def test_stop_terminates_the_whole_group_and_escalates_to_sigkill(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    code = (
        "import signal, subprocess, sys, time, pathlib\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "g = subprocess.Popen(['sleep', '60'])\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(g.pid))\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n"
    )
    process = ManagedProcess(
        python(code, name="stubborn", stop_timeout_s=0.5), Console(out=io.StringIO())
    )
    await process.start()
    await eventually(pid_file.exists)
    grandchild = int(pid_file.read_text())
    leader = process.pid
    assert leader is not None
    assert os.getpgid(grandchild) == leader  # its own group, led by the child

    started = time.monotonic()
    await process.stop()

    assert time.monotonic() - started < 5
    assert not pid_alive(leader)
    await eventually(lambda: not pid_alive(grandchild) or _is_zombie(grandchild))


async def test_force_cuts_the_grace_period_short() -> None:
    process = ManagedProcess(
        python(
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('up', flush=True); time.sleep(60)",
            name="slow",
            stop_timeout_s=30,
        ),
        Console(out=io.StringIO()),
    )
    await process.start()
    await asyncio.sleep(0.3)
    force = asyncio.Event()
    asyncio.get_running_loop().call_later(0.2, force.set)

    started = time.monotonic()
    await process.stop(force=force)

    assert time.monotonic() - started < 5


async def test_stop_signal_can_go_to_the_leader_only() -> None:
    out = io.StringIO()
    spec = python(
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, lambda *a: (print('fast shutdown', flush=True), sys.exit(0)))\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n",
        name="pg",
        stop_signal=signal.SIGINT,
        stop_whole_group=False,
    )
    process = ManagedProcess(spec, Console(out=out, colour=False))
    await process.start()
    await eventually(lambda: "up" in out.getvalue())

    await process.stop()

    assert "pg  | fast shutdown" in out.getvalue()


def _is_zombie(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" in status
