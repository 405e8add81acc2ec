"""What the salesperson pages show: roles, statuses, reference names and the customer's
fields as people read them (names for codes, provinces by name, Vietnamese labels).

Reference names come from the service's own replica of reference's lists, read in one
query per page (`load_names`); a code the replica does not know shows as the code.
"""

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from customer.models import ref_items
from shared import admin_units
from shared.replica import ReplicaKey, replica_items
from shared.ui import Translator, UiUser, require_ui_roles
from shared.ui.customer_form import FIELD_GROUPS, LIST_FIELDS, field_key, place_name, scheme_key

#: Everyone who works with customers signs in; cs and accountant read only (CONTRACT §2).
UI_ROLES = ("sales", "sales_manager", "cs", "accountant")
CustomerUser = Annotated[UiUser, Depends(require_ui_roles(*UI_ROLES))]

STATUSES = ("draft", "pending_approval", "rejected", "active", "inactive")
#: Badge colour of each status (kit classes badge-*).
STATUS_BADGE = {
    "draft": "info",
    "pending_approval": "warn",
    "rejected": "danger",
    "active": "ok",
    "inactive": "plain",
}

#: Reference lists the customer's codes point into, by field.
CODE_LISTS: dict[str, str] = {
    "customer_type_code": "customer-types",
    "customer_group_code": "customer-groups",
    "channel_code": "channels",
    "payment_term_code": "payment-terms",
    "payment_method_code": "payment-methods",
    "sales_unit_code": "sales-units",
    "owner_employee_id": "employees",
}
#: Sub-fields of delivery addresses and invoicing profiles without a customer-field label.
ITEM_LABELS = {
    "label": "customer.delivery.label",
    "recipient_name": "customer.delivery.recipient",
    "buyer_name": "customer.invoice.buyer",
    "is_default": "customer.col.default",
}
#: Fields outside the guide's form that history shows (set by CS, MISA or the workflow).
RECORD_LABELS = {
    "status": "list.col.status",
    "customer_code": "detail.customer_code",
    "rejection_reason": "detail.rejection_reason",
}


def customer_url(customer_id: uuid.UUID | str) -> str:
    return f"/ui/customers/{customer_id}"


def status_label(t: Translator, status: str) -> str:
    key = f"status.{status}"
    return t(key) if t.has(key) else status


def local_phone(phone: str | None) -> str | None:
    """+84912345678 as Vietnamese people write it: 0912345678."""
    if phone and phone.startswith("+84"):
        return "0" + phone[3:]
    return phone


class Names:
    """Reference names by (list, code), read once per page."""

    def __init__(self, items: Mapping[ReplicaKey, Mapping[str, Any]]) -> None:
        self.items = items

    def name(self, list_name: str, code: Any) -> str | None:
        """'Name (CODE)' when the replica knows the code, else the code itself."""
        if code in (None, ""):
            return None
        item = self.items.get((list_name, str(code))) or {}
        name = item.get("name")
        return f"{name} ({code})" if name else str(code)

    def employee(self, employee_id: str | None) -> str | None:
        if not employee_id:
            return None
        item = self.items.get(("employees", employee_id)) or {}
        return str(item.get("name") or employee_id)


async def load_names(session: AsyncSession, keys: Iterable[tuple[str, str | None]]) -> Names:
    wanted = [(list_name, code) for list_name, code in keys if code]
    return Names(await replica_items(session, ref_items, wanted))


async def list_options(
    session: AsyncSession, lists: Iterable[str]
) -> dict[str, list[tuple[str, str]]]:
    """Whole reference lists as (code, name), in reference's order, for the filters."""
    rows = await session.execute(
        select(ref_items.c.list, ref_items.c.code, ref_items.c.data).where(
            ref_items.c.list.in_(list(lists))
        )
    )
    ordered: dict[str, list[tuple[int, str, str]]] = {}
    for list_name, code, data in rows:
        order = data.get("sort_order")
        ordered.setdefault(list_name, []).append(
            (order if isinstance(order, int) else 0, str(data.get("name") or code), code)
        )
    return {
        list_name: [(code, name) for _, name, code in sorted(items)]
        for list_name, items in ordered.items()
    }


def province_options() -> list[tuple[str, str]]:
    return [(p.code, p.name) for p in admin_units.provinces("2025")]


def field_label(t: Translator, path: str) -> str:
    """The label of a field or of a field of a list item, as a problem names it:
    `delivery_addresses[1].phone` → 'Địa chỉ giao hàng 2 · Điện thoại'."""
    head, _, sub = path.partition(".")
    name, _, index = head.partition("[")
    key = RECORD_LABELS.get(name, field_key(name))
    label = t(key) if t.has(key) else name
    if index.rstrip("]").isdigit():
        label = f"{label} {int(index.rstrip(']')) + 1}"
    if sub:
        sub_key = ITEM_LABELS.get(sub, field_key(sub))
        label = f"{label} · {t(sub_key) if t.has(sub_key) else sub}"
    return label


