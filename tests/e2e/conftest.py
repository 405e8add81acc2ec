"""The whole local stack as real processes: `ims up` on free ports with its own data folder.

This is exactly what `make run` starts (embedded PostgreSQL, Tansu, the four services, the
MISA simulator), isolated from anything else on the machine.

"No personal data in any log line of the whole run" (issue 8): when the session ends, every
line the stack printed is scanned (`ims_cli.log_scan`) for phone numbers, e-mail addresses,
tax codes and the personal values the tests sent (read back from the customer database
before the stack stops, plus any a test registered with `remember_personal`); a finding
fails the session, naming each offending line, masked. IMS_E2E_STACK_LOG=FILE also writes
the stack's whole output there.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from ims_cli.log_scan import Finding, find_personal_data, format_finding
from ims_cli.ports import free_ports
from shared.auth.dev_issuer import issue_token

READY_TIMEOUT_S = 240
#: Personal values a test sent that the customer database may not keep (refused input).
SENT_PERSONAL: set[str] = set()
#: Findings reported in the failure message; all of them go to the report file.
SHOWN_FINDINGS = 40


def remember_personal(*values: str) -> None:
    """Values a test sent that must never appear in the stack's output."""
    SENT_PERSONAL.update(v for v in values if v)


@dataclass
class Stack:
    process: subprocess.Popen[str]
    data_dir: Path
    ports: dict[str, int]
    lines: list[str] = field(default_factory=list)

    def url(self, part: str) -> str:
        return f"http://127.0.0.1:{self.ports[part]}"

    def token(self, username: str) -> str:
        key = (self.data_dir / "dev-issuer" / "private.pem").read_bytes()
        return issue_token(key, username=username)

    def auth(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}"}

    def child_pid(self, module: str) -> int:
        """The pid of `python -m <module> serve` started by this stack."""
        for child in psutil.Process(self.process.pid).children(recursive=True):
            try:
                cmd = child.cmdline()
            except psutil.Error:
                continue
            if "-m" in cmd and module in cmd and "serve" in cmd:
                return child.pid
        raise LookupError(f"{module} is not running")

    def kill(self, module: str) -> int:
        pid = self.child_pid(module)
        os.kill(pid, signal.SIGKILL)
        return pid

    def log(self) -> str:
        return "\n".join(self.lines)


#: The demo codes the e2e customers use (tests/e2e/test_thin_path.py new_customer).
DEMO_CODES = {
    "customer_type_code": "HKD",
    "customer_group_code": "TAPHOA",
    "channel_code": "GT",
    "payment_term_code": "NET15",
    "payment_method_code": "CK",
}


