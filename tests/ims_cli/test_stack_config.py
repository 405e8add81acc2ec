"""The pure computation of ports, URLs and child environments of `ims up`."""

from pathlib import Path

import pytest

from ims_cli.stack_config import (
    DEFAULT_SERVICES,
    ConfigError,
    load_stack_config,
    service_env,
    simulator_env,
    with_database,
)
from shared.db import asyncpg_dsn

DATA = Path("/srv/ims-data")


def service(name: str):  # type: ignore[no-untyped-def]
    return next(s for s in DEFAULT_SERVICES if s.name == name)


def test_defaults_match_the_contract() -> None:
    config = load_stack_config({}, DATA)

    assert config.service_ports == {
        "customer": 8001,
        "approval": 8002,
        "misa_sync": 8003,
        "reference": 8004,
    }
    assert config.simulator_port == 8090
    assert config.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert config.kafka_partitions == 3
    assert config.pg_port == 55432
    assert config.embedded_postgres
    assert config.ready_timeout_s == 120
    assert config.pgdata == DATA / "pgdata"
    assert config.listening_ports() == {
        "customer": 8001,
        "approval": 8002,
        "misa_sync": 8003,
        "reference": 8004,
        "misa_simulator": 8090,
        "broker": 9092,
        "postgres": 55432,
    }


