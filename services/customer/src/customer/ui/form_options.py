"""The choices of the customer form: reference lists from the service's replica, the
official administrative units (offline, `shared.admin_units`), and whom a user may assign
a customer to (the same scope `customer.ownership` enforces)."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from customer.access import unit_subtree
from customer.address_rules import ambiguity_warning, equivalent_2025
from customer.models import ref_items
from shared import admin_units
from shared.auth.principal import Principal
from shared.ui import Translator

#: The form's selects and the replica list each one offers.
SELECT_LISTS: dict[str, str] = {
    "customer_type_code": "customer-types",
    "customer_group_code": "customer-groups",
    "channel_code": "channels",
    "payment_term_code": "payment-terms",
    "payment_method_code": "payment-methods",
}


@dataclass(frozen=True)
class Option:
    code: str
    label: str
    #: data-* attributes for the script (a group's default payment term and credit days).
    data: dict[str, str] = field(default_factory=dict)


def _label(item: dict[str, Any], code: str, t: Translator) -> str:
    name = (t.lang == "en" and item.get("name_en")) or item.get("name") or code
    level = item.get("level")
    depth = level if isinstance(level, int) else 0  # channels are a tree
    return "— " * depth + f"{name} ({code})"


async def reference_options(
    session: AsyncSession,
    t: Translator,
    current: dict[str, str],
    lists: Iterable[str],
    keep: Iterable[tuple[str, str]] = (),
) -> dict[str, list[Option]]:
    """{list: options}, active items in reference's order; an inactive or unknown current
    value (or a `keep` (list, code)) stays selectable, so opening a form never changes a
    customer by itself."""
    wanted, kept = list(lists), list(keep)
    rows = await session.execute(
        select(ref_items.c.list, ref_items.c.code, ref_items.c.data).where(
            ref_items.c.list.in_(wanted)
        )
    )
    items: dict[str, list[tuple[int, str, dict[str, Any]]]] = {name: [] for name in wanted}
    for list_name, code, data in rows:
        order = data.get("sort_order") if isinstance(data.get("sort_order"), int) else 0
        items[list_name].append((order, code, dict(data)))
    options: dict[str, list[Option]] = {}
    for list_name, found in items.items():
        chosen = {
            v for f, v in current.items() if SELECT_LISTS.get(f) == list_name or f == list_name
        } | {code for name, code in kept if name == list_name}
        out = []
        for _, code, data in sorted(found, key=lambda x: (x[0], x[1])):
            if data.get("active") is False and code not in chosen:
                continue
            extra = {}
            if list_name == "customer-groups":
                extra = {
                    "term": str(data.get("default_payment_term_code") or ""),
                    "days": str(data["default_credit_days"])
                    if isinstance(data.get("default_credit_days"), int)
                    else "",
                }
            out.append(Option(code, _label(data, code, t), extra))
        known = {o.code for o in out}
        out += [Option(code, code) for code in sorted(chosen - known) if code]
        options[list_name] = out
    return options


@dataclass(frozen=True)
class Assignment:
    """Who the owner and the unit may be: fixed for a salesperson, chosen within the units
    below a sales manager, anyone for an admin. The current owner and unit are always
    among the choices (selected), even outside the user's units or unknown to the
    replica, so that opening and saving a form never reassigns a customer by itself."""

    choose: bool
    units: list[Option]
    employees: list[Option]

    def owner_unit_label(self, owner: str) -> str:
        """The label of the unit an employee belongs to ('' if unknown)."""
        found = next((o for o in self.employees if o.code == owner), None)
        return found.data.get("unit-label", "") if found else ""


async def assignment_options(
    session: AsyncSession,
    principal: Principal,
    t: Translator,
    current: dict[str, str],
    stored: dict[str, Any] | None = None,
) -> Assignment:
    """`current` is what the form shows, `stored` the customer as saved (both stay
    selectable, so a manager can go back to the stored owner or unit)."""
    choose = principal.has_any("sales_manager", "admin")
    keep_units = {
        current.get("sales_unit_code") or "",
        str((stored or {}).get("sales_unit_code") or ""),
    } - {""}
    keep_owners = {
        current.get("owner_employee_id") or "",
        str((stored or {}).get("owner_employee_id") or ""),
    } - {""}
    lists = await reference_options(
        session, t, {}, ["sales-units"], keep=[("sales-units", code) for code in keep_units]
    )
    if not choose:
        return Assignment(False, lists["sales-units"], [])
    allowed: set[str] | None = None
    if not principal.is_admin and principal.sales_unit:
        allowed = set(await unit_subtree(session, principal.sales_unit))
    unit_labels = {o.code: o.label for o in lists["sales-units"]}
    rows = await session.execute(
        select(ref_items.c.code, ref_items.c.data).where(ref_items.c.list == "employees")
    )
    employees = []
    for code, data in sorted(rows, key=lambda r: str(r[1].get("name") or r[0])):
        unit = data.get("sales_unit_code")
        in_scope = allowed is None or unit in allowed
        if (in_scope and data.get("active") is not False) or code in keep_owners:
            extra = {}
            if isinstance(unit, str) and unit:
                extra = {"unit": unit, "unit-label": unit_labels.get(unit, unit)}
            employees.append(Option(code, f"{data.get('name') or code} ({code})", extra))
    # An owner the replica does not know (yet) is still shown, by code.
    known = {o.code for o in employees}
    employees += [Option(code, code) for code in sorted(keep_owners - known)]
    units = [
        o
        for o in lists["sales-units"]
        if allowed is None or o.code in allowed or o.code in keep_units
    ]
    return Assignment(True, units, employees)


# ---- administrative units -----------------------------------------------------------------


def _scheme(value: str | None) -> admin_units.Scheme:
    return "legacy" if value == "legacy" else "2025"


def provinces(scheme: str | None) -> list[Option]:
    return [Option(p.code, p.name) for p in admin_units.provinces(_scheme(scheme))]


def districts(province_code: str | None) -> list[Option]:
    if not province_code:
        return []
    return [Option(d.code, d.name) for d in admin_units.districts_in_province(province_code)]


def wards(scheme: str | None, province_code: str | None, district_code: str | None) -> list[Option]:
    """A 2025 province's wards; a legacy district's (or, without one, its province's)."""
    if _scheme(scheme) == "legacy" and district_code:
        found = admin_units.wards_in_district(district_code)
    elif province_code:
        found = admin_units.wards_in_province(province_code, _scheme(scheme))
    else:
        found = ()
    return [Option(w.code, w.name) for w in found]


@dataclass(frozen=True)
class Equivalent:
    """Where a legacy address lies since 1 July 2025, and whether that is certain."""

    province: str | None
    wards: list[str]
    warning: str | None


def equivalent(
    t: Translator, scheme: str | None, province_code: str | None, ward_code: str | None
) -> Equivalent | None:
    """The same computation as the customer's `admin_2025` and `warnings` (CustomerOut)."""
    found = equivalent_2025(
        scheme=_scheme(scheme), province_code=province_code or None, ward_code=ward_code or None
    )
    if not found:
        return None
    new_provinces = admin_units.province_by_code("2025")
    new_wards = admin_units.ward_by_code("2025")
    province = new_provinces.get(str(found.get("province_code")))
    names = [new_wards[c].name if c in new_wards else c for c in found.get("ward_codes") or []]
    warning = ambiguity_warning("", found)
    message = None
    if warning:
        message = warning["message_vi"] if t.lang == "vi" else warning["message_en"]
    return Equivalent(province.name if province else None, names, message)
