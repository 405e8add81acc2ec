"""Addresses, ports and child environments of the local stack (pure: no I/O).

Everything `ims up` starts is described here from its own environment, so the
computation can be unit-tested without starting anything.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ims_cli.paths import dev_issuer_dir
from shared.db import asyncpg_dsn

HOST = "127.0.0.1"

# ims up's own settings (documented in `ims up --help`).
PG_PORT_ENV = "IMS_PG_PORT"
DATABASE_URL_BASE_ENV = "IMS_DATABASE_URL_BASE"
KAFKA_PORT_ENV = "IMS_KAFKA_PORT"
KAFKA_PARTITIONS_ENV = "IMS_KAFKA_PARTITIONS"
READY_TIMEOUT_ENV = "IMS_READY_TIMEOUT_S"
SIM_PORT_ENV = "MISA_SIM_PORT"
BROKER_STORAGE_ENV = "IMS_BROKER_STORAGE"
BROKER_S3_PORT_ENV = "IMS_BROKER_S3_PORT"

DEFAULT_PG_PORT = 55432
DEFAULT_KAFKA_PORT = 9092
DEFAULT_KAFKA_PARTITIONS = 3
DEFAULT_READY_TIMEOUT_S = 120.0
DEFAULT_SIM_PORT = 8090
DEFAULT_BROKER_S3_PORT = 9094
#: Where the broker keeps its topics (ADR 0012): "memory" (lost when it restarts) or "s3"
#: (an S3 server the stack starts beside it, which outlives a broker restart).
BROKER_STORAGES = ("memory", "s3")
#: The bucket of the broker's S3 storage.
BROKER_S3_BUCKET = "tansu"
#: The consumers' fetch wait with S3 storage (measured: 10 ms reads nothing; 300 ms starves
#: on a busy machine, where reading S3 takes longer).
S3_FETCH_MAX_WAIT_MS = 1000

# The simulator's demo tenant (CONTRACT.md §6), handed to misa_sync.
MISA_APP_ID = "ims-local-app"
MISA_ACCESS_CODE = "ims-local-access-code"
MISA_ORG_COMPANY_CODE = "ims-local"


class ConfigError(ValueError):
    """An environment variable of `ims up` holds an unusable value."""


@dataclass(frozen=True, slots=True)
class ServiceDef:
    """One of the four services: `python -m <module> migrate|serve`, settings under `env_prefix`."""

    name: str
    module: str
    env_prefix: str
    default_port: int
    database: str

    @property
    def port_env(self) -> str:
        return f"{self.env_prefix}HTTP_PORT"


@dataclass(frozen=True, slots=True)
class SimulatorDef:
    """The MISA simulator: `python -m <module>`."""

    name: str = "misa_simulator"
    module: str = "misa_simulator"
    default_port: int = DEFAULT_SIM_PORT


DEFAULT_SERVICES: tuple[ServiceDef, ...] = (
    ServiceDef("customer", "customer", "CUSTOMER_", 8001, "ims_customer"),
    ServiceDef("approval", "approval", "APPROVAL_", 8002, "ims_approval"),
    ServiceDef("misa_sync", "misa_sync", "MISA_SYNC_", 8003, "ims_misa_sync"),
    ServiceDef("reference", "reference", "REFERENCE_", 8004, "ims_reference"),
)
DEFAULT_SIMULATOR = SimulatorDef()

#: (variable, meaning) pairs shown by `ims up --help`.
ENV_VARS_HELP: tuple[tuple[str, str], ...] = (
    ("IMS_DATA_DIR", "local data folder (default: .ims under the repository root)"),
    (PG_PORT_ENV, f"port of the embedded PostgreSQL (default {DEFAULT_PG_PORT})"),
    (
        DATABASE_URL_BASE_ENV,
        "use this PostgreSQL server instead of the embedded one, "
        "e.g. postgresql+asyncpg://postgres@127.0.0.1:5432",
    ),
    (KAFKA_PORT_ENV, f"port of the Tansu Kafka-protocol broker (default {DEFAULT_KAFKA_PORT})"),
    (KAFKA_PARTITIONS_ENV, f"partitions per topic (default {DEFAULT_KAFKA_PARTITIONS})"),
    *(
        (s.port_env, f"HTTP port of the {s.name} service (default {s.default_port})")
        for s in DEFAULT_SERVICES
    ),
    (SIM_PORT_ENV, f"HTTP port of the MISA simulator (default {DEFAULT_SIM_PORT})"),
    (
        READY_TIMEOUT_ENV,
        f"seconds to wait for every part to answer (default {DEFAULT_READY_TIMEOUT_S:g})",
    ),
    (
        BROKER_STORAGE_ENV,
        "where the broker keeps its topics: memory (default; emptied when the broker "
        "restarts) or s3 (an S3 server beside it that outlives a broker restart; ADR 0012)",
    ),
    (
        BROKER_S3_PORT_ENV,
        f"port of that S3 server (default {DEFAULT_BROKER_S3_PORT})",
    ),
)


def _read_int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is outside {low}..{high}")
    return value


def _read_port(env: Mapping[str, str], name: str, default: int) -> int:
    return _read_int(env, name, default, low=1, high=65535)


def _read_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {value:g}")
    return value


def with_database(url: str, database: str) -> str:
    """`url` (scheme://user@host:port[/anything][?query]) pointing at `database`."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


@dataclass(frozen=True, slots=True)
class StackConfig:
    data_dir: Path
    pg_port: int
    external_database_url_base: str | None
    kafka_port: int
    kafka_partitions: int
    service_ports: Mapping[str, int]
    simulator_port: int
    ready_timeout_s: float
    services: tuple[ServiceDef, ...] = DEFAULT_SERVICES
    simulator: SimulatorDef = field(default_factory=SimulatorDef)
    host: str = HOST
    broker_storage: str = "memory"
    broker_s3_port: int = DEFAULT_BROKER_S3_PORT

    @property
    def embedded_postgres(self) -> bool:
        return self.external_database_url_base is None

    @property
    def database_url_base(self) -> str:
        if self.external_database_url_base is not None:
            return self.external_database_url_base.rstrip("/")
        return f"postgresql+asyncpg://postgres@{self.host}:{self.pg_port}"

    def database_url(self, database: str) -> str:
        return with_database(self.database_url_base, database)

    @property
    def admin_dsn(self) -> str:
        """asyncpg DSN of the maintenance database, for creating the service databases."""
        return asyncpg_dsn(self.database_url("postgres"))

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def kafka_bootstrap_servers(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def jwt_public_key_file(self) -> Path:
        return dev_issuer_dir(self.data_dir) / "public.pem"

    @property
    def simulator_state_file(self) -> Path:
        return self.data_dir / "misa-simulator.json"

    @property
    def broker_s3_url(self) -> str:
        return f"http://{self.host}:{self.broker_s3_port}"

    @property
    def simulator_url(self) -> str:
        return f"http://{self.host}:{self.simulator_port}"

    def service_url(self, service: ServiceDef) -> str:
        return f"http://{self.host}:{self.service_ports[service.name]}"

    def listening_ports(self) -> dict[str, int]:
        """Every TCP port the stack will listen on, by the part that owns it."""
        ports = {s.name: self.service_ports[s.name] for s in self.services}
        ports[self.simulator.name] = self.simulator_port
        ports["broker"] = self.kafka_port
        if self.broker_storage == "s3":
            ports["broker-storage"] = self.broker_s3_port
        if self.embedded_postgres:
            ports["postgres"] = self.pg_port
        return ports


def load_stack_config(
    env: Mapping[str, str],
    data_dir: Path,
    *,
    services: tuple[ServiceDef, ...] = DEFAULT_SERVICES,
    simulator: SimulatorDef = DEFAULT_SIMULATOR,
) -> StackConfig:
    """Read ims up's settings from `env`; raises ConfigError on a bad value or a port clash."""
    external = env.get(DATABASE_URL_BASE_ENV, "").strip() or None
    storage = env.get(BROKER_STORAGE_ENV, "").strip().lower() or "memory"
    if storage not in BROKER_STORAGES:
        raise ConfigError(
            f"{BROKER_STORAGE_ENV}={storage!r} is not one of {', '.join(BROKER_STORAGES)}"
        )
    config = StackConfig(
        data_dir=data_dir,
        pg_port=_read_port(env, PG_PORT_ENV, DEFAULT_PG_PORT),
        external_database_url_base=external,
        kafka_port=_read_port(env, KAFKA_PORT_ENV, DEFAULT_KAFKA_PORT),
        kafka_partitions=_read_int(
            env, KAFKA_PARTITIONS_ENV, DEFAULT_KAFKA_PARTITIONS, low=1, high=1000
        ),
        service_ports={s.name: _read_port(env, s.port_env, s.default_port) for s in services},
        simulator_port=_read_port(env, SIM_PORT_ENV, simulator.default_port),
        ready_timeout_s=_read_seconds(env, READY_TIMEOUT_ENV, DEFAULT_READY_TIMEOUT_S),
        services=services,
        simulator=simulator,
        broker_storage=storage,
        broker_s3_port=_read_port(env, BROKER_S3_PORT_ENV, DEFAULT_BROKER_S3_PORT),
    )
    owners: dict[int, str] = {}
    for part, port in config.listening_ports().items():
        if port in owners:
            raise ConfigError(f"{part} and {owners[port]} would both listen on port {port}")
        owners[port] = part
    return config


def _child_base_env(base_env: Mapping[str, str]) -> dict[str, str]:
    env = dict(base_env)
    # Children write into pipes; without this their lines would arrive in bursts.
    env["PYTHONUNBUFFERED"] = "1"
    return env


def service_env(
    config: StackConfig, service: ServiceDef, base_env: Mapping[str, str]
) -> dict[str, str]:
    """The environment of `python -m <service> migrate|serve`: ims up's own plus the settings."""
    p = service.env_prefix
    env = _child_base_env(base_env)
    env.update(
        {
            f"{p}ENV": "dev",
            f"{p}HTTP_HOST": config.host,
            f"{p}HTTP_PORT": str(config.service_ports[service.name]),
            f"{p}DATABASE_URL": config.database_url(service.database),
            f"{p}KAFKA_BOOTSTRAP_SERVERS": config.kafka_bootstrap_servers,
            f"{p}KAFKA_TOPIC_PARTITIONS": str(config.kafka_partitions),
            f"{p}JWT_PUBLIC_KEY_FILE": str(config.jwt_public_key_file),
        }
    )
    if config.broker_storage == "s3":
        # Tansu's S3 engine answers a fetch empty when reading S3 takes longer than the
        # consumer's wait, which the 10 ms default always is (ADR 0012).
        env.setdefault(f"{p}KAFKA_FETCH_MAX_WAIT_MS", str(S3_FETCH_MAX_WAIT_MS))
    if service.name == "approval":
        # The CS UI streams attachments from the customer service as the signed-in user.
        env[f"{p}CUSTOMER_SERVICE_URL"] = f"http://{config.host}:{config.service_ports['customer']}"
    if service.name == "misa_sync":
        env.update(
            {
                f"{p}MISA_BASE_URL": config.simulator_url,
                f"{p}MISA_APP_ID": MISA_APP_ID,
                f"{p}MISA_ACCESS_CODE": MISA_ACCESS_CODE,
                f"{p}MISA_ORG_COMPANY_CODE": MISA_ORG_COMPANY_CODE,
            }
        )
    return env


def simulator_env(config: StackConfig, base_env: Mapping[str, str]) -> dict[str, str]:
    """The environment of `python -m misa_simulator`."""
    env = _child_base_env(base_env)
    env.update(
        {
            "MISA_SIM_HOST": config.host,
            SIM_PORT_ENV: str(config.simulator_port),
            "MISA_SIM_STATE_FILE": str(config.simulator_state_file),
        }
    )
    return env


def broker_storage_env(config: StackConfig, base_env: Mapping[str, str]) -> dict[str, str]:
    """The broker's environment: with S3 storage, the AWS_* variables naming the S3 server."""
    env = dict(base_env)
    if config.broker_storage == "s3":
        env.update(
            {
                "AWS_ACCESS_KEY_ID": "ims-local",
                "AWS_SECRET_ACCESS_KEY": "ims-local",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ENDPOINT": config.broker_s3_url,
                "AWS_ALLOW_HTTP": "true",
            }
        )
    return env
