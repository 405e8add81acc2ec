"""The customer inside customer events, described for other teams and for the
compatibility check.

Customer events carry the customer "as the REST API returns it (without attachment
contents)" (CONTRACT.md §8). The models here say what that is, field by field, so that
the generated JSON Schemas and AsyncAPI document show it and `shared.events.compat`
refuses a breaking change inside it (a field removed or retyped) as it does for the
event's own fields.

They only describe: consumers keep reading `customer` as the plain dict it is on the
wire (validating it on the way in would dead-letter an event for a field the consumer
never reads). The producer is held to them by tests instead: everything the customer
service emits validates against `CustomerSnapshotV1`, and its REST model has exactly
these fields.

Every top-level field is listed as optional in the schema although the customer service
always sends all of them: the published v1 schemas left `customer` an open object, and
turning its fields into required ones would be a breaking change by the rules of
`shared.events.compat`. New fields come in optional, as for events.
"""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

AdminScheme = Literal["2025", "legacy"]
CustomerStatus = Literal["draft", "pending_approval", "active", "inactive", "rejected"]


class _Part(BaseModel):
    """A part of the snapshot: unknown keys are kept (producers may add optional ones)."""

    model_config = ConfigDict(extra="allow", frozen=True)


class DeliveryAddressV1(_Part):
    id: UUID
    label: str | None
    recipient_name: str | None
    phone: Annotated[str | None, Field(description="E.164.")]
    address: str
    province_code: str | None
    district_code: str | None
    ward_code: str | None
    admin_scheme: AdminScheme
    is_default: bool


class InvoiceProfileV1(_Part):
    id: UUID
    company_name: str
    tax_code: Annotated[str, Field(description="10 digits, or 10 + '-' + 3 for a branch.")]
    address: str | None
    email: str | None
    buyer_name: str | None
    is_default: bool


class AttachmentV1(_Part):
    """An attachment's metadata; its content is fetched from the customer service."""

    id: UUID
    kind: str
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: datetime


class Admin2025V1(_Part):
    """For a legacy address, the 2025 province and ward(s) it now belongs to."""

    province_code: str
    ward_codes: list[str]
    ambiguous: Annotated[
        bool, Field(description="The legacy ward was split between several 2025 wards.")
    ]
    unresolved_ward: Annotated[
        bool,
        Field(
            description=(
                "No 2025 ward could be derived: true when the legacy ward is not in the "
                "official table. Present only when the 2025 ward could not be derived."
            )
        ),
    ] = False


class AddressWarningV1(_Part):
    """Something the salesperson and CS should look at, without blocking submission."""

    field: str
    code: str
    message_vi: str
    message_en: str


def _no_required_fields(schema: dict[str, Any]) -> None:
    schema.pop("required", None)  # see the module's docstring


class PendingChangeV1(_Part):
    """A change request on an active customer, waiting for CS; the customer's own fields
    stay in force until it is approved. Always sent whole; no field is required in the
    schema because it was first published as an open object."""

    model_config = ConfigDict(json_schema_extra=_no_required_fields)

    fields: Annotated[
        dict[str, Any], Field(description="The proposed values, by field name: {field: new}.")
    ]
    requested_by: Annotated[str, Field(description="The employee id of the requester.")]
    requested_at: datetime
    version: Annotated[
        int, Field(description="The customer version the request was made at (its review's).")
    ]


class CustomerSnapshotV1(_Part):
    """The customer as the REST API returns it (`GET /api/v1/customers/{id}`), with its
    attachments' metadata. The customer service always sends every field."""

    model_config = ConfigDict(json_schema_extra=_no_required_fields)

    id: UUID
    customer_code: str | None
    status: CustomerStatus
    version: int
    full_name: str
    phone: Annotated[str | None, Field(description="E.164 (+84…).")]
    email: str | None
    misa_code: str | None
    address: str | None
    province_code: str | None
    district_code: str | None
    ward_code: str | None
    admin_scheme: AdminScheme
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
    delivery_addresses: list[DeliveryAddressV1]
    invoice_profiles: list[InvoiceProfileV1]
    attachments: list[AttachmentV1]
    created_by: str
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    approved_at: datetime | None
    rejection_reason: str | None
    pending_change: PendingChangeV1 | None
    admin_2025: Admin2025V1 | None
    warnings: list[AddressWarningV1]


class DescribedBy:
    """Annotates a plain dict field with a model's JSON Schema: the value stays a dict."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(self.model.__pydantic_core_schema__)
