from typing import ClassVar

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings

DEV_ACCESS_CODE = "ims-local-access-code"


class MisaSyncSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MISA_SYNC_", extra="ignore")
    service_name: ClassVar[str] = "misa_sync"
    dev_secret_defaults: ClassVar[dict[str, str]] = {"misa_access_code": DEV_ACCESS_CODE}

    http_port: int = 8003
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/ims_misa_sync"

    misa_base_url: str = "http://127.0.0.1:8090"
    misa_app_id: str = "ims-local-app"
    misa_access_code: SecretStr = SecretStr(DEV_ACCESS_CODE)
    misa_org_company_code: str = "ims-local"
    misa_timeout_s: float = 10.0

    #: Attempts before a link is marked failed (accounting can retry it by hand).
    sync_max_attempts: int = 8
    sync_poll_interval_s: float = 0.5
    sync_max_backoff_s: float = 300.0
