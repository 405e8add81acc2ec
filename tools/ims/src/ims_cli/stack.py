"""The local stack: what starts in which order, and how it stops.

Order: PostgreSQL, its databases, the broker and its topics, the migrations, then the
services and the MISA simulator, watched until each one answers. Stopping goes the
other way: services, broker, PostgreSQL.
"""

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlsplit

import httpx

from ims_cli.broker import BrokerError, broker_process_spec, ensure_topics, wait_listening
from ims_cli.console import Console
from ims_cli.migrations import run_migrations
from ims_cli.paths import dev_issuer_dir
from ims_cli.ports import busy_ports
from ims_cli.postgres import (
    PostgresError,
    ensure_databases,
    prepare_embedded_postgres,
    remove_stale_locks,
    wait_accepting_connections,
)
from ims_cli.processes import ProcessSpec, describe_exit
from ims_cli.readiness import HttpCheck, HttpWaiter
from ims_cli.stack_config import (
    BROKER_S3_BUCKET,
    DATABASE_URL_BASE_ENV,
    ServiceDef,
    StackConfig,
    broker_storage_env,
    service_env,
    simulator_env,
)
from ims_cli.supervisor import ManagedProcess
from ims_cli.tansu import MEMORY_STORAGE
from shared.auth.dev_issuer import ensure_keypair
from shared.events.topics import all_topics_with_dlq

_BROKER_START_TIMEOUT_S = 30.0
_EXTERNAL_POSTGRES_TIMEOUT_S = 10.0
_PORTS_GRACE_S = 5.0


class StartupError(RuntimeError):
    """A part of the stack could not be started; the message says which and why."""


