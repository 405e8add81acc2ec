"""What the CS pages show, built from a review: the form's fields grouped as in the user
guide (shared.ui.customer_form, labels from the kit's catalog), codes with their names, a change review's old → new values, duplicates.

Reviews hold the customer as the customer service's REST API returns it (CONTRACT.md §4);
anything missing from an older or partial snapshot shows as empty, never as an error.
"""

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from approval.models import Review, ref_items
from approval.queries import ReviewFilters, list_reviews
from shared.ui import Translator
from shared.ui.customer_form import (
    FIELD_GROUPS,
    INLINE_TYPES,
    LIST_FIELDS,
    AttachmentView,
    area_of,
    attachment_views,
    field_key,
    group_key,
    place_name,
    scheme_key,
)

#: Reference lists a review's codes point into, by field.
CODE_LISTS: dict[str, str] = {
    "customer_type_code": "customer-types",
    "customer_group_code": "customer-groups",
    "channel_code": "channels",
    "payment_term_code": "payment-terms",
    "payment_method_code": "payment-methods",
    "sales_unit_code": "sales-units",
    "owner_employee_id": "employees",
}

#: What the customer service accepts at upload (customer.file_types).
KNOWN_TYPES = INLINE_TYPES | {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


Names = Mapping[str, Mapping[str, str]]


async def reference_names(session: AsyncSession, lists: Iterable[str]) -> dict[str, dict[str, str]]:
    """{list: {code: name}} from the replica of reference's lists (empty when unknown)."""
    rows = await session.execute(
        select(ref_items.c.list, ref_items.c.code, ref_items.c.data["name"].astext).where(
            ref_items.c.list.in_(list(lists))
        )
    )
    names: dict[str, dict[str, str]] = {}
    for list_name, code, name in rows:
        if name:
            names.setdefault(list_name, {})[code] = name
    return names


def named(names: Names, list_name: str, code: Any) -> str | None:
    """'Name (CODE)' when the replica knows the code, else the code itself."""
    if code in (None, ""):
        return None
    name = names.get(list_name, {}).get(str(code))
    return f"{name} ({code})" if name else str(code)


def display_value(
    t: Translator, names: Names, name: str, value: Any, snapshot: Mapping[str, Any]
) -> str | None:
    """One field's value as CS reads it."""
    if value is None or value == "" or value == []:
        return None
    scheme = snapshot.get("admin_scheme")
    if name in CODE_LISTS:
        return named(names, CODE_LISTS[name], value)
    if name == "province_code":
        return place_name("province", value, scheme, with_code=True)
    if name == "district_code":
        return place_name("district", value, scheme, with_code=True)
    if name == "ward_code":
        return place_name("ward", value, scheme, with_code=True)
    if name == "admin_scheme":
        return t(scheme_key(str(value))) if t.has(scheme_key(str(value))) else str(value)
    if name == "credit_days":
        return t("unit.days", n=value)
    if name in LIST_FIELDS:
        return "; ".join(summarise_item(t, name, item) for item in value if isinstance(item, dict))
    if isinstance(value, bool):
        return t("value.yes") if value else t("value.no")
    return str(value)


def summarise_item(t: Translator, list_field: str, item: Mapping[str, Any]) -> str:
    """A delivery address or invoicing profile on one line (for old → new)."""
    if list_field == "delivery_addresses":
        parts = [
            item.get("label"),
            item.get("recipient_name"),
            item.get("phone"),
            item.get("address"),
            place_name("ward", item.get("ward_code"), item.get("admin_scheme"), with_code=True),
            place_name(
                "province", item.get("province_code"), item.get("admin_scheme"), with_code=True
            ),
        ]
    else:
        parts = [
            item.get("company_name"),
            item.get("tax_code"),
            item.get("address"),
            item.get("email"),
            item.get("buyer_name"),
        ]
    text = ", ".join(str(p) for p in parts if p not in (None, ""))
    return f"{text} ({t('value.default')})" if item.get("is_default") else text


@dataclass
class FieldView:
    name: str
    label: str
    value: str | None
    changed: bool = False
    old: str | None = None


@dataclass
class GroupView:
    key: str
    title: str
    fields: list[FieldView]


@dataclass
class ChangeView:
    name: str
    label: str
    old: str | None
    new: str | None


@dataclass
class DuplicateView:
    customer_id: str
    full_name: str
    customer_code: str | None
    status: str
    reasons: list[str]
    score_percent: int
    review_id: uuid.UUID | None = None


@dataclass
class ReviewView:
    groups: list[GroupView]
    changes: list[ChangeView]
    delivery_addresses: list[dict[str, Any]]
    invoice_profiles: list[dict[str, Any]]
    attachments: list[AttachmentView]
    warnings: list[str]
    duplicates: list[DuplicateView] = field(default_factory=list)


def changes_of(review: Review) -> dict[str, dict[str, Any]]:
    raw = getattr(review, "changes", None) or {}
    return {str(k): v if isinstance(v, dict) else {"old": None, "new": v} for k, v in raw.items()}


def build_review_view(t: Translator, names: Names, review: Review) -> ReviewView:
    snapshot: Mapping[str, Any] = review.customer or {}
    changes = changes_of(review)
    groups = []
    for key, fields in FIELD_GROUPS:
        views = []
        for name in fields:
            change = changes.get(name)
            views.append(
                FieldView(
                    name=name,
                    label=t(field_key(name)),
                    value=display_value(t, names, name, snapshot.get(name), snapshot),
                    changed=change is not None,
                    old=display_value(t, names, name, change.get("old"), snapshot)
                    if change
                    else None,
                )
            )
        groups.append(GroupView(key, t(group_key(key)), views))
    change_views = [
        ChangeView(
            name=name,
            label=t(field_key(name)) if t.has(field_key(name)) else name,
            old=display_value(t, names, name, change.get("old"), snapshot),
            new=display_value(t, names, name, change.get("new"), snapshot),
        )
        for name, change in changes.items()
    ]
    addresses = [
        {**item, "area": area_of(item, with_code=True)}
        for item in _dicts(snapshot.get("delivery_addresses"))
    ]
    attachments = attachment_views(
        t,
        _dicts(snapshot.get("attachments")),
        f"/ui/reviews/{review.id}/attachments",
        lambda employee_id: named(names, "employees", employee_id),
    )
    lang_key = "message_vi" if t.lang == "vi" else "message_en"
    warnings = [str(w.get(lang_key) or w.get("code")) for w in _dicts(snapshot.get("warnings"))]
    return ReviewView(
        groups=groups,
        changes=change_views,
        delivery_addresses=addresses,
        invoice_profiles=_dicts(snapshot.get("invoice_profiles")),
        attachments=attachments,
        warnings=warnings,
    )


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [dict(v) for v in value if isinstance(v, dict)] if isinstance(value, list) else []


async def duplicate_views(session: AsyncSession, review: Review) -> list[DuplicateView]:
    """The review's candidates; one waiting for CS links to its own pending review."""
    views = []
    for raw in _dicts(getattr(review, "duplicates", None)):
        try:
            candidate_id = uuid.UUID(str(raw.get("customer_id")))
        except ValueError:
            continue
        pending_review = None
        if raw.get("status") == "pending":
            found, _ = await list_reviews(
                session,
                ReviewFilters(status="pending", customer_id=candidate_id),
                limit=1,
                cursor=None,
            )
            pending_review = found[0].id if found else None
        score = raw.get("score")
        views.append(
            DuplicateView(
                customer_id=str(candidate_id),
                full_name=str(raw.get("full_name") or ""),
                customer_code=raw.get("customer_code"),
                status=str(raw.get("status") or ""),
                reasons=[str(r) for r in raw.get("reasons") or []],
                score_percent=round(float(score) * 100) if isinstance(score, int | float) else 0,
                review_id=pending_review,
            )
        )
    return views


def is_overdue(submitted_at: datetime, sla_hours: float, now: datetime | None = None) -> bool:
    return (now or datetime.now(UTC)) - submitted_at > timedelta(hours=sla_hours)
