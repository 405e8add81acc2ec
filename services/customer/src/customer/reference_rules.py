"""Every reference code of a submitted customer exists and is active, checked against
the local replica of reference's lists (so submission works while reference is down)."""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from customer.models import Customer, ref_items
from shared.errors import FieldError, ProblemError
from shared.replica import replica_item, replica_items, replica_readiness


@dataclass(frozen=True, slots=True)
class ReferenceField:
    field: str
    list_name: str


REFERENCE_FIELDS: tuple[ReferenceField, ...] = (
    ReferenceField("customer_type_code", "customer-types"),
    ReferenceField("customer_group_code", "customer-groups"),
    ReferenceField("channel_code", "channels"),
    ReferenceField("payment_term_code", "payment-terms"),
    ReferenceField("payment_method_code", "payment-methods"),
    ReferenceField("sales_unit_code", "sales-units"),
    ReferenceField("owner_employee_id", "employees"),
)


async def reference_errors(
    session: AsyncSession, customer: Customer, *, vietnamese: bool
) -> list[FieldError]:
    wanted = [
        (f, getattr(customer, f.field)) for f in REFERENCE_FIELDS if getattr(customer, f.field)
    ]
    if not wanted:
        return []
    known = await replica_items(session, ref_items, [(f.list_name, code) for f, code in wanted])
    if len(known) < len(wanted) and await replica_readiness(session, ref_items) != "ok":
        # Nothing has arrived from reference yet: the codes cannot be judged, so this is
        # ours to fix (try again soon), not the salesperson's.
        raise ProblemError(
            503,
            "Service Unavailable",
            "Reference lists have not reached this service yet; try again in a moment.",
            "reference-unavailable",
            headers={"Retry-After": "10"},
        )
    errors: list[FieldError] = []
    for f, code in wanted:
        item = known.get((f.list_name, code))
        if item is None:
            errors.append(
                FieldError(
                    f.field,
                    "Mã không có trong danh mục." if vietnamese else "Unknown code.",
                    "unknown_code",
                )
            )
        elif item.get("active") is False:
            errors.append(
                FieldError(
                    f.field,
                    "Mục này đã ngừng sử dụng." if vietnamese else "This item is no longer active.",
                    "inactive_code",
                )
            )
    return errors


async def group_defaults(session: AsyncSession, group_code: str | None) -> dict[str, object]:
    """The payment term and credit days a customer group gives its new customers."""
    if not group_code:
        return {}
    data = await replica_item(session, ref_items, "customer-groups", group_code)
    if not data:
        return {}
    defaults: dict[str, object] = {}
    if data.get("default_payment_term_code"):
        defaults["payment_term_code"] = data["default_payment_term_code"]
    if isinstance(data.get("default_credit_days"), int):
        defaults["credit_days"] = data["default_credit_days"]
    return defaults
