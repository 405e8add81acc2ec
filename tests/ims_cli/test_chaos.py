"""The pure parts of `ims chaos`: the fault plan, the customers it sends, the invariant
checks on hand-built state, and the report (tests/e2e/test_chaos.py runs it for real)."""

import io
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import phonenumbers
from stdnum.vn import mst

from ims_cli.chaos_cmd import ChaosOptions, ChaosReport, known_personal_values, print_report
from ims_cli.chaos_faults import (
    BROKER_PAUSE,
    BROKER_RESTART,
    KILL,
    POSTGRES_RESTART,
    InjectedFault,
    PlannedFault,
    plan_faults,
)
from ims_cli.chaos_invariants import ChaosState, Invariant, TopicRecord, check
from ims_cli.chaos_stack import SERVICE_MODULES, chaos_env
from ims_cli.chaos_workload import DEMO_CODES, customer_spec, tax_code_for
from ims_cli.main import build_parser
from ims_cli.stack_config import load_stack_config
from shared.auth.demo import DEMO_USERS
from shared.events import topics

# ---- the fault plan --------------------------------------------------------------------


def test_the_plan_has_every_fault_at_seeded_moments_inside_the_workload() -> None:
    plan = plan_faults(7, kills_per_service=3)
    kinds = Counter((f.kind, f.target) for f in plan)
    assert {kinds[(KILL, s)] for s in SERVICE_MODULES} == {3}
    assert kinds[(BROKER_PAUSE, "broker")] == kinds[(BROKER_RESTART, "broker")] == 1
    assert kinds[(POSTGRES_RESTART, "postgres")] == 1
    moments = [f.at_progress for f in plan]
    assert moments == sorted(moments) and moments[0] >= 0.05 and moments[-1] <= 0.85
    assert plan_faults(7) == plan and plan_faults(8) != plan


def test_faults_describe_themselves() -> None:
    assert PlannedFault(0.1, KILL, "customer").describe() == "kill -9 customer"
    assert PlannedFault(0.1, BROKER_PAUSE, "broker").describe() == "broker-pause"


# ---- the customers ---------------------------------------------------------------------


def test_customers_are_valid_and_unique() -> None:
    specs = [customer_spec(i, seed=3) for i in range(2000)]
    for field in ("full_name", "phone", "email", "tax_code"):
        assert len({s.payload[field] for s in specs}) == 2000, field
    for s in specs[:300]:
        assert mst.is_valid(s.payload["tax_code"])
        assert phonenumbers.is_valid_number(phonenumbers.parse(s.payload["phone"], "VN"))
        assert s.payload.items() >= DEMO_CODES.items()
    assert {s.owner for s in specs} == {"sales1", "sales2"}
    assert customer_spec(5, seed=3) == specs[5] and customer_spec(5, seed=4) != specs[5]


def test_tax_codes_skip_a_check_digit_of_ten() -> None:
    codes = {tax_code_for(i, seed) for i in range(500) for seed in (0, 1)}
    assert all(len(c) == 10 and mst.is_valid(c) for c in codes)


def test_known_personal_values_cover_phone_forms_but_not_staff_names() -> None:
    spec = customer_spec(1, seed=1)
    known = known_personal_values([spec])
    digits = str(spec.payload["phone"]).replace(" ", "")
    assert {digits, "+84" + digits[1:], spec.payload["email"], spec.tax_code} <= set(known)
    assert not {u.name for u in DEMO_USERS.values()} & set(known)


# ---- the invariants on hand-built state ------------------------------------------------


def _record(partition: int, offset: int, event_id: str, event_type: str) -> TopicRecord:
    return TopicRecord(partition, offset, event_id, event_type)


