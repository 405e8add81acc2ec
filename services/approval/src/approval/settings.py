from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class ApprovalSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="APPROVAL_", extra="ignore")
    service_name: ClassVar[str] = "approval"

    http_port: int = 8002
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/ims_approval"
    #: Customer codes: prefix + zero-padded sequence number (KH000001).
    code_prefix: str = Field(default="KH", pattern=r"^[A-Z0-9-]{0,10}$")
    code_digits: int = Field(default=6, ge=3, le=12)