def test_service_environment() -> None:
    config = load_stack_config({}, DATA)

    env = service_env(
        config, service("customer"), {"PATH": "/usr/bin", "CUSTOMER_LOG_LEVEL": "DEBUG"}
    )

    assert env["CUSTOMER_ENV"] == "dev"
    assert env["CUSTOMER_HTTP_HOST"] == "127.0.0.1"
    assert env["CUSTOMER_HTTP_PORT"] == "8001"
    assert (
        env["CUSTOMER_DATABASE_URL"] == "postgresql+asyncpg://postgres@127.0.0.1:55432/ims_customer"
    )
    assert env["CUSTOMER_KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9092"
    assert env["CUSTOMER_KAFKA_TOPIC_PARTITIONS"] == "3"
    assert env["CUSTOMER_JWT_PUBLIC_KEY_FILE"] == str(DATA / "dev-issuer" / "public.pem")
    # ims up's own environment is passed through.
    assert env["PATH"] == "/usr/bin"
    assert env["CUSTOMER_LOG_LEVEL"] == "DEBUG"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert not any(key.startswith("MISA_SYNC_MISA") for key in env)


def test_misa_sync_gets_the_simulator_and_its_demo_tenant() -> None:
    config = load_stack_config({"MISA_SIM_PORT": "9190"}, DATA)

    env = service_env(config, service("misa_sync"), {})

    assert env["MISA_SYNC_DATABASE_URL"].endswith("/ims_misa_sync")
    assert env["MISA_SYNC_HTTP_PORT"] == "8003"
    assert env["MISA_SYNC_MISA_BASE_URL"] == "http://127.0.0.1:9190"
    assert env["MISA_SYNC_MISA_APP_ID"] == "ims-local-app"
    assert env["MISA_SYNC_MISA_ACCESS_CODE"] == "ims-local-access-code"
    assert env["MISA_SYNC_MISA_ORG_COMPANY_CODE"] == "ims-local"


def test_approval_streams_attachments_from_the_stacks_customer_service() -> None:
    config = load_stack_config({"CUSTOMER_HTTP_PORT": "9101"}, DATA)

    env = service_env(config, service("approval"), {})

    assert env["APPROVAL_CUSTOMER_SERVICE_URL"] == "http://127.0.0.1:9101"
    customer_env = service_env(config, service("customer"), {})
    assert not any(key.endswith("CUSTOMER_SERVICE_URL") for key in customer_env)


def test_simulator_environment() -> None:
    config = load_stack_config({}, DATA)

    env = simulator_env(config, {"HOME": "/root"})

    assert env["MISA_SIM_HOST"] == "127.0.0.1"
    assert env["MISA_SIM_PORT"] == "8090"
    assert env["MISA_SIM_STATE_FILE"] == str(DATA / "misa-simulator.json")
    assert env["HOME"] == "/root"


def test_overrides() -> None:
    env = {
        "IMS_PG_PORT": "6543",
        "IMS_KAFKA_PORT": "19092",
        "IMS_KAFKA_PARTITIONS": "6",
        "IMS_READY_TIMEOUT_S": "30.5",
        "CUSTOMER_HTTP_PORT": "9001",
        "APPROVAL_HTTP_PORT": "9002",
        "MISA_SYNC_HTTP_PORT": "9003",
        "REFERENCE_HTTP_PORT": "9004",
        "MISA_SIM_PORT": "9090",
    }
    config = load_stack_config(env, DATA)

    assert config.service_ports == {
        "customer": 9001,
        "approval": 9002,
        "misa_sync": 9003,
        "reference": 9004,
    }
    assert config.simulator_port == 9090
    assert config.ready_timeout_s == 30.5
    approval = service_env(config, service("approval"), env)
    assert approval["APPROVAL_HTTP_PORT"] == "9002"
    assert (
        approval["APPROVAL_DATABASE_URL"]
        == "postgresql+asyncpg://postgres@127.0.0.1:6543/ims_approval"
    )
    assert approval["APPROVAL_KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:19092"
    assert approval["APPROVAL_KAFKA_TOPIC_PARTITIONS"] == "6"
    assert config.service_url(service("reference")) == "http://127.0.0.1:9004"


def test_computed_settings_win_over_inherited_ones() -> None:
    config = load_stack_config({}, DATA)

    env = service_env(
        config,
        service("reference"),
        {"REFERENCE_DATABASE_URL": "sqlite://", "REFERENCE_ENV": "prod"},
    )

    assert env["REFERENCE_DATABASE_URL"].endswith("@127.0.0.1:55432/ims_reference")
    assert env["REFERENCE_ENV"] == "dev"


def test_external_postgres() -> None:
    config = load_stack_config(
        {"IMS_DATABASE_URL_BASE": "postgresql+asyncpg://postgres@127.0.0.1:5432/"}, DATA
    )

    assert not config.embedded_postgres
    assert "postgres" not in config.listening_ports()
    assert (
        config.database_url("ims_customer")
        == "postgresql+asyncpg://postgres@127.0.0.1:5432/ims_customer"
    )
    assert config.admin_dsn == "postgresql://postgres@127.0.0.1:5432/postgres"


def test_url_helpers_keep_credentials_and_query() -> None:
    url = "postgresql+asyncpg://u:p@db.example:5433/other?ssl=require"

    assert (
        with_database(url, "ims_x") == "postgresql+asyncpg://u:p@db.example:5433/ims_x?ssl=require"
    )
    assert (
        asyncpg_dsn(with_database(url, "postgres"))
        == "postgresql://u:p@db.example:5433/postgres?ssl=require"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"IMS_KAFKA_PORT": "ninety"}, "IMS_KAFKA_PORT"),
        ({"CUSTOMER_HTTP_PORT": "70000"}, "CUSTOMER_HTTP_PORT"),
        ({"IMS_KAFKA_PARTITIONS": "0"}, "IMS_KAFKA_PARTITIONS"),
        ({"IMS_READY_TIMEOUT_S": "-1"}, "IMS_READY_TIMEOUT_S"),
        ({"APPROVAL_HTTP_PORT": "8001"}, "port 8001"),
        ({"IMS_PG_PORT": "9092"}, "port 9092"),
    ],
)
def test_bad_values_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_stack_config(env, DATA)


def test_external_postgres_port_does_not_clash() -> None:
    config = load_stack_config(
        {
            "IMS_PG_PORT": "9092",
            "IMS_DATABASE_URL_BASE": "postgresql+asyncpg://postgres@127.0.0.1:5432",
        },
        DATA,
    )
    assert config.kafka_port == 9092