def healthy_state() -> tuple[ChaosState, list[str]]:
    """Two customers through the whole flow, every event where it belongs."""
    state = ChaosState(handled={"approval": {"S"}, "customer": {"A", "L"}, "misa_sync": {"S"}})
    ids = [str(uuid.uuid4()) for _ in range(2)]
    events: dict[str, list[TopicRecord]] = {t: [] for t in topics.ALL_TOPICS}
    for n, cid in enumerate(ids):
        code = f"KH{n + 1:06d}"
        state.customers[cid] = {
            "id": cid,
            "status": "active",
            "customer_code": code,
            "version": 4,
            "misa_code": code,
            "full_name": f"Tạp hóa {n}",
            "phone": f"+8490000000{n}",
            "email": f"a{n}@vidu.vn",
            "tax_code": f"010000000{n}",
            "address": "1 Phố Huế",
        }
        for action in ("created", "submitted", "approved", "misa_linked"):
            state.history[(cid, action)] = 1
        state.reviews.append(
            {
                "id": f"r{n}",
                "customer_id": cid,
                "kind": "new",
                "status": "approved",
                "customer_code": code,
            }
        )
        state.codes.append({"code": code, "customer_id": cid})
        state.replica[cid] = {"status": "active", "customer_code": code, "version": 4}
        object_id = f"obj-{n}"
        state.links[cid] = {
            "state": "synced",
            "misa_code": code,
            "customer_code": code,
            "account_object_id": object_id,
        }
        state.misa_objects.append(
            {
                "account_object_id": object_id,
                "account_object_code": code,
                "account_object_name": f"Tạp hóa {n}",
                "tel": f"+8490000000{n}",
                "email_address": f"a{n}@vidu.vn",
                "company_tax_code": f"010000000{n}",
                "address": "1 Phố Huế",
                "is_customer": True,
            }
        )
        events[topics.CUSTOMER_EVENTS].append(_record(0, n, f"s{n}", "S"))
        events[topics.APPROVAL_EVENTS].append(_record(0, n, f"a{n}", "A"))
        events[topics.MISA_EVENTS].append(_record(0, n, f"l{n}", "L"))
    state.topics = {**events, **{topics.dlq(t): [] for t in topics.ALL_TOPICS}}
    state.outboxes = {
        "customer": [(r.event_id or "", True) for r in events[topics.CUSTOMER_EVENTS]],
        "approval": [(r.event_id or "", True) for r in events[topics.APPROVAL_EVENTS]],
        "misa_sync": [(r.event_id or "", True) for r in events[topics.MISA_EVENTS]],
    }
    state.inboxes = {
        "approval": {topics.CUSTOMER_EVENTS: {"s0", "s1"}},
        "misa_sync": {topics.CUSTOMER_EVENTS: {"s0", "s1"}},
        "customer": {topics.APPROVAL_EVENTS: {"a0", "a1"}, topics.MISA_EVENTS: {"l0", "l1"}},
    }
    state.committed = {
        "approval": {(topics.CUSTOMER_EVENTS, 0): 2},
        "misa_sync": {(topics.CUSTOMER_EVENTS, 0): 2},
        "customer": {(topics.APPROVAL_EVENTS, 0): 2, (topics.MISA_EVENTS, 0): 2},
    }
    return state, ids


def failing(state: ChaosState, ids: list[str]) -> dict[str, Invariant]:
    return {
        i.name.split(" ")[0] + " " + i.name.split(" ")[1]: i for i in check(state, ids) if not i.ok
    }


def test_a_healthy_state_holds_every_invariant() -> None:
    state, ids = healthy_state()
    results = check(state, ids)
    assert all(i.ok for i in results), [i for i in results if not i.ok]
    assert results[0].count == "2 of 2"
    assert len(results) == 9


def test_a_customer_left_pending_is_reported_as_not_active_and_stuck() -> None:
    state, ids = healthy_state()
    state.customers[ids[0]]["status"] = "pending_approval"
    state.reviews[0]["status"] = "pending"
    bad = failing(state, ids)
    assert "every submitted" in bad and "nothing stuck:" in bad
    assert bad["every submitted"].count == "1 of 2"


def test_a_code_used_twice_and_a_disagreement_are_reported() -> None:
    state, ids = healthy_state()
    state.customers[ids[1]]["customer_code"] = "KH000001"
    bad = failing(state, ids)
    assert {"no code", "approval and"} <= set(bad)


def test_a_missing_or_doubled_misa_object_is_reported() -> None:
    state, ids = healthy_state()
    state.misa_objects.append(dict(state.misa_objects[0], account_object_id="other"))
    state.misa_objects[1]["tel"] = "+84911111111"
    bad = failing(state, ids)["exactly one"]
    assert bad.count == "0 of 2"
    assert any("2 MISA objects" in p for p in bad.problems)
    assert any("tel" in p for p in bad.problems)


