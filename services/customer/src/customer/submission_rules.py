"""What a customer needs before it can be sent to CS ("Gửi CS duyệt").

Rules are data: a field, the condition under which it is required, and its messages.
Reference-code existence and deeper checks (tax-code checksum by type, address
consistency) are added here as further rules.
"""

from collections.abc import Callable
from dataclasses import dataclass

from customer.address_rules import address_errors
from customer.models import Customer
from shared.errors import FieldError


@dataclass(frozen=True, slots=True)
class RequiredField:
    field: str
    label_vi: str
    label_en: str
    applies: Callable[[Customer], bool] = lambda _c: True


REQUIRED_ON_SUBMIT: tuple[RequiredField, ...] = (
    RequiredField("full_name", "Họ và tên", "Full name"),
    RequiredField("phone", "Điện thoại", "Phone"),
    RequiredField("address", "Địa chỉ", "Address"),
    RequiredField("province_code", "Tỉnh thành", "Province"),
    RequiredField("district_code", "Quận/Huyện", "District", lambda c: c.admin_scheme == "legacy"),
    RequiredField("customer_type_code", "Loại khách hàng", "Customer type"),
    RequiredField("customer_group_code", "Nhóm khách hàng", "Customer group"),
    RequiredField("channel_code", "Kênh khách hàng", "Sales channel"),
    RequiredField("payment_term_code", "Điều khoản thanh toán", "Payment terms"),
    RequiredField("payment_method_code", "Hình thức thanh toán", "Payment method"),
    RequiredField("credit_days", "Số ngày được nợ", "Credit days"),
    RequiredField("sales_unit_code", "SalesForce", "Sales-force unit"),
    RequiredField("owner_employee_id", "Tên nhân viên", "Owning employee"),
)


def submission_errors(customer: Customer, *, vietnamese: bool) -> list[FieldError]:
    """Every problem at once, each naming its field."""
    errors: list[FieldError] = []
    for rule in REQUIRED_ON_SUBMIT:
        if not rule.applies(customer):
            continue
        value = getattr(customer, rule.field)
        if value is None or (isinstance(value, str) and not value.strip()):
            message = (
                f"{rule.label_vi} là bắt buộc khi gửi CS duyệt."
                if vietnamese
                else f"{rule.label_en} is required to send the customer for approval."
            )
            errors.append(FieldError(rule.field, message, "required"))
    return errors


def address_problems(customer: Customer, *, vietnamese: bool) -> list[FieldError]:
    """The customer's address and every delivery address, in their own schemes."""
    errors = address_errors(
        "",
        scheme=customer.admin_scheme,
        province_code=customer.province_code,
        district_code=customer.district_code,
        ward_code=customer.ward_code,
        vietnamese=vietnamese,
    )
    for i, addr in enumerate(customer.delivery_addresses):
        errors += address_errors(
            f"delivery_addresses[{i}].",
            scheme=str(addr.get("admin_scheme") or "2025"),
            province_code=addr.get("province_code"),
            district_code=addr.get("district_code"),
            ward_code=addr.get("ward_code"),
            vietnamese=vietnamese,
        )
    return errors


def single_default_errors(customer: Customer, *, vietnamese: bool) -> list[FieldError]:
    """At most one default delivery address and one default invoicing profile."""
    errors: list[FieldError] = []
    for name in ("delivery_addresses", "invoice_profiles"):
        defaults = [i for i, item in enumerate(getattr(customer, name)) if item.get("is_default")]
        for index in defaults[1:]:
            message = "Chỉ được có một mặc định." if vietnamese else "Only one may be the default."
            errors.append(FieldError(f"{name}[{index}].is_default", message, "single_default"))
    return errors
