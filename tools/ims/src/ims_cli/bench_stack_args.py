"""`ims bench pipeline|replay|memory`: benchmarks against the running `ims up` (issue 8).

Their arguments and handlers; the work is imported only when a command runs, so that
`ims token` stays quick.
"""

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from ims_cli.paths import data_dir
from ims_cli.stack_config import ConfigError, StackConfig, load_stack_config


def _positive[N: (int, float)](kind: Callable[[str], N]) -> Callable[[str], N]:
    def parse(raw: str) -> N:
        try:
            value = kind(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError("must be positive")
        return value

    return parse


_AGAINST = (
    "Against the stack of `ims up` (its ports and data folder from the same environment "
    "variables as `ims up`, see `ims up --help`)"
)


def add_stack_benches(benches: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    _add_pipeline(benches)
    _add_replay(benches)
    _add_memory(benches)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--note", metavar="TEXT", help="a remark to write with the results")
    parser.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="append the results here (default docs/benchmarks.md)",
    )


def _add_pipeline(benches: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = benches.add_parser(
        "pipeline",
        help="create + submit → approved → MISA-linked latency and the highest rate held",
        description=(
            f"{_AGAINST}: customers arrive at a steady open-loop rate, are submitted, "
            "approved as soon as approval lists their review, and followed until MISA-linked; "
            "p50/p95/p99 per stage, then a ramp of doubling rates to find the highest held "
            "(every customer through, throughput ≥ 95% of offered, p99 bounded), each "
            "beside raw aiokafka produce → consume on the same broker. Appends to "
            "docs/benchmarks.md."
        ),
    )
    p.add_argument(
        "--rate",
        type=_positive(float),
        default=1.0,
        metavar="PER_S",
        help="the steady rate, customers per second (default 1)",
    )
    p.add_argument(
        "--duration",
        type=_positive(float),
        default=60.0,
        metavar="SECONDS",
        help="how long the steady rate runs (default 60)",
    )
    p.add_argument("--no-ramp", dest="ramp", action="store_false", help="skip the ramp")
    p.add_argument(
        "--start-rate",
        type=_positive(float),
        default=1.0,
        metavar="PER_S",
        help="the ramp's first rate (default 1), doubled each step",
    )
    p.add_argument(
        "--max-rate",
        type=_positive(float),
        default=64.0,
        metavar="PER_S",
        help="the ramp's last rate at most (default 64)",
    )
    p.add_argument(
        "--step-seconds",
        type=_positive(float),
        default=30.0,
        metavar="SECONDS",
        help="each ramp step's length (default 30)",
    )
    p.add_argument(
        "--p99-bound",
        type=_positive(float),
        default=10.0,
        metavar="SECONDS",
        help="p99 above this is not held (default 10)",
    )
    _common(p)
    p.set_defaults(handler=_pipeline)


def _add_replay(benches: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = benches.add_parser(
        "replay",
        help="a new consumer group rebuilding approval's state from a whole customer topic",
        description=(
            f"{_AGAINST}: publish N customer events (the real event models) to a fresh "
            "topic, then let approval's real consumer and handlers, in a new consumer group, "
            "rebuild its state into a fresh database; events/s beside raw aiokafka reading "
            "the same topic, and the rebuilt row counts checked. Appends to docs/benchmarks.md."
        ),
    )
    p.add_argument(
        "--events",
        type=_positive(int),
        default=1_000_000,
        metavar="N",
        help="events to publish and replay (default 1000000)",
    )
    p.add_argument(
        "--timeout",
        type=_positive(float),
        default=7200.0,
        metavar="SECONDS",
        help="give up on the replay after this long (default 7200)",
    )
    p.add_argument(
        "--keep", action="store_true", help="keep the scratch database and topic at the end"
    )
    _common(p)
    p.set_defaults(handler=_replay)


def _add_memory(benches: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = benches.add_parser(
        "memory",
        help="RSS of every process of the stack idle, under load and over a soak",
        description=(
            f"{_AGAINST}: the resident memory (with children) of each service, the MISA "
            "simulator, the broker and PostgreSQL, idle, then while the pipeline workload "
            "runs for the soak, sampled every interval: first, last, max and the growth "
            "slope, flagged above the threshold. Appends to docs/benchmarks.md."
        ),
    )
    p.add_argument(
        "--idle",
        type=_positive(float),
        default=30.0,
        metavar="SECONDS",
        help="idle sampling before the load (default 30)",
    )
    p.add_argument(
        "--soak",
        type=_positive(float),
        default=600.0,
        metavar="SECONDS",
        help="the soak under load (default 600)",
    )
    p.add_argument(
        "--interval",
        type=_positive(float),
        default=10.0,
        metavar="SECONDS",
        help="seconds between samples (default 10)",
    )
    p.add_argument(
        "--rate",
        type=_positive(float),
        default=1.0,
        metavar="PER_S",
        help="the load: customers per second through the pipeline (default 1)",
    )
    p.add_argument(
        "--threshold",
        type=_positive(float),
        default=10.0,
        metavar="PERCENT",
        help="flag a process whose trend grows more than this over the soak (default 10)",
    )
    _common(p)
    p.set_defaults(handler=_memory)


def _config(command: str) -> StackConfig | None:
    try:
        return load_stack_config(os.environ, data_dir())
    except ConfigError as exc:
        print(f"ims bench {command}: {exc}", file=sys.stderr)
        return None


def _pipeline(args: argparse.Namespace) -> int:
    from ims_cli.bench_pipeline import PipelineOptions, main_pipeline

    config = _config("pipeline")
    if config is None:
        return 2
    options = PipelineOptions(
        rate=args.rate,
        duration_s=args.duration,
        ramp=args.ramp,
        start_rate=args.start_rate,
        max_rate=args.max_rate,
        step_s=args.step_seconds,
        p99_bound_s=args.p99_bound,
        note=args.note,
    )
    return main_pipeline(config, options, output=args.output)


def _replay(args: argparse.Namespace) -> int:
    from ims_cli.bench_replay import ReplayOptions, main_replay

    config = _config("replay")
    if config is None:
        return 2
    options = ReplayOptions(
        events=args.events, timeout_s=args.timeout, keep=args.keep, note=args.note
    )
    return main_replay(config, options, output=args.output)


def _memory(args: argparse.Namespace) -> int:
    from ims_cli.bench_memory import MemoryOptions, main_memory

    config = _config("memory")
    if config is None:
        return 2
    options = MemoryOptions(
        idle_s=args.idle,
        soak_s=args.soak,
        interval_s=args.interval,
        rate=args.rate,
        threshold_pct=args.threshold,
        note=args.note,
    )
    return main_memory(config, options, output=args.output)
