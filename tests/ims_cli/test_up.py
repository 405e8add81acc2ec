"""`ims up` end to end with stand-in services: start order, ready line, failures, clean stop.

The real services are replaced by tiny HTTP servers (see conftest.FAKE_APP); PostgreSQL
and the broker are the real ones.
"""

import asyncio
import io
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from ims_cli.console import Console
from ims_cli.ports import port_is_free
from ims_cli.postgres import ensure_databases, prepare_embedded_postgres, wait_accepting_connections
from ims_cli.stack_config import ServiceDef, SimulatorDef, StackConfig, load_stack_config
from ims_cli.supervisor import ManagedProcess
from ims_cli.up_cmd import run_up

SERVICES = (
    ServiceDef("alpha", "fake_alpha", "ALPHA_", 0, "ims_alpha"),
    ServiceDef("beta", "fake_beta", "BETA_", 0, "ims_beta"),
)
SIMULATOR = SimulatorDef("fake_sim", "fake_sim", 0)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data folder for the module: initdb once, later runs reuse the cluster."""
    return tmp_path_factory.mktemp("ims-data")


def make_config(data_dir: Path, ports: Callable[[int], list[int]], **env: str) -> StackConfig:
    pg, kafka, alpha, beta, sim = ports(5)
    settings = {
        "IMS_PG_PORT": str(pg),
        "IMS_KAFKA_PORT": str(kafka),
        "ALPHA_HTTP_PORT": str(alpha),
        "BETA_HTTP_PORT": str(beta),
        "MISA_SIM_PORT": str(sim),
        **env,
    }
    return load_stack_config(settings, data_dir, services=SERVICES, simulator=SIMULATOR)


class Run:
    """`run_up` in a task, its output captured."""

    def __init__(self, config: StackConfig, base_env: dict[str, str], **kwargs: object) -> None:
        self.out, self.err = io.StringIO(), io.StringIO()
        self.stop = asyncio.Event()
        self.config = config
        self.task = asyncio.create_task(
            run_up(
                config,
                console=Console(out=self.out, err=self.err, colour=False),
                base_env=base_env,
                stop=self.stop,
                **kwargs,  # type: ignore[arg-type]
            )
        )

    def ready_lines(self) -> list[str]:
        return [line for line in self.out.getvalue().splitlines() if "ready" in line.lower()]

    async def until_ready(self, timeout_s: float = 60) -> str:
        deadline = time.monotonic() + timeout_s
        while not self.ready_lines():
            assert not self.task.done(), self.out.getvalue() + self.err.getvalue()
            assert time.monotonic() < deadline, self.out.getvalue() + self.err.getvalue()
            await asyncio.sleep(0.05)
        return self.ready_lines()[0]

    async def result(self, timeout_s: float = 60) -> int:
        return await asyncio.wait_for(self.task, timeout_s)


def base_env(fake_apps_dir: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(fake_apps_dir), "PASSED_THROUGH": "yes", **extra}


def assert_all_stopped(config: StackConfig) -> None:
    for part, port in config.listening_ports().items():
        assert port_is_free(config.host, port), f"{part} still listens on {port}"
    assert not (config.pgdata / "postmaster.pid").exists()


@pytest.mark.timeout(120)
async def test_up_ready_line_then_sigterm_stops_everything(
    data_dir: Path, fake_apps_dir: Path, ports: Callable[[int], list[int]]
) -> None:
    config = make_config(data_dir, ports)
    run = Run(config, base_env(fake_apps_dir))

    line = await run.until_ready()

    alpha, beta = (config.service_ports[s.name] for s in SERVICES)
    assert line == (
        f"ims ready: alpha http://127.0.0.1:{alpha} · beta http://127.0.0.1:{beta} · "
        f"fake_sim http://127.0.0.1:{config.simulator_port} · "
        f"broker 127.0.0.1:{config.kafka_port} · postgres 127.0.0.1:{config.pg_port}"
    )
    async with httpx.AsyncClient(trust_env=False) as client:
        answer = (await client.get(f"http://127.0.0.1:{alpha}/env")).json()
    env = answer["env"]
    assert env["ALPHA_DATABASE_URL"] == (
        f"postgresql+asyncpg://postgres@127.0.0.1:{config.pg_port}/ims_alpha"
    )
    assert env["ALPHA_KAFKA_BOOTSTRAP_SERVERS"] == f"127.0.0.1:{config.kafka_port}"
    assert env["ALPHA_JWT_PUBLIC_KEY_FILE"] == str(data_dir / "dev-issuer" / "public.pem")
    assert env["PASSED_THROUGH"] == "yes"
    assert (data_dir / "dev-issuer" / "public.pem").exists()

    # SIGTERM (as `kill` or a process manager would send it) stops the stack, exit 0.
    os.kill(os.getpid(), signal.SIGTERM)

    assert await run.result() == 0
    assert len(run.ready_lines()) == 1
    output = run.out.getvalue()
    order = [
        output.index(f"stopping {part}") for part in ("the services", "the broker", "postgres")
    ]
    assert order == sorted(order)
    assert_all_stopped(config)
    assert not _alive(answer["pid"])


@pytest.mark.timeout(120)
async def test_a_failing_migration_is_reported_and_everything_stops(
    data_dir: Path, fake_apps_dir: Path, ports: Callable[[int], list[int]]
) -> None:
    config = make_config(data_dir, ports)
    run = Run(config, base_env(fake_apps_dir, BETA_FAKE_MIGRATE_FAIL="1"), handle_signals=False)

    assert await run.result() == 1

    assert re.search(r"^beta migrate +\| boom: the migration cannot run$", run.out.getvalue(), re.M)
    assert "migration failed: beta (exit code 3)" in run.err.getvalue()
    assert run.ready_lines() == []
    assert_all_stopped(config)


@pytest.mark.timeout(120)
async def test_timeout_names_what_does_not_answer(
    data_dir: Path, fake_apps_dir: Path, ports: Callable[[int], list[int]]
) -> None:
    config = make_config(data_dir, ports, IMS_READY_TIMEOUT_S="5")
    run = Run(config, base_env(fake_apps_dir, BETA_FAKE_STATUS="503"), handle_signals=False)

    assert await run.result() == 1

    error = run.err.getvalue()
    assert "did not come up within 5 s" in error
    assert "beta (HTTP 503" in error
    assert "alpha" not in error.split("still waiting for:")[1]
    assert run.ready_lines() == []
    assert_all_stopped(config)


@pytest.mark.timeout(60)
async def test_a_port_in_use_is_named_before_anything_starts(
    data_dir: Path,
    fake_apps_dir: Path,
    ports: Callable[[int], list[int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("ims_cli.stack._PORTS_GRACE_S", 0.5)
    config = make_config(data_dir, ports)
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", config.kafka_port)
    try:
        run = Run(config, base_env(fake_apps_dir), handle_signals=False)
        assert await run.result() == 1
    finally:
        blocker.close()
        await blocker.wait_closed()

    assert f"broker needs port {config.kafka_port}" in run.err.getvalue()
    assert "postgres |" not in run.out.getvalue()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.timeout(120)
async def test_an_external_postgres_is_used_and_left_running(
    tmp_path: Path, data_dir: Path, fake_apps_dir: Path, ports: Callable[[int], list[int]]
) -> None:
    console = Console(out=io.StringIO(), colour=False)
    (external_port,) = ports(1)
    server = await prepare_embedded_postgres(tmp_path / "external", external_port, console.info)
    external = ManagedProcess(server.process_spec(), console, restart=False)
    await external.start()
    try:
        await wait_accepting_connections(server.dsn, 30)
        config = make_config(
            data_dir,
            ports,
            IMS_DATABASE_URL_BASE=f"postgresql+asyncpg://postgres@127.0.0.1:{external_port}",
        )
        run = Run(config, base_env(fake_apps_dir), handle_signals=False)

        line = await run.until_ready()
        run.stop.set()
        assert await run.result() == 0

        assert line.endswith(f"postgres 127.0.0.1:{external_port}")
        assert "postgres |" not in run.out.getvalue()  # no embedded server this time
        assert external.running
        assert await ensure_databases(server.dsn, ["ims_alpha", "ims_beta"]) == []
    finally:
        await external.stop()
