"""The customer form of the user guide (SEED.md) as data, for every UI that shows it.

The salesperson's form (customer service) and CS's review page (approval) show the same
fields in the same order and groups, labelled from the kit's catalog: a field's label is
`customer.field.<name>`, a group's title `customer.group.<key>`.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared import admin_units

if TYPE_CHECKING:
    from shared.ui.i18n import Translator

#: The guide's fields in its order, in sections (`ward_code` and `admin_scheme` belong to
#: the address since the 2025 reform).
FIELD_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("contact", ("full_name", "phone", "email", "misa_code")),
    ("address", ("address", "province_code", "district_code", "ward_code", "admin_scheme")),
    ("company", ("company_name", "tax_code", "contact_name")),
    ("classification", ("customer_type_code", "customer_group_code", "channel_code")),
    ("payment", ("payment_term_code", "payment_method_code", "credit_days")),
    ("assignment", ("sales_unit_code", "owner_employee_id", "note")),
)
#: The guide's last three fields: lists of their own.
LIST_FIELDS: tuple[str, ...] = ("delivery_addresses", "invoice_profiles")
ATTACHMENTS_FIELD = "attachments"
#: What an attachment may be (CONTRACT.md §4); labels `customer.attachment_kind.<kind>`.
ATTACHMENT_KINDS: tuple[str, ...] = (
    "business_license",
    "contract",
    "announcement",
    "note",
    "image",
    "other",
)
#: What a browser may show itself (served inline under a sandbox CSP); the rest downloads.
INLINE_IMAGES = frozenset({"image/jpeg", "image/png", "image/webp"})
INLINE_TYPES = INLINE_IMAGES | {"application/pdf"}


def field_key(name: str) -> str:
    return f"customer.field.{name}"


def group_key(key: str) -> str:
    return f"customer.group.{key}"


def scheme_key(scheme: str) -> str:
    return f"customer.scheme.{scheme}"


def attachment_kind_key(kind: str) -> str:
    return f"customer.attachment_kind.{kind}"


def _scheme(value: Any) -> admin_units.Scheme:
    return "legacy" if value == "legacy" else "2025"


def place_name(kind: str, code: Any, scheme: Any, *, with_code: bool = False) -> str | None:
    """The official name of a province, district or ward code (optionally with the code
    after it), else the code itself; None for no code."""
    if code in (None, ""):
        return None
    text = str(code)
    unit: Any
    try:
        if kind == "province":
            unit = admin_units.province_by_code(_scheme(scheme)).get(text)
        elif kind == "district":
            unit = admin_units.district_by_code().get(text)
        else:
            unit = admin_units.ward_by_code(_scheme(scheme)).get(text)
    except (KeyError, ValueError):
        unit = None
    if unit is None:
        return text
    return f"{unit.name} ({text})" if with_code else str(unit.name)


def area_of(item: Mapping[str, Any], *, with_code: bool = False) -> str:
    """A delivery address's ward, district (legacy only) and province on one line."""
    scheme = item.get("admin_scheme")
    parts = (
        place_name("ward", item.get("ward_code"), scheme, with_code=with_code),
        place_name("district", item.get("district_code"), "legacy", with_code=with_code),
        place_name("province", item.get("province_code"), scheme, with_code=with_code),
    )
    return ", ".join(p for p in parts if p)


@dataclass(frozen=True, slots=True)
class AttachmentView:
    """One attachment as both UIs list it (the kit's `attachment_list` macro)."""

    id: str
    href: str
    filename: str
    kind_label: str
    size: int | None
    uploaded_at: str | None
    uploader: str | None
    content_type: str | None

    @property
    def image(self) -> bool:
        return self.content_type in INLINE_IMAGES

    @property
    def inline(self) -> bool:
        return self.content_type in INLINE_TYPES

    @property
    def pdf(self) -> bool:
        return self.content_type == "application/pdf"


def attachment_views(
    t: "Translator",
    items: Iterable[Mapping[str, Any]],
    href_prefix: str,
    employee: Callable[[str | None], str | None] | None = None,
) -> list[AttachmentView]:
    """The API's attachment items (CONTRACT.md §4) as the UIs show them; each links to
    `<href_prefix>/<id>`, the UI's own download route. Missing keys show as empty."""
    views = []
    for a in items:
        kind = str(a.get("kind") or "")
        key = attachment_kind_key(kind)
        size = a.get("size")
        uploaded_by = a.get("uploaded_by")
        views.append(
            AttachmentView(
                id=str(a.get("id") or ""),
                href=f"{href_prefix}/{a.get('id')}",
                filename=str(a.get("filename") or ""),
                kind_label=t(key) if t.has(key) else kind,
                size=size if isinstance(size, int) else None,
                uploaded_at=str(a["uploaded_at"]) if a.get("uploaded_at") else None,
                uploader=employee(str(uploaded_by)) if employee and uploaded_by else None,
                content_type=str(a.get("content_type") or "") or None,
            )
        )
    return views
