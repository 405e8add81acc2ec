from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from misa_sync.misa_client import TENANT_ERROR_CODES
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
    #: Reconnect this long before the 12-hour token expires.
    misa_token_renew_margin_s: float = Field(default=300.0, ge=0)
    #: Requests per MISA call (the first try included) on 5xx, 429, timeouts, lost
    #: connections; waits are full-jitter exponential from the base, capped at the max.
    #: A Retry-After longer than the cap is left to the sync worker's own back-off.
    misa_retry_max_attempts: int = Field(default=4, ge=1)
    misa_retry_base_delay_s: float = Field(default=0.5, ge=0)
    misa_retry_max_delay_s: float = Field(default=30.0, ge=0)
    #: Client-side rate limit for the whole process (MISA publishes no quota; 0 = off).
    misa_rate_limit_per_s: float = Field(default=2.0, ge=0)
    misa_rate_limit_burst: int = Field(default=5, ge=1)
    #: Consecutive transient failures that open the circuit, and how long it stays open
    #: (calls fail fast) before one probe request is let through.
    misa_circuit_failure_threshold: int = Field(default=5, ge=1)
    misa_circuit_cooldown_s: float = Field(default=30.0, ge=0)

    #: Attempts before a link is marked failed (accounting can retry it by hand).
    sync_max_attempts: int = 8
    sync_poll_interval_s: float = 0.5
    #: The longest a link or the worker waits: caps the back-off and MISA's Retry-After.
    sync_max_backoff_s: float = Field(default=300.0, gt=0, le=86400.0)
    #: MISA error codes about the whole tenant (credentials, a disconnected app, no
    #: accounting database, MISA's own failure): links wait and the worker pauses, as
    #: during an outage, instead of failing. A refused connect always counts as one.
    misa_tenant_error_codes: list[str] = Field(default_factory=lambda: sorted(TENANT_ERROR_CODES))

    #: Mirror of MISA's dictionary: refresh (incrementally) before a lookup when older
    #: than this (0 = always), in the background every interval, and a full scan (the only
    #: way to see objects deleted in MISA) every full interval.
    misa_mirror_max_age_s: float = Field(default=30.0, ge=0)
    misa_mirror_refresh_interval_s: float = Field(default=300.0, gt=0)
    misa_mirror_full_refresh_interval_s: float = Field(default=6 * 3600.0, gt=0)
    #: Customer types that are organisations in MISA (reference list customer-types with
    #: is_company); a customer without a type is one when it has a company name.
    misa_company_customer_types: list[str] = Field(
        default_factory=lambda: ["DN", "DNTN", "CNDN", "HTX", "TOCHUC"]
    )
    #: Send customer_group_code as MISA's group code (the group must exist in MISA).
    misa_send_group_codes: bool = True
    #: MISA branch (organization unit) the customers belong to, when the tenant has several.
    misa_branch_id: str | None = None
    #: Codes that look like ours, for reconciliation's "extra" (in MISA, not linked).
    misa_ims_code_pattern: str = r"^KH\d+$"

    #: The reconciliation job: a run every interval across all replicas (0 = no job; the
    #: API can still run one). Each run refreshes the mirror incrementally, or fully when
    #: the mirror's full scan is due (``misa_mirror_full_refresh_interval_s``).
    reconcile_interval_s: float = Field(default=3600.0, ge=0, le=7 * 86400.0)
    #: Runs kept in ``misa_reconciliations`` (the latest successful one is always kept).
    reconcile_keep_runs: int = Field(default=50, ge=1)
