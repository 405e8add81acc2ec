"""Service settings: one pydantic-settings class per service, one env prefix each.

Every service subclasses :class:`ServiceSettings` and sets ``env_prefix`` (``CUSTOMER_``,
``APPROVAL_``...). Secrets carry a dev default so the local stack needs no setup; outside
``env=dev`` a secret still at its dev default is refused at start-up.
"""

from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["dev", "test", "prod"]


class InsecureDefaultError(ValueError):
    """A secret kept its development default in a non-dev environment."""


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IMS_", extra="ignore")

    #: Name used for the Kafka consumer group, the CloudEvents source and logs.
    service_name: ClassVar[str] = "ims"
    #: Fields holding secrets whose dev default must not reach production.
    dev_secret_defaults: ClassVar[dict[str, str]] = {}

    env: Environment = "dev"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/ims"
    db_pool_size: int = 5

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Tansu (local/test broker) lacks InitProducerId: idempotence is a production setting.
    kafka_enable_idempotence: bool = False
    # Tansu holds every fetch for the full wait; keep it low locally.
    kafka_fetch_max_wait_ms: int = 10
    kafka_topic_partitions: int = 3

    jwt_issuer: str = "ims-dev-issuer"
    jwt_audience: str = "ims"
    jwt_public_key: str | None = None
    jwt_public_key_file: str | None = None
    jwt_jwks_url: str | None = None

    log_json: bool | None = None
    log_level: str = "INFO"
    #: Run the outbox relay and the consumers inside the API process.
    run_workers: bool = True
    #: Bearer token Prometheus sends to /metrics. Without it /metrics is open in dev and
    #: test and answers 404 in prod (the metrics name routes and volumes, not data).
    metrics_token: SecretStr | None = Field(default=None, min_length=16)
    outbox_poll_interval_s: float = 2.0
    consumer_max_attempts: int = 5
    #: Partitions whose batches a consumer applies at once (ADR 0016), each on a database
    #: connection of the pool: at most db_pool_size (checked below).
    consumer_parallel_partitions: int = Field(default=3, ge=1)

    @property
    def json_logs(self) -> bool:
        return self.log_json if self.log_json is not None else self.env != "dev"

    @model_validator(mode="after")
    def _parallel_partitions_within_the_pool(self) -> "ServiceSettings":
        # Each batch applied side by side holds a connection; the API and the outbox relay
        # need theirs too (ADR 0016).
        if self.consumer_parallel_partitions > self.db_pool_size:
            raise ValueError(
                "consumer_parallel_partitions must not exceed db_pool_size "
                f"({self.consumer_parallel_partitions} > {self.db_pool_size})"
            )
        return self

    @model_validator(mode="after")
    def _refuse_dev_secrets_outside_dev(self) -> "ServiceSettings":
        if self.env == "dev":
            return self
        for field, default in self.dev_secret_defaults.items():
            value: Any = getattr(self, field)
            raw = value.get_secret_value() if isinstance(value, SecretStr) else value
            if raw == default:
                raise InsecureDefaultError(
                    f"{field} still has its development default; set it for env={self.env}"
                )
        if self.env == "prod" and not (
            self.jwt_jwks_url or self.jwt_public_key or self.jwt_public_key_file
        ):
            raise InsecureDefaultError(
                "prod needs jwt_jwks_url, jwt_public_key or jwt_public_key_file"
            )
        return self
