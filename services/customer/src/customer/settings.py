from pathlib import Path
from typing import ClassVar, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from customer.blob_store import IMPLEMENTED_STORES
from customer.s3_blob_store import AddressingStyle, S3Options, normalised_prefix
from shared.config import ServiceSettings
from shared.ui.settings import UI_DEV_SECRET_DEFAULTS, UiSettings

MIB = 1024 * 1024


class CustomerSettings(ServiceSettings, UiSettings):
    # Errors name the setting but never echo the input: it may hold credentials.
    model_config = SettingsConfigDict(
        env_prefix="CUSTOMER_", extra="ignore", hide_input_in_errors=True
    )
    service_name: ClassVar[str] = "customer"
    #: The salesperson UI's CSRF and flash key (CUSTOMER_UI_SECRET) must be set outside dev.
    dev_secret_defaults: ClassVar[dict[str, str]] = {**UI_DEV_SECRET_DEFAULTS}

    http_port: int = 8001
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/ims_customer"

    # ---- attachments (see customer.attachments) -----------------------------------------
    attachment_max_bytes: int = Field(default=20 * MIB, gt=0)
    attachments_per_customer: int = Field(default=30, gt=0)
    #: Where uploads are spooled while they are checked; None: the system's temp folder.
    upload_tmp_dir: Path | None = None

    # ---- the blob store (see customer.blob_store) ---------------------------------------
    blob_store: str = "local"
    #: Folder of the `local` store, relative to the working directory.
    blob_dir: Path = Path(".ims/blobs/customer")
    #: The `s3` store: the bucket is required, the rest has defaults.
    s3_bucket: str | None = None
    #: None for AWS; the server's URL for MinIO, Ceph, R2...
    s3_endpoint_url: str | None = None
    #: None: botocore's chain (AWS_REGION...).
    s3_region: str | None = None
    s3_prefix: str = ""
    #: Both unset: botocore's chain (AWS_* variables, config file, instance or task role).
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    #: `path` for most MinIO and Ceph set-ups; `auto` lets botocore choose.
    s3_addressing_style: AddressingStyle = "auto"
    s3_max_attempts: int = Field(default=3, ge=1, le=10)

    @field_validator("blob_store")
    @classmethod
    def _implemented_store(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in IMPLEMENTED_STORES:
            implemented = ", ".join(repr(name) for name in IMPLEMENTED_STORES)
            raise ValueError(
                f"CUSTOMER_BLOB_STORE={value!r} is not implemented (choose one of "
                f"{implemented}); another store plugs in through "
                "customer.blob_store.BlobStore and make_blob_store."
            )
        return value

    @field_validator("s3_bucket", "s3_endpoint_url", "s3_region", "s3_access_key_id")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        # An empty variable (`CUSTOMER_S3_REGION=`) means "not set", as in most deploy tools.
        return (value.strip() or None) if value is not None else None

    @field_validator("s3_prefix")
    @classmethod
    def _plain_prefix(cls, value: str) -> str:
        return normalised_prefix(value)

    @field_validator("s3_endpoint_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"CUSTOMER_S3_ENDPOINT_URL must be an http(s) URL, not {value!r}")
        return value

    @model_validator(mode="after")
    def _s3_is_complete(self) -> Self:
        if self.blob_store == "s3" and not self.s3_bucket:
            raise ValueError("CUSTOMER_BLOB_STORE=s3 needs CUSTOMER_S3_BUCKET (the bucket's name)")
        secret = self.s3_secret_access_key.get_secret_value() if self.s3_secret_access_key else ""
        if bool(self.s3_access_key_id) != bool(secret):
            raise ValueError(
                "set both CUSTOMER_S3_ACCESS_KEY_ID and CUSTOMER_S3_SECRET_ACCESS_KEY, or neither "
                "(botocore's chain: AWS_* variables, config file, instance role)"
            )
        return self

    def s3_options(self) -> S3Options | None:
        """The `s3` store's options, or None when another store is chosen."""
        if self.blob_store != "s3" or not self.s3_bucket:
            return None
        secret = self.s3_secret_access_key
        return S3Options(
            bucket=self.s3_bucket,
            prefix=self.s3_prefix,
            endpoint_url=self.s3_endpoint_url,
            region=self.s3_region,
            access_key_id=self.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
            addressing_style=self.s3_addressing_style,
            max_attempts=self.s3_max_attempts,
        )
