from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class ReferenceSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REFERENCE_", extra="ignore")
    service_name: ClassVar[str] = "reference"

    http_port: int = 8004
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/ims_reference"
