"""The whole local stack as real processes: `ims up` on free ports with its own data folder.

This is exactly what `make run` starts (embedded PostgreSQL, Tansu, the four services, the
MISA simulator), isolated from anything else on the machine.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from shared.auth.dev_issuer import issue_token
from tests.fixtures.infra import free_port

READY_TIMEOUT_S = 240


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
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("ims-stack")
    data_dir.chmod(0o755)
    ports = {
        "customer": free_port(),
        "approval": free_port(),
        "misa_sync": free_port(),
        "reference": free_port(),
        "simulator": free_port(),
        "kafka": free_port(),
        "pg": free_port(),
    }
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

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + READY_TIMEOUT_S + 30
    while not ready.is_set() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if not ready.is_set():
        process.kill()
        pytest.fail("ims up never printed its ready line:\n" + stack.log()[-6000:])
    try:
        wait_for_reference_replica(stack)
        yield stack
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
