"""The customer as the REST API reads and writes it (CONTRACT.md §4).

Draft input refuses what is present and malformed; completeness is checked on submit.
"""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, computed_field

from customer.address_rules import ambiguity_warning, equivalent_2025
from customer.identifiers import normalise_phone
from shared.validation import NoNul

Text200 = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul
]
Text500 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500), NoNul]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40), NoNul]
AdminScheme = Literal["2025", "legacy"]


def normalise_email(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from exc


Phone = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=30), AfterValidator(normalise_phone)
]
Email = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=254), AfterValidator(normalise_email)
]
TaxCode = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^\d{10}(-\d{3})?$|^\d{12}$")
]


class DeliveryAddress(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    label: Text200 | None = None
    recipient_name: Text200 | None = None
    phone: Phone | None = None
    address: Text500
    province_code: Code | None = None
    district_code: Code | None = None
    ward_code: Code | None = None
    admin_scheme: AdminScheme = "2025"
    is_default: bool = False


class InvoiceProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    company_name: Text200
    tax_code: TaxCode
    address: Text500 | None = None
    email: Email | None = None
    buyer_name: Text200 | None = None
    is_default: bool = False


class CustomerFields(BaseModel):
    """The editable fields; all optional except the name, as a draft may be incomplete."""

    model_config = ConfigDict(extra="forbid")

    phone: Phone | None = None
    email: Email | None = None
    misa_code: Code | None = None
    address: Text500 | None = None
    province_code: Code | None = None
    district_code: Code | None = None
    ward_code: Code | None = None
    admin_scheme: AdminScheme = "2025"
    company_name: Text200 | None = None
    tax_code: TaxCode | None = None
    contact_name: Text200 | None = None
    customer_type_code: Code | None = None
    customer_group_code: Code | None = None
    channel_code: Code | None = None
    payment_term_code: Code | None = None
    payment_method_code: Code | None = None
    credit_days: Annotated[int, Field(ge=0, le=3650)] | None = None
    sales_unit_code: Code | None = None
    owner_employee_id: Code | None = None
    note: Annotated[str, StringConstraints(max_length=4000), NoNul] | None = None
    delivery_addresses: Annotated[list[DeliveryAddress], Field(max_length=50)] = []
    invoice_profiles: Annotated[list[InvoiceProfile], Field(max_length=20)] = []


class CustomerCreate(CustomerFields):
    full_name: Text200


class CustomerPatch(CustomerFields):
    """A merge patch: only the fields present change; `null` clears an optional field."""

    full_name: Text200 | None = None
    admin_scheme: AdminScheme | None = None  # type: ignore[assignment]
    delivery_addresses: Annotated[list[DeliveryAddress], Field(max_length=50)] | None = None  # type: ignore[assignment]
    invoice_profiles: Annotated[list[InvoiceProfile], Field(max_length=20)] | None = None  # type: ignore[assignment]


class Attachment(BaseModel):
    id: uuid.UUID
    kind: str
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: datetime


class CustomerOut(BaseModel):
    id: uuid.UUID
    customer_code: str | None
    status: str
    version: int
    full_name: str
    phone: str | None
    email: str | None
    misa_code: str | None
    address: str | None
    province_code: str | None
    district_code: str | None
    ward_code: str | None
    admin_scheme: str
    company_name: str | None
    tax_code: str | None
    contact_name: str | None
    customer_type_code: str | None
    customer_group_code: str | None
    channel_code: str | None
    payment_term_code: str | None
    payment_method_code: str | None
    credit_days: int | None
    sales_unit_code: str | None
    owner_employee_id: str
    note: str | None
    delivery_addresses: list[dict[str, Any]]
    invoice_profiles: list[dict[str, Any]]
    attachments: list[Attachment] = []
    created_by: str
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    approved_at: datetime | None
    rejection_reason: str | None
    #: A change request waiting for CS (active customers); the fields above stay in force.
    pending_change: dict[str, Any] | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def admin_2025(self) -> dict[str, Any] | None:
        """For a legacy address, the 2025 province and ward(s) it now belongs to."""
        return equivalent_2025(
            scheme=self.admin_scheme, province_code=self.province_code, ward_code=self.ward_code
        )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def warnings(self) -> list[dict[str, str]]:
        """What the salesperson and CS should look at, without blocking submission."""
        found = [ambiguity_warning("", self.admin_2025)]
        for i, addr in enumerate(self.delivery_addresses):
            equivalent = equivalent_2025(
                scheme=str(addr.get("admin_scheme") or "2025"),
                province_code=addr.get("province_code"),
                ward_code=addr.get("ward_code"),
            )
            found.append(ambiguity_warning(f"delivery_addresses[{i}].", equivalent))
        return [w for w in found if w]


class CustomerPage(BaseModel):
    items: list[CustomerOut]
    next_cursor: str | None


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), NoNul
    ]


class OrderEligibility(BaseModel):
    eligible: bool
    reason: Literal["not_approved", "inactive"] | None


class HistoryEntry(BaseModel):
    version: int
    action: str
    by: str
    at: datetime
    changes: dict[str, Any]
    reason: str | None


class HistoryPage(BaseModel):
    items: list[HistoryEntry]
