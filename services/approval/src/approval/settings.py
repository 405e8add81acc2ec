from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings
from shared.ui.settings import UI_DEV_SECRET_DEFAULTS, UiSettings

Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ReasonCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class RejectReason(BaseModel):
    """A reject reason CS picks from: its label in Vietnamese and in English."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    vi: Label
    en: Label

    def label(self, *, vietnamese: bool) -> str:
        return self.vi if vietnamese else self.en


DEFAULT_REJECT_REASONS: dict[str, RejectReason] = {
    "missing_documents": RejectReason(vi="Thiếu giấy tờ", en="Missing documents"),
    "invalid_tax_code": RejectReason(vi="Mã số thuế không hợp lệ", en="Invalid tax code"),
    "duplicate": RejectReason(vi="Trùng khách hàng đã có", en="Duplicate of an existing customer"),
    "wrong_address": RejectReason(vi="Sai địa chỉ", en="Wrong address"),
    "wrong_contact": RejectReason(vi="Sai thông tin liên hệ", en="Wrong contact details"),
    "wrong_terms": RejectReason(
        vi="Điều khoản thanh toán không phù hợp", en="Unsuitable payment terms"
    ),
    "other": RejectReason(vi="Lý do khác", en="Other"),
}


class ApprovalSettings(ServiceSettings, UiSettings):
    model_config = SettingsConfigDict(env_prefix="APPROVAL_", extra="ignore")
    service_name: ClassVar[str] = "approval"
    dev_secret_defaults: ClassVar[dict[str, str]] = {**UI_DEV_SECRET_DEFAULTS}

    http_port: int = 8002
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/ims_approval"
    #: Customer codes: prefix + zero-padded sequence number (KH000001).
    code_prefix: str = Field(default="KH", pattern=r"^[A-Z0-9-]{0,10}$")
    code_digits: int = Field(default=6, ge=3, le=12)
    #: Reject reasons, code → labels, in the order CS sees them; as JSON in
    #: APPROVAL_REJECT_REASONS ({"missing_documents": {"vi": "…", "en": "…"}, …}).
    reject_reasons: dict[ReasonCode, RejectReason] = Field(
        default_factory=lambda: dict(DEFAULT_REJECT_REASONS), min_length=1
    )
    #: CS UI: a review waiting longer than this is highlighted in the queue.
    review_sla_hours: float = Field(default=24, gt=0, le=24 * 90)
    #: CS UI: where attachments are fetched from, with the signed-in user's token.
    customer_service_url: str = "http://127.0.0.1:8001"
