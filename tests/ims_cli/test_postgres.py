"""The embedded PostgreSQL: first start, databases, clean stop, restart keeping the data."""

import io
import os
import signal
from pathlib import Path

import asyncpg
import pytest

from ims_cli.console import Console
from ims_cli.postgres import (
    EmbeddedPostgres,
    PostgresError,
    ensure_databases,
    prepare_embedded_postgres,
    wait_accepting_connections,
)
from ims_cli.processes import pid_alive
from ims_cli.supervisor import ManagedProcess

from .conftest import allocate_ports

DATABASES = ["ims_customer", "ims_approval", "ims_misa_sync", "ims_reference"]


async def start(
    pgdata: Path, port: int, console: Console
) -> tuple[EmbeddedPostgres, ManagedProcess]:
    server = await prepare_embedded_postgres(pgdata, port, console.info)
    process = ManagedProcess(server.process_spec(), console, restart=False)
    await process.start()
    await wait_accepting_connections(server.dsn, 30)
    return server, process


def dsn(server: EmbeddedPostgres, database: str) -> str:
    return server.dsn.rsplit("/", 1)[0] + "/" + database


@pytest.mark.timeout(60)
async def test_start_create_databases_stop_and_restart_keeping_data(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(out=out, colour=False)
    pgdata = tmp_path / "data" / "pgdata"
    (port,) = allocate_ports(1)

    server, process = await start(pgdata, port, console)
    assert await ensure_databases(server.dsn, DATABASES) == DATABASES
    assert await ensure_databases(server.dsn, DATABASES) == []  # idempotent
    connection = await asyncpg.connect(dsn(server, "ims_customer"))
    await connection.execute("CREATE EXTENSION pg_trgm; CREATE EXTENSION unaccent")
    await connection.execute("CREATE TABLE kept (name text)")
    await connection.execute("INSERT INTO kept VALUES ('Đà Nẵng')")
    assert await connection.fetchval("SELECT unaccent(lower(name)) FROM kept") == "da nang"
    await connection.close()

    await process.stop()
    assert not (pgdata / "postmaster.pid").exists()  # a clean shutdown
    assert "database system is shut down" in out.getvalue()
    assert "ready to accept connections" not in out.getvalue()  # reserved word, hidden

    server, process = await start(pgdata, port, console)
    try:
        assert "creating the PostgreSQL cluster" not in out.getvalue().split("shut down")[-1]
        connection = await asyncpg.connect(dsn(server, "ims_customer"))
        assert await connection.fetchval("SELECT name FROM kept") == "Đà Nẵng"
        await connection.close()
        assert await ensure_databases(server.dsn, DATABASES) == []
    finally:
        await process.stop()


@pytest.mark.timeout(60)
async def test_a_killed_server_does_not_block_the_next_start(tmp_path: Path) -> None:
    console = Console(out=io.StringIO(), colour=False)
    pgdata = tmp_path / "pgdata"
    (port,) = allocate_ports(1)
    _, process = await start(pgdata, port, console)
    pid = process.pid
    assert pid is not None

    # Killed outright: postmaster.pid and the socket lock stay behind.
    os.kill(pid, signal.SIGKILL)
    await process.stop()  # reaps it and clears its process group
    assert not pid_alive(pid)
    assert (pgdata / "postmaster.pid").exists()

    _, process = await start(pgdata, port, console)
    try:
        assert process.running
    finally:
        await process.stop()


async def test_a_foreign_folder_is_not_initialised(tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    pgdata.mkdir()
    (pgdata / "something.txt").write_text("not a cluster")

    with pytest.raises(PostgresError, match="neither empty nor a PostgreSQL cluster"):
        await prepare_embedded_postgres(pgdata, allocate_ports(1)[0], lambda _: None)
