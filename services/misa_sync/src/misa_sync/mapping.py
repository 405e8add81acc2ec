"""An IMS customer (CONTRACT.md §4 snapshot) as a MISA account object (MISA_API.md §13).

Every mapped key is always present (``None`` when IMS has no value), so an update clears
in MISA what was removed in IMS, and "did a mapped field change" is a plain dict compare.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from shared import admin_units

#: The company-type codes of the reference list ``customer-types`` (``is_company``).
DEFAULT_COMPANY_TYPES: Final = frozenset({"DN", "DNTN", "CNDN", "HTX", "TOCHUC"})

#: Keys that are instructions or constants rather than customer data: ignored when
#: comparing what we pushed with what MISA holds.
NOT_COMPARED: Final = frozenset({"state", "dictionary_type"})

#: MISA's account object type (MISA_API.md §8).
ORGANISATION: Final = 0
INDIVIDUAL: Final = 1


@dataclass(frozen=True, slots=True)
class MappingOptions:
    #: Customer types that are legal entities; unknown or missing type → decided by
    #: whether the customer has a company name.
    company_types: Collection[str] = field(default_factory=lambda: DEFAULT_COMPANY_TYPES)
    #: MISA rejects a group that does not exist there; turn off until groups are set up.
    send_group_codes: bool = True
    branch_id: str | None = None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _default_entry(entries: Any) -> Mapping[str, Any] | None:
    """The ``is_default`` entry of a list (else the first), for delivery/invoice lists."""
    if not isinstance(entries, list):
        return None
    candidates = [e for e in entries if isinstance(e, Mapping)]
    for entry in candidates:
        if entry.get("is_default"):
            return entry
    return candidates[0] if candidates else None


def is_organisation(customer: Mapping[str, Any], company_types: Collection[str]) -> bool:
    type_code = _text(customer.get("customer_type_code"))
    if type_code is not None:
        return type_code in company_types
    return _text(customer.get("company_name")) is not None


def admin_unit_names(customer: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(province, district, ward) official names in the customer's own scheme.

    The 2025 scheme has no districts; an unknown code gives None rather than a guess.
    """
    scheme: admin_units.Scheme = "legacy" if customer.get("admin_scheme") == "legacy" else "2025"
    province_code = _text(customer.get("province_code"))
    ward_code = _text(customer.get("ward_code"))
    province = admin_units.province_by_code(scheme).get(province_code or "")
    ward = admin_units.ward_by_code(scheme).get(ward_code or "")
    district_name: str | None = None
    if scheme == "legacy":
        district = admin_units.district_by_code().get(_text(customer.get("district_code")) or "")
        district_name = district.name if district else None
    return (
        province.name if province else None,
        district_name,
        ward.name if ward else None,
    )


def code_to_send(customer: Mapping[str, Any], misa_code: str | None = None) -> str | None:
    """MISA's code for the customer: the one MISA already knows, else the IMS code."""
    return (
        _text(misa_code) or _text(customer.get("misa_code")) or _text(customer.get("customer_code"))
    )


def customer_to_account_object(
    customer: Mapping[str, Any],
    *,
    account_object_id: str,
    branch_id: str | None = None,
    misa_code: str | None = None,
    options: MappingOptions | None = None,
) -> dict[str, Any]:
    """The account object to save for ``customer``.

    ``misa_code`` is the code of the MISA object the customer is linked to, when that
    differs from what the snapshot says. Raises ValueError when the customer has no code
    or no name: MISA requires both (MISA_API.md §8).
    """
    options = options or MappingOptions()
    code = code_to_send(customer, misa_code)
    if code is None:
        raise ValueError("customer has neither misa_code nor customer_code")
    organisation = is_organisation(customer, options.company_types)
    person = _text(customer.get("full_name"))
    company = _text(customer.get("company_name"))
    name = (company or person) if organisation else (person or company)
    if name is None:
        raise ValueError("customer has no full_name or company_name")
    contact = _text(customer.get("contact_name"))
    if contact is None and organisation and person != name:
        contact = person  # for a company, the person we deal with is the contact
    credit_days = customer.get("credit_days")
    province, district, ward = admin_unit_names(customer)
    delivery = _default_entry(customer.get("delivery_addresses"))
    invoice = _default_entry(customer.get("invoice_profiles"))
    group = _text(customer.get("customer_group_code")) if options.send_group_codes else None

    obj: dict[str, Any] = {
        "dictionary_type": 1,
        "account_object_id": account_object_id,
        "account_object_code": code,
        "account_object_name": name,
        "account_object_type": ORGANISATION if organisation else INDIVIDUAL,
        "is_customer": True,
        "is_vendor": False,
        "is_employee": False,
        "inactive": customer.get("status") == "inactive",
        "company_tax_code": _text(customer.get("tax_code")),
        "address": _text(customer.get("address")),
        "province_or_city": province,
        "district": district,
        "ward_or_commune": ward,
        "country": "Việt Nam",
        "tel": _text(customer.get("phone")),
        "email_address": _text(customer.get("email")),
        "contact_name": contact,
        "einvoice_contact_name": _text(invoice.get("buyer_name")) if invoice else None,
        "einvoice_contact_email": _text(invoice.get("email")) if invoice else None,
        "shipping_address": _text(delivery.get("address")) if delivery else None,
        "due_time": credit_days
        if isinstance(credit_days, int) and not isinstance(credit_days, bool) and credit_days >= 0
        else None,
        "account_object_group_code_list": group,
        "description": _text(customer.get("note")),
        # Standard receivable/payable accounts of VN accounting (Circular 200).
        "receive_account": "131",
        "pay_account": "331",
        # 1 = add; the Odoo connector also sends 1 for updates (MISA_API.md §7).
        "state": 1,
    }
    branch = branch_id or options.branch_id
    if branch is not None:
        obj["branch_id"] = branch
    return obj


def _comparable(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip() or None
    return value


def differing_fields(pushed: Mapping[str, Any], held: Mapping[str, Any]) -> list[str]:
    """Mapped keys whose value in MISA (``held``) differs from what we last pushed."""
    return sorted(
        key
        for key, value in pushed.items()
        if key not in NOT_COMPARED and _comparable(value) != _comparable(held.get(key))
    )
