"""`ims up`: run the local stack in the foreground until Ctrl-C or SIGTERM."""

import asyncio
import contextlib
import os
import signal
import sys
import traceback
from collections.abc import Mapping

from ims_cli.broker import BrokerError
from ims_cli.console import Console
from ims_cli.postgres import PostgresError
from ims_cli.stack import Stack, StartupError
from ims_cli.stack_config import READY_TIMEOUT_ENV, StackConfig

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_EXPECTED_ERRORS = (StartupError, PostgresError, BrokerError, OSError)


async def run_up(
    config: StackConfig,
    *,
    console: Console | None = None,
    base_env: Mapping[str, str] | None = None,
    stop: asyncio.Event | None = None,
    handle_signals: bool = True,
    python: str = sys.executable,
) -> int:
    """Start the stack, keep it running until `stop` (or a signal); 0 on an orderly stop."""
    console = console or Console()
    stop = stop or asyncio.Event()
    force = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            console.info(f"{sig.name} again: killing everything now")
            force.set()
        else:
            console.info(f"{sig.name}: stopping everything (send it again to kill at once)")
            stop.set()

    if handle_signals:
        for sig in _STOP_SIGNALS:
            loop.add_signal_handler(sig, on_signal, sig)
    stack = Stack(config, console, os.environ if base_env is None else base_env, python=python)
    console.info(f"data folder: {config.data_dir}")
    try:
        code = await _start_and_serve(stack, config, console, stop)
    finally:
        await stack.stop(force=force)
        if handle_signals:
            for sig in _STOP_SIGNALS:
                loop.remove_signal_handler(sig)
    console.info("everything stopped")
    return code


async def _start_and_serve(
    stack: Stack, config: StackConfig, console: Console, stop: asyncio.Event
) -> int:
    startup = asyncio.create_task(stack.start(), name="stack-start")
    stop_requested = asyncio.create_task(stop.wait(), name="stop-requested")
    try:
        done, _ = await asyncio.wait(
            {startup, stop_requested},
            timeout=config.ready_timeout_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if stop_requested in done:
            return 0
        if startup not in done:
            waiting = "; ".join(stack.waiting_for())
            console.error(
                f"the stack did not come up within {config.ready_timeout_s:g} s "
                f"({READY_TIMEOUT_ENV}); still waiting for: {waiting}"
            )
            return 1
        error = startup.exception()
        if error is not None:
            _report(console, error)
            return 1
        console.plain(stack.ready_line())
        console.info(
            "API docs at <service>/docs · bearer token: ims token sales1 · Ctrl-C stops everything"
        )
        await stop_requested
        return 0
    finally:
        for task in (startup, stop_requested):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(startup, stop_requested, return_exceptions=True)


def _report(console: Console, error: BaseException) -> None:
    if isinstance(error, _EXPECTED_ERRORS):
        console.error(str(error))
        return
    details = "".join(traceback.format_exception(error)).rstrip()
    console.error(f"unexpected failure while starting:\n{details}")