def wait_for_reference_replica(stack: Stack, timeout_s: float = 60) -> None:
    """`ready` means the customer service's replica of reference's lists is not empty;
    right after a first start, reference's snapshot may still be arriving item by item.
    Wait until the codes the tests use are known."""
    import httpx

    url = stack.url("customer")
    draft = httpx.post(
        f"{url}/api/v1/customers",
        json={"full_name": "Kiểm tra danh mục", **DEMO_CODES},
        headers=stack.auth("sales1"),
    )
    assert draft.status_code == 201, draft.text
    watched = {*DEMO_CODES, "sales_unit_code", "owner_employee_id"}
    deadline = time.monotonic() + timeout_s
    while True:
        # The draft has no phone, so submission always refuses it (it stays a draft);
        # what matters is whether the refusal still names a reference code.
        refused = httpx.post(
            f"{url}/api/v1/customers/{draft.json()['id']}/submit",
            headers=stack.auth("sales1"),
        )
        assert refused.status_code in (422, 503), refused.text
        fields = {e.get("field") for e in refused.json().get("errors", [])}
        if refused.status_code == 422 and not fields & watched:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"reference codes never reached the customer service: {fields}")
        time.sleep(0.5)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    # Not under pytest's tmp_path: a pytest starting meanwhile on this machine resets its
    # root to 0700, which PostgreSQL's own user then cannot pass through.
    data_dir = Path(tempfile.mkdtemp(prefix="ims-e2e-"))
    data_dir.chmod(0o755)
    # Picked together: separate picks can return the same port twice.
    parts = ("customer", "approval", "misa_sync", "reference", "simulator", "kafka", "pg")
    ports = dict(zip(parts, free_ports(len(parts)), strict=True))
    env = {
        **os.environ,
        "IMS_DATA_DIR": str(data_dir),
        "IMS_PG_PORT": str(ports["pg"]),
        "IMS_KAFKA_PORT": str(ports["kafka"]),
        "CUSTOMER_HTTP_PORT": str(ports["customer"]),
        "APPROVAL_HTTP_PORT": str(ports["approval"]),
        "MISA_SYNC_HTTP_PORT": str(ports["misa_sync"]),
        "REFERENCE_HTTP_PORT": str(ports["reference"]),
        "MISA_SIM_PORT": str(ports["simulator"]),
        "IMS_READY_TIMEOUT_S": str(READY_TIMEOUT_S),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("IMS_DATABASE_URL_BASE", None)
    ims = Path(sys.executable).with_name("ims")
    process = subprocess.Popen(
        [str(ims), "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    stack = Stack(process=process, data_dir=data_dir, ports=ports)
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            stack.lines.append(line.rstrip())
            if "ready" in line and "ims" in line:
                ready.set()

    pumping = threading.Thread(target=pump, daemon=True)
    pumping.start()
    deadline = time.monotonic() + READY_TIMEOUT_S + 30
    while not ready.is_set() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if not ready.is_set():
        process.kill()
        pytest.fail("ims up never printed its ready line:\n" + stack.log()[-6000:])
    known: set[str] = set()
    try:
        wait_for_reference_replica(stack)
        yield stack
    finally:
        try:
            known = personal_values_of(stack)
        except Exception as exc:  # the scan still runs on the pattern detectors
            stack.lines.append(f"[e2e] could not read the customers back: {type(exc).__name__}")
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        pumping.join(10)  # every line, shutdown included
    check_no_personal_data(stack, known | SENT_PERSONAL)  # keeps the folder if it fails
    shutil.rmtree(data_dir, ignore_errors=True)


#: The customer fields (and those of its delivery addresses and invoice profiles) that are
#: personal data: what the stack's output must never contain.
PERSONAL_COLUMNS = (
    "full_name", "phone", "email", "tax_code", "company_name", "contact_name", "address",
)  # fmt: skip
PERSONAL_KEYS = ("recipient_name", "phone", "address", "company_name", "tax_code", "email",
                 "buyer_name", "label")  # fmt: skip


def personal_values_of(stack: Stack) -> set[str]:
    """Every personal value of every customer in the stack's customer database."""
    import asyncio
    import json

    import asyncpg

    async def read() -> list[Any]:
        conn = await asyncpg.connect(
            f"postgresql://postgres@127.0.0.1:{stack.ports['pg']}/ims_customer", timeout=10
        )
        try:
            columns = ", ".join(PERSONAL_COLUMNS)
            return list(
                await conn.fetch(
                    f"SELECT {columns}, delivery_addresses::text AS d, "
                    "invoice_profiles::text AS i FROM customers"
                )
            )
        finally:
            await conn.close()

    values: set[str] = set()
    for row in asyncio.run(read()):
        values.update(str(row[c]) for c in PERSONAL_COLUMNS if row[c])
        for items in (row["d"], row["i"]):
            for item in json.loads(items or "[]"):
                values.update(str(item[k]) for k in PERSONAL_KEYS if item.get(k))
    return values


def check_no_personal_data(stack: Stack, known: set[str]) -> None:
    """Fail the session if any line the stack printed holds personal data."""
    dump = os.environ.get("IMS_E2E_STACK_LOG")
    if dump:
        Path(dump).write_text(
            f"{stack.log()}\n[e2e] scanned for {len(known)} personal values\n", encoding="utf-8"
        )
    findings: list[Finding] = find_personal_data(stack.lines, known)
    if not findings:
        return
    report = stack.data_dir / "personal-data-findings.txt"
    report.write_text(
        "\n".join(format_finding(f, "stack output") for f in findings) + "\n", encoding="utf-8"
    )
    shown = "\n".join(f"  {format_finding(f, 'stack output')}" for f in findings[:SHOWN_FINDINGS])
    more = len(findings) - SHOWN_FINDINGS
    pytest.fail(
        f"personal data in {len({f.line_no for f in findings})} line(s) the stack printed "
        f"during the e2e run (issue 8: no personal data in any log line), masked:\n{shown}"
        + (f"\n  … and {more} more in {report}" if more > 0 else f"\n(also in {report})"),
        pytrace=False,
    )
