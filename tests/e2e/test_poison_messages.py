"""Poison messages against the real services (issue 8, the CI size of `ims poison`).

Every consumed topic gets 50 poison messages of every kind with valid events among them:
each poison record must reach its `.dlq` from every consumer with an `x-error` reason,
an unknown `ce_type` is skipped (CONTRACT.md §8: tolerated), and every valid event is
applied meanwhile.
"""

import asyncio
import io
import time

from ims_cli import poison
from ims_cli.poison_cmd import print_report, run_poison
from ims_cli.stack_config import load_stack_config
from tests.e2e.conftest import Stack

POISON_PER_TOPIC = 50


def test_poison_is_dead_lettered_unknown_types_skipped_and_valid_events_applied(
    stack: Stack,
) -> None:
    env = {
        "IMS_PG_PORT": str(stack.ports["pg"]),
        "IMS_KAFKA_PORT": str(stack.ports["kafka"]),
        "CUSTOMER_HTTP_PORT": str(stack.ports["customer"]),
        "APPROVAL_HTTP_PORT": str(stack.ports["approval"]),
        "MISA_SYNC_HTTP_PORT": str(stack.ports["misa_sync"]),
        "REFERENCE_HTTP_PORT": str(stack.ports["reference"]),
        "MISA_SIM_PORT": str(stack.ports["simulator"]),
    }
    config = load_stack_config(env, stack.data_dir)
    started = time.monotonic()
    report = asyncio.run(run_poison(config, messages=POISON_PER_TOPIC, timeout_s=45, max_lag_s=15))
    table = io.StringIO()
    print_report(report, table)
    assert report.ok, table.getvalue() + "\n" + stack.log()[-4000:]
    assert time.monotonic() - started < 60

    by_kind: dict[str, set[str]] = {}
    for (poison_id, _consumer), outcome in report.outcomes.items():
        kind = next(s.message.kind for s in report.sent if s.message.poison_id == poison_id)
        by_kind.setdefault(kind, set()).add(outcome)
    assert by_kind["unknown-type"] == {"skip"}
    assert by_kind[poison.VALID] == {"apply"}
    assert {k for k, outcomes in by_kind.items() if outcomes == {"dead-letter"}} == set(
        poison.KINDS
    ) - {"unknown-type"}
    # Every copy names its reason, and none quotes the NUL-bearing or huge values.
    assert all(reason and len(reason) < 2001 for reason in report.reasons.values())
    assert not any("\x00" in reason for reason in report.reasons.values())
