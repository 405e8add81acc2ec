"""Who may own a customer, and in which sales unit (CONTRACT.md §2, §4).

- A salesperson's customers are their own, in their own unit.
- A sales manager may assign customers to employees and units of their part of the tree.
- An admin may assign anyone anywhere.
The unit defaults to the owner's unit.
"""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from customer.access import employee_known, employee_unit, is_active_item, unit_subtree
from shared.auth.principal import Principal
from shared.errors import FieldError


@dataclass(frozen=True, slots=True)
class Assignment:
    owner_employee_id: str
    sales_unit_code: str | None


def _error(field: str, code: str, vi: str, en: str, vietnamese: bool) -> FieldError:
    return FieldError(field, vi if vietnamese else en, code)


async def resolve_assignment(
    session: AsyncSession,
    principal: Principal,
    *,
    owner: str | None,
    unit: str | None,
    vietnamese: bool,
) -> tuple[Assignment, list[FieldError]]:
    """The owner and unit to store (defaults applied), and what is not allowed about them."""
    owner = owner or principal.employee_id
    errors: list[FieldError] = []
    if owner != principal.employee_id:
        if not principal.has_any("sales_manager", "admin"):
            errors.append(
                _error(
                    "owner_employee_id",
                    "forbidden_owner",
                    "Nhân viên bán hàng chỉ tạo khách hàng cho chính mình.",
                    "A salesperson can only own their own customers.",
                    vietnamese,
                )
            )
        elif not await employee_known(session, owner):
            errors.append(
                _error(
                    "owner_employee_id",
                    "unknown_employee",
                    "Không tìm thấy nhân viên này.",
                    "No such employee.",
                    vietnamese,
                )
            )
        elif not await is_active_item(session, "employees", owner):
            errors.append(
                _error(
                    "owner_employee_id",
                    "inactive_employee",
                    "Nhân viên này đã nghỉ việc; hãy giao khách hàng cho nhân viên khác.",
                    "That employee has left; assign the customer to someone else.",
                    vietnamese,
                )
            )
    if unit is None:
        unit = (
            principal.sales_unit
            if owner == principal.employee_id
            else await employee_unit(session, owner)
        )
    if unit and not await is_active_item(session, "sales-units", unit):
        errors.append(
            _error(
                "sales_unit_code",
                "inactive_unit",
                "Đơn vị bán hàng này đã ngừng hoạt động.",
                "That sales unit is no longer active.",
                vietnamese,
            )
        )
    if principal.is_admin or errors:
        return Assignment(owner, unit), errors

    if principal.has_any("sales_manager") and principal.sales_unit:
        allowed = set(await unit_subtree(session, principal.sales_unit))
        if unit not in allowed:
            errors.append(
                _error(
                    "sales_unit_code",
                    "unit_out_of_scope",
                    "Đơn vị bán hàng nằm ngoài phạm vi bạn quản lý.",
                    "That sales unit is outside the units you manage.",
                    vietnamese,
                )
            )
        if owner != principal.employee_id and await employee_unit(session, owner) not in allowed:
            errors.append(
                _error(
                    "owner_employee_id",
                    "owner_out_of_scope",
                    "Nhân viên này không thuộc đơn vị bạn quản lý.",
                    "That employee is outside the units you manage.",
                    vietnamese,
                )
            )
    elif unit != principal.sales_unit:
        errors.append(
            _error(
                "sales_unit_code",
                "unit_out_of_scope",
                "Nhân viên bán hàng chỉ tạo khách hàng trong đơn vị của mình.",
                "A salesperson's customers belong to their own sales unit.",
                vietnamese,
            )
        )
    return Assignment(owner, unit), errors
