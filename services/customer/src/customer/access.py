"""Who may see and change which customer (CONTRACT.md §2)."""

from sqlalchemy import ColumnElement, false, or_, select, text, true
from sqlalchemy.ext.asyncio import AsyncSession

from customer.models import Customer, ref_items
from shared.auth.principal import Principal
from shared.replica import replica_item

READ_ALL_ROLES = ("cs", "accountant", "admin")
WRITE_ROLES = ("sales", "sales_manager", "admin")

_SUBTREE = text(
    """
    WITH RECURSIVE tree(code) AS (
        SELECT CAST(:root AS text)
        UNION
        SELECT u.code FROM ref_items u JOIN tree t ON u.data->>'parent_code' = t.code
        WHERE u.list = 'sales-units'
    )
    SELECT code FROM tree
    """
)


async def unit_subtree(session: AsyncSession, root: str) -> list[str]:
    """A sales unit and every unit below it, from the local replica of the tree."""
    return list((await session.scalars(_SUBTREE, {"root": root})).all())


async def visibility_filter(session: AsyncSession, principal: Principal) -> ColumnElement[bool]:
    """The SQL condition selecting the customers `principal` may see."""
    if principal.has_any(*READ_ALL_ROLES):
        return true()
    conditions: list[ColumnElement[bool]] = []
    if principal.has_any("sales", "sales_manager"):
        conditions.append(Customer.owner_employee_id == principal.employee_id)
    if principal.has_any("sales_manager") and principal.sales_unit:
        units = await unit_subtree(session, principal.sales_unit)
        conditions.append(Customer.sales_unit_code.in_(units))
    return or_(*conditions) if conditions else false()


async def visible_customer(
    session: AsyncSession, principal: Principal, customer_id: object, *, lock: bool = False
) -> Customer | None:
    """The customer if `principal` may see it; `lock` reads it FOR UPDATE (a writer's
    check and lock in one round trip)."""
    condition = await visibility_filter(session, principal)
    stmt = select(Customer).where(Customer.id == customer_id, condition)
    if lock:
        stmt = stmt.with_for_update(of=Customer)
    return (await session.scalars(stmt)).one_or_none()


async def employee_unit(session: AsyncSession, employee_id: str) -> str | None:
    """The sales unit of an employee, from the replica; None if unknown."""
    item = await replica_item(session, ref_items, "employees", employee_id) or {}
    unit = item.get("sales_unit_code")
    return unit if isinstance(unit, str) else None


async def employee_known(session: AsyncSession, employee_id: str) -> bool:
    return await replica_item(session, ref_items, "employees", employee_id) is not None


async def is_active_item(session: AsyncSession, list_name: str, code: str) -> bool:
    """False only when the replica knows the item and says it is inactive."""
    item = await replica_item(session, ref_items, list_name, code)
    return item is None or item.get("active") is not False


def may_write(principal: Principal) -> bool:
    return principal.has_any(*WRITE_ROLES)