def test_an_unpublished_or_vanished_outbox_event_is_reported() -> None:
    state, ids = healthy_state()
    state.outboxes["customer"].append(("x1", False))
    state.outboxes["approval"].append(("x2", True))  # marked sent, not on the topic
    bad = failing(state, ids)["every event"]
    assert len(bad.problems) == 2


def test_a_lost_event_a_phantom_and_a_double_application_are_reported() -> None:
    state, ids = healthy_state()
    state.inboxes["misa_sync"][topics.CUSTOMER_EVENTS].discard("s1")
    state.inboxes["customer"][topics.MISA_EVENTS].add("ghost")
    state.history[(ids[0], "approved")] = 2
    bad = failing(state, ids)
    assert len(bad["every consumer's"].problems) == 2
    assert any("2 'approved'" in p for p in bad["no event"].problems)


def test_unhandled_types_and_duplicates_on_the_topic_are_fine() -> None:
    state, ids = healthy_state()
    records = state.topics[topics.CUSTOMER_EVENTS]
    records.append(_record(1, 0, "u1", "Unknown"))  # nobody handles it: not in any inbox
    records.append(_record(1, 1, "s0", "S"))  # published twice: at least once is allowed
    for group in ("approval", "misa_sync"):
        state.committed[group][(topics.CUSTOMER_EVENTS, 1)] = 2
    assert all(i.ok for i in check(state, ids))


def test_dead_letters_and_consumer_lag_are_reported() -> None:
    state, ids = healthy_state()
    state.topics[topics.dlq(topics.MISA_EVENTS)].append(_record(0, 0, "d", "L"))
    state.committed["customer"][(topics.MISA_EVENTS, 0)] = 1
    bad = failing(state, ids)
    assert bad["the dead-letter"].count == "1 records"
    assert "lag 1" in bad["nothing stuck:"].count


# ---- the report and the command line ---------------------------------------------------


def test_the_report_lists_every_invariant_with_its_mark() -> None:
    state, ids = healthy_state()
    report = ChaosReport(ChaosOptions(customers=2))
    report.invariants = [*check(state, ids), Invariant.of("broken", "1", ["why"])]
    report.faults = [InjectedFault(PlannedFault(0.2, KILL, "customer"), 3.5, 123, 4.25)]
    out = io.StringIO()
    print_report(report, out)
    text = out.getvalue()
    assert "✓ every submitted customer is active with exactly one code: 2 of 2" in text
    assert "✗ broken: 1" in text and "      why" in text
    assert "kill -9 customer" in text and "recovered in 4.2 s" in text
    assert text.rstrip().endswith("result: FAILED")


def test_the_command_line() -> None:
    args = build_parser().parse_args(["chaos", "--customers", "200", "--seed", "1"])
    assert (args.customers, args.seed, args.concurrency, args.kills, args.pause) == (
        200,
        1,
        8,
        3,
        20,
    )
    assert args.timeout == 3600 and args.keep_data is False


def test_the_child_stack_gets_free_ports_and_durable_broker_storage(tmp_path: Path) -> None:
    env: dict[str, Any] = chaos_env(tmp_path, {"IMS_DATABASE_URL_BASE": "postgresql://x"})
    assert "IMS_DATABASE_URL_BASE" not in env
    config = load_stack_config(env, tmp_path)
    assert config.broker_storage == "s3" and config.embedded_postgres
    assert len(set(config.listening_ports().values())) == 8


def test_personal_data_in_the_log_is_counted_by_line_and_masked() -> None:
    from ims_cli.chaos_cmd import personal_data_invariant

    spec = customer_spec(2, seed=1)
    lines = [
        "customer | event_applied event_id=3f0c9a52-1f7e-4f7e-9d0e-1a2b3c4d5e6f",
        f"customer | oops phone={spec.payload['phone']}",
        f"approval | oops name={spec.payload['full_name']}",
    ]
    found = personal_data_invariant(lines, known_personal_values([spec]))
    assert not found.ok and found.count == "2 of 3 lines"
    assert all(str(spec.payload["full_name"]) not in p for p in found.problems)
    assert personal_data_invariant(lines[:1], []).ok


def test_the_stacks_ports_are_distinct() -> None:
    """Eight separate free_port() picks once gave the S3 server and customer one port."""
    from ims_cli.ports import free_ports

    for _ in range(20):
        ports = free_ports(8)
        assert len(set(ports)) == 8
