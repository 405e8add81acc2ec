"""The `ims chaos` sub-command's arguments (light: the run itself is imported on use)."""

import argparse
from pathlib import Path


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def add_chaos_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    chaos = commands.add_parser(
        "chaos",
        help="a workload on an own stack while its parts are killed; check invariants (issue 8)",
        description=(
            "Start an own `ims up` on free ports (fresh data folder, durable broker storage), "
            "have concurrent clients create, submit and approve N customers while kill -9 "
            "hits each service several times, the broker is paused (SIGSTOP) and restarted, "
            "PostgreSQL is restarted and 20% of MISA calls fail (500, timeout, 429, expired "
            "token); then wait for quiescence and check the invariants: every customer active "
            "with one unique code, approval and customer agree, one right MISA object each, "
            "every outbox event published, no event lost or applied twice, empty DLQs, "
            "nothing pending, no personal data in the stack's log. Prints each invariant with "
            "its count, the faults with their recovery times and the throughput; exits 0 only "
            "if every invariant holds."
        ),
    )
    chaos.add_argument(
        "--customers", type=_positive_int, default=2000, metavar="N", help="default 2000"
    )
    chaos.add_argument(
        "--concurrency", type=_positive_int, default=8, metavar="C", help="clients (default 8)"
    )
    chaos.add_argument("--seed", type=int, default=1, metavar="S", help="default 1")
    chaos.add_argument(
        "--timeout",
        type=_positive_int,
        default=3600,
        metavar="SECONDS",
        help="bound of the workload and the wait for quiescence (default 3600)",
    )
    chaos.add_argument(
        "--kills",
        type=_positive_int,
        default=3,
        metavar="K",
        help="kill -9 of each service K times (default 3)",
    )
    chaos.add_argument(
        "--pause",
        type=_positive_int,
        default=20,
        metavar="SECONDS",
        help="how long the broker stays stopped (default 20)",
    )
    chaos.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="the stack's data folder (default: a new temp one)",
    )
    chaos.add_argument(
        "--keep-data", action="store_true", help="keep the data folder and its stack.log"
    )
    chaos.set_defaults(handler=run_chaos_command)


def run_chaos_command(args: argparse.Namespace) -> int:
    from ims_cli.chaos_cmd import ChaosOptions, main_chaos

    return main_chaos(
        ChaosOptions(
            customers=args.customers,
            concurrency=args.concurrency,
            seed=args.seed,
            timeout_s=args.timeout,
            kills_per_service=args.kills,
            broker_pause_s=args.pause,
            keep_data=args.keep_data,
            data_dir=args.data_dir,
        )
    )
