"""What a customer must have, by the kind of customer its type says it is.

Rules are data: each names a field, when it applies (company or individual, from the
customer type's `is_company` attribute in the reference replica) and what it requires.
A company needs its registered name, a valid 10/13-digit MST and an invoicing profile;
an individual or household may give a 12-digit personal ID as tax code.
"""

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from customer.identifiers import tax_code_problem
from customer.models import Customer, ref_items
from shared.errors import FieldError
from shared.replica import replica_item


@dataclass(frozen=True, slots=True)
class TypeRule:
    field: str
    code: str
    message_vi: str
    message_en: str
    applies_to_company: bool
    satisfied: Callable[[Customer], bool]


TYPE_RULES: tuple[TypeRule, ...] = (
    TypeRule(
        "company_name",
        "required_for_company",
        "Khách hàng doanh nghiệp cần tên công ty.",
        "A company customer needs its company name.",
        True,
        lambda c: bool(c.company_name),
    ),
    TypeRule(
        "tax_code",
        "required_for_company",
        "Khách hàng doanh nghiệp cần mã số thuế.",
        "A company customer needs a tax code.",
        True,
        lambda c: bool(c.tax_code),
    ),
    TypeRule(
        "invoice_profiles",
        "required_for_company",
        "Khách hàng doanh nghiệp cần ít nhất một thông tin xuất hóa đơn.",
        "A company customer needs at least one invoicing profile.",
        True,
        lambda c: bool(c.invoice_profiles),
    ),
)

_TAX_MESSAGES = {
    "checksum": (
        "Mã số thuế không hợp lệ (sai số kiểm tra).",
        "The tax code's check digit is wrong.",
    ),
    "personal_id_not_allowed": (
        "Doanh nghiệp phải dùng mã số thuế 10 hoặc 13 số, không dùng số định danh cá nhân.",
        "A company needs a 10- or 13-digit tax code, not a personal ID number.",
    ),
}


async def is_company(session: AsyncSession, customer: Customer) -> bool | None:
    """From the customer type in the replica; None when the type is unknown (reported elsewhere)."""
    if not customer.customer_type_code:
        return None
    item = await replica_item(session, ref_items, "customer-types", customer.customer_type_code)
    return bool(item.get("is_company")) if item else None


async def type_rule_errors(
    session: AsyncSession, customer: Customer, *, vietnamese: bool
) -> list[FieldError]:
    company = await is_company(session, customer)
    errors = [
        FieldError(rule.field, rule.message_vi if vietnamese else rule.message_en, rule.code)
        for rule in TYPE_RULES
        if company is True and rule.applies_to_company and not rule.satisfied(customer)
    ]
    checks = [("tax_code", customer.tax_code)] + [
        (f"invoice_profiles[{i}].tax_code", p.get("tax_code"))
        for i, p in enumerate(customer.invoice_profiles)
    ]
    for field, code in checks:
        if not code:
            continue
        problem = tax_code_problem(code, allow_personal_id=company is not True)
        if problem:
            vi, en = _TAX_MESSAGES[problem]
            errors.append(FieldError(field, vi if vietnamese else en, f"tax_code_{problem}"))
    return errors