def display_value(
    t: Translator, names: Names, name: str, value: Any, scheme: Any = "2025"
) -> str | None:
    """One field's value as a person reads it (also for history's old and new values)."""
    if value is None or value == "" or value == []:
        return None
    if name in CODE_LISTS:
        return names.name(CODE_LISTS[name], value)
    if name in ("province_code", "district_code", "ward_code"):
        return place_name(name.removesuffix("_code"), value, scheme)
    if name == "admin_scheme":
        return t(scheme_key(str(value))) if t.has(scheme_key(str(value))) else str(value)
    if name == "status":
        return status_label(t, str(value))
    if name == "phone":
        return local_phone(str(value))
    if name == "credit_days":
        return t("unit.days", n=value)
    if name in ("submitted_at", "approved_at", "created_at"):
        return t.dt(value)
    if name in ("created_by", "submitted_by"):
        return names.employee(str(value))
    if name == "attachments" and isinstance(value, dict):
        return str(value.get("filename") or "")
    if isinstance(value, list):
        return "; ".join(summarise_item(name, item) for item in value if isinstance(item, dict))
    if isinstance(value, bool):
        return t("value.yes") if value else t("value.no")
    return str(value)


def summarise_item(list_field: str, item: Mapping[str, Any]) -> str:
    """A delivery address or invoicing profile on one line (for history's old → new)."""
    scheme = item.get("admin_scheme")
    if list_field == "delivery_addresses":
        parts = [
            item.get("label"),
            item.get("recipient_name"),
            local_phone(item.get("phone")),
            item.get("address"),
            place_name("ward", item.get("ward_code"), scheme),
            place_name("province", item.get("province_code"), scheme),
        ]
    else:
        parts = [
            item.get("company_name"),
            item.get("tax_code"),
            item.get("address"),
            item.get("email"),
            item.get("buyer_name"),
        ]
    return ", ".join(str(p) for p in parts if p not in (None, ""))


@dataclass(frozen=True)
class Problem:
    """A refusal of the service, shown next to the label of the field it is about."""

    label: str
    message: str
    field: str


# ---- the customer page --------------------------------------------------------------------

#: Fields history does not show: bookkeeping, or told by the entry itself (who, when).
HISTORY_HIDDEN = frozenset(
    {"id", "version", "created_at", "created_by", "updated_at", "submitted_at", "approved_at"}
    | {"pending_change"}
)
#: History lists changes in the guide's order, then the workflow's fields.
FIELD_ORDER = {
    name: i
    for i, name in enumerate(
        [
            "status",
            "customer_code",
            "rejection_reason",
            *(name for _, fields in FIELD_GROUPS for name in fields),
            *LIST_FIELDS,
            "attachments",
        ]
    )
}


@dataclass(frozen=True)
class FieldView:
    name: str
    label: str
    value: str | None


@dataclass(frozen=True)
class GroupView:
    key: str
    title: str
    fields: list[FieldView]


@dataclass(frozen=True)
class ChangeView:
    label: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class HistoryView:
    version: int
    action: str
    by: str
    at: Any
    changes: list[ChangeView]
    reason: str | None


def code_keys(values: Mapping[str, Any]) -> list[ReplicaKey]:
    """The reference items a set of field values names (for one batched lookup)."""
    keys: list[ReplicaKey] = []
    for name, value in values.items():
        if name in CODE_LISTS and isinstance(value, str) and value:
            keys.append((CODE_LISTS[name], value))
    return keys


def change_views(
    t: Translator, names: Names, changes: Mapping[str, Any], scheme: Any
) -> list[ChangeView]:
    views = []
    for name in sorted(changes, key=lambda n: (FIELD_ORDER.get(n, len(FIELD_ORDER)), n)):
        if name in HISTORY_HIDDEN:
            continue
        change = changes[name]
        pair = change if isinstance(change, dict) else {"old": None, "new": change}
        old = display_value(t, names, name, pair.get("old"), scheme)
        new = display_value(t, names, name, pair.get("new"), scheme)
        if old is None and new is None:  # e.g. an empty list at creation: nothing to say
            continue
        views.append(ChangeView(label=field_label(t, name), old=old, new=new))
    return views


def action_label(t: Translator, action: str) -> str:
    key = f"detail.action.{action}"
    return t(key) if t.has(key) else action