class Stack:
    def __init__(
        self,
        config: StackConfig,
        console: Console,
        base_env: Mapping[str, str],
        *,
        python: str = sys.executable,
    ) -> None:
        self._config = config
        self._console = console
        self._base_env = dict(base_env)
        self._python = python
        self._postgres: ManagedProcess | None = None
        self._broker: ManagedProcess | None = None
        self._broker_storage: ManagedProcess | None = None
        self._apps: list[ManagedProcess] = []
        self._waiting_for: Callable[[], list[str]] = lambda: ["the start"]
        # Every name known up front keeps the prefix column steady.
        storage = ("broker-storage",) if config.broker_storage == "s3" else ()
        for name in ("postgres", *storage, "broker", *(s.name for s in config.services)):
            console.register(name)
        console.register(config.simulator.name)

    # ---- start -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every part; StartupError names the part that failed."""
        try:
            await self._check_ports()
            ensure_keypair(dev_issuer_dir(self._config.data_dir))
            await self._start_postgres()
            await self._create_databases()
            await self._start_broker()
            await self._migrate()
            await self._start_apps()
            await self._wait_for_apps()
        except (PostgresError, BrokerError) as exc:
            raise StartupError(str(exc)) from exc

    def waiting_for(self) -> list[str]:
        """What the start is still waiting for (for the time-out message)."""
        return self._waiting_for()

    async def _check_ports(self) -> None:
        # A little patience: the parts of a stack that was just killed may still be exiting.
        deadline = time.monotonic() + _PORTS_GRACE_S
        while busy := busy_ports(self._config.host, self._config.listening_ports()):
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.25)
        if busy:
            clashes = ", ".join(f"{part} needs port {port}" for part, port in busy.items())
            raise StartupError(
                f"ports in use by another program: {clashes}. Is another `ims up` running? "
                "Otherwise choose other ports (see `ims up --help`)."
            )

    async def _start_postgres(self) -> None:
        config = self._config
        if not config.embedded_postgres:
            self._waiting_for = lambda: [f"PostgreSQL at {DATABASE_URL_BASE_ENV}"]
            try:
                await wait_accepting_connections(config.admin_dsn, _EXTERNAL_POSTGRES_TIMEOUT_S)
            except PostgresError as exc:
                raise StartupError(
                    f"{DATABASE_URL_BASE_ENV} (server {_server_address(config)}): {exc}"
                ) from exc
            self._console.info(f"using the PostgreSQL server at {_server_address(config)}")
            return
        self._waiting_for = lambda: [f"postgres (preparing {config.pgdata})"]
        server = await prepare_embedded_postgres(
            config.pgdata, config.pg_port, self._console.info, host=config.host
        )

        async def clear_stale_locks() -> None:
            await remove_stale_locks(
                server.pgdata, server.socket_dir, server.port, self._console.info
            )

        self._postgres = ManagedProcess(
            server.process_spec(), self._console, restart=False, before_restart=clear_stale_locks
        )
        await self._spawn(self._postgres)
        self._waiting_for = lambda: [f"postgres (no connection on {config.host}:{config.pg_port})"]
        await self._until_up(
            self._postgres,
            wait_accepting_connections(server.dsn, config.ready_timeout_s),
        )
        self._console.info(
            f"postgres accepting connections on {config.host}:{config.pg_port} "
            f"(data in {config.pgdata})"
        )

    async def _create_databases(self) -> None:
        self._waiting_for = lambda: ["postgres (creating the databases)"]
        names = [service.database for service in self._config.services]
        created = await ensure_databases(self._config.admin_dsn, names)
        if created:
            self._console.info(f"created databases: {', '.join(created)}")

    async def _start_broker_storage(self) -> None:
        """The S3 server the broker keeps its topics in (IMS_BROKER_STORAGE=s3, ADR 0012)."""
        config = self._config
        spec = ProcessSpec(
            name="broker-storage",
            argv=(
                self._python,
                "-m",
                "ims_cli.broker_storage",
                "--host",
                config.host,
                "--port",
                str(config.broker_s3_port),
            ),
            env={**self._base_env, "PYTHONUNBUFFERED": "1"},
        )
        self._broker_storage = ManagedProcess(spec, self._console, restart=False)
        self._waiting_for = lambda: [f"broker-storage (no S3 server on {config.broker_s3_url})"]
        await self._spawn(self._broker_storage)
        await self._until_up(self._broker_storage, self._bucket_ready())
        self._console.info(f"broker storage: S3 at {config.broker_s3_url}")

    async def _bucket_ready(self) -> None:
        url = f"{self._config.broker_s3_url}/{BROKER_S3_BUCKET}"
        # moto's import alone takes seconds, and far longer on a busy machine.
        deadline = time.monotonic() + self._config.ready_timeout_s
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                try:
                    if (await client.head(url)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise BrokerError(f"the broker's S3 storage never answered at {url}")
                await asyncio.sleep(0.1)

    async def _start_broker(self) -> None:
        config = self._config
        storage_engine = MEMORY_STORAGE
        if config.broker_storage == "s3":
            await self._start_broker_storage()
            storage_engine = f"s3://{BROKER_S3_BUCKET}/"
        spec = broker_process_spec(
            config.kafka_port,
            host=config.host,
            storage_engine=storage_engine,
            env=broker_storage_env(config, self._base_env),
        )
        self._broker = ManagedProcess(
            spec, self._console, restart=False, after_restart=self._recreate_topics
        )
        self._waiting_for = lambda: [f"broker (no answer on {config.kafka_bootstrap_servers})"]
        await self._spawn(self._broker)
        created = await self._until_up(self._broker, self._create_topics())
        self._console.info(
            f"broker listening on {config.kafka_bootstrap_servers}; "
            f"{created} topics created with {config.kafka_partitions} partitions each"
        )

    async def _create_topics(self) -> int:
        config = self._config
        await wait_listening(config.host, config.kafka_port, _BROKER_START_TIMEOUT_S)
        created, mismatched = await ensure_topics(
            config.kafka_bootstrap_servers, all_topics_with_dlq(), config.kafka_partitions
        )
        for topic, count in mismatched.items():
            self._console.error(
                f"topic {topic} has {count} partitions, not {config.kafka_partitions}: "
                "a client created it first"
            )
        return len(created)

    async def _recreate_topics(self) -> None:
        created = await self._create_topics()
        self._console.info(f"broker is back: topics re-created ({created} new)")

    def _service_spec(self, service: ServiceDef, command: str, name: str) -> ProcessSpec:
        return ProcessSpec(
            name=name,
            argv=(self._python, "-m", service.module, command),
            env=service_env(self._config, service, self._base_env),
        )

    async def _migrate(self) -> None:
        services = self._config.services
        self._waiting_for = lambda: [f"migrations of {', '.join(s.name for s in services)}"]
        specs = {s.name: self._service_spec(s, "migrate", f"{s.name} migrate") for s in services}
        self._console.info(f"migrating: {', '.join(s.name for s in services)}")
        results = await run_migrations(specs)
        failures = [result for result in results if not result.ok]
        for failure in failures:
            self._console.register(failure.label)
            for line in failure.output:
                self._console.line(failure.label, line)
        if failures:
            listed = ", ".join(f"{f.service} ({f.describe()})" for f in failures)
            raise StartupError(f"migration failed: {listed}; its output is above")
        self._console.info("migrations applied")

    async def _start_apps(self) -> None:
        specs = [self._service_spec(s, "serve", s.name) for s in self._config.services]
        simulator = self._config.simulator
        specs.append(
            ProcessSpec(
                name=simulator.name,
                argv=(self._python, "-m", simulator.module),
                env=simulator_env(self._config, self._base_env),
            )
        )
        for spec in specs:
            app = ManagedProcess(spec, self._console, restart=True)
            self._apps.append(app)
            await self._spawn(app)

    async def _wait_for_apps(self) -> None:
        config = self._config
        checks = [HttpCheck(s.name, f"{config.service_url(s)}/readyz") for s in config.services]
        checks.append(HttpCheck(config.simulator.name, f"{config.simulator_url}/healthz"))
        waiter = HttpWaiter(checks)
        apps_by_name = {app.name: app for app in self._apps}

        def pending(*, with_body: bool = False) -> list[str]:
            described = []
            for name, status in waiter.pending(with_body=with_body):
                app = apps_by_name.get(name)
                if app is not None and app.restarts:
                    status = f"{status}; restarted {app.restarts} times"
                described.append(f"{name} ({status})")
            return described

        self._waiting_for = lambda: pending(with_body=True)
        await waiter.wait_all(
            progress=lambda: self._console.info(f"waiting for: {'; '.join(pending())}")
        )

    async def _spawn(self, process: ManagedProcess) -> None:
        try:
            await process.start()
        except OSError as exc:
            raise StartupError(f"cannot start {process.name}: {exc}") from exc

    async def _until_up[T](self, process: ManagedProcess, probe: Awaitable[T]) -> T:
        """Await `probe` unless `process` dies first; from then on, restart it if it dies."""
        probe_task = asyncio.ensure_future(probe)
        died = asyncio.ensure_future(process.wait_failed())
        try:
            await asyncio.wait({probe_task, died}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (probe_task, died):
                task.cancel()
            await asyncio.gather(probe_task, died, return_exceptions=True)
        if not probe_task.cancelled() and probe_task.exception() is None:
            process.enable_restart()
            return probe_task.result()
        if died.done() and not died.cancelled():
            raise StartupError(
                f"{process.name} stopped while starting ({describe_exit(died.result())}); "
                "its output is above"
            )
        return probe_task.result()  # raises the probe's error

    # ---- ready -------------------------------------------------------------------------

    def ready_line(self) -> str:
        config = self._config
        parts = [f"{s.name} {config.service_url(s)}" for s in config.services]
        parts.append(f"{config.simulator.name} {config.simulator_url}")
        parts.append(f"broker {config.kafka_bootstrap_servers}")
        parts.append(f"postgres {_server_address(config)}")
        return "ims ready: " + " · ".join(parts)

    # ---- stop --------------------------------------------------------------------------

    async def stop(self, *, force: asyncio.Event | None = None) -> None:
        """Services first, then the broker, then PostgreSQL."""
        if self._apps:
            self._console.info("stopping the services")
            await asyncio.gather(*(self._stop_one(app, force) for app in self._apps))
        if self._broker is not None:
            self._console.info("stopping the broker")
            await self._stop_one(self._broker, force)
        if self._broker_storage is not None:
            await self._stop_one(self._broker_storage, force)
        if self._postgres is not None:
            self._console.info("stopping postgres")
            await self._stop_one(self._postgres, force)

    async def _stop_one(self, process: ManagedProcess, force: asyncio.Event | None) -> None:
        try:
            await process.stop(force=force)
        except Exception as exc:
            self._console.error(f"stopping {process.name}: {exc!r}")


def _server_address(config: StackConfig) -> str:
    parts = urlsplit(config.database_url_base)
    return f"{parts.hostname}:{parts.port or 5432}"
