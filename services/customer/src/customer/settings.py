from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class CustomerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CUSTOMER_", extra="ignore")
    service_name: ClassVar[str] = "customer"

    http_port: int = 8001
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/ims_customer"
