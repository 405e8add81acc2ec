"""The sales-force tree and employees, built on the demo organisation in `shared.auth.demo`.

The units and the employees with logins come from `shared.auth.demo`, which is also the
source of the dev token issuer's users. Nothing here redefines them, so a token's
`sub` and `sales_unit` always match a seeded employee and unit. A few field staff without
logins are added so that lists and ownership look realistic.
"""

from dataclasses import dataclass
from functools import cache
from typing import Literal

from shared.auth.demo import DEMO_SALES_UNITS, DEMO_USERS

SalesUnitLevel = Literal["national", "region", "area", "team", "office"]

# The level follows from a unit's depth in the tree. The head office hangs off the root
# like a region, but it is a back office with no territory, so it is named here.
_LEVEL_BY_DEPTH: tuple[SalesUnitLevel, ...] = ("national", "region", "area", "team")
_LEVEL_OVERRIDES: dict[str, SalesUnitLevel] = {"HO": "office"}


@dataclass(frozen=True, slots=True)
class SalesUnit:
    code: str
    name: str
    parent_code: str | None
    manager_employee_id: str | None
    level: SalesUnitLevel
    sort_order: int
    """Position in `DEMO_SALES_UNITS`, which lists parents before their children."""
    active: bool


@dataclass(frozen=True, slots=True)
class Employee:
    id: str
    """The employee number. It is also the JWT `sub` for staff who can log in."""
    name: str
    username: str | None
    """The login name, or ``None`` for staff without a login."""
    sales_unit_code: str | None
    roles: tuple[str, ...]
    active: bool


# Field salespeople without a login. The NV1xx ids stay clear of the demo users' NV0xx.
# (id, name, sales unit, active)
_FIELD_STAFF: tuple[tuple[str, str, str, bool], ...] = (
    ("NV101", "Ngô Đức Thắng", "HN-T1", True),
    ("NV102", "Đặng Thị Lan", "HN-T2", True),
    ("NV103", "Trương Minh Tuấn", "HCM-T1", True),
    ("NV104", "Lý Thị Ngọc Hân", "HCM-T1", True),
    # Someone who left, so that inactive owners appear in the data.
    ("NV105", "Phan Văn Hùng", "HN-T2", False),
)


def _level(code: str, depth: int) -> SalesUnitLevel:
    if code in _LEVEL_OVERRIDES:
        return _LEVEL_OVERRIDES[code]
    if depth >= len(_LEVEL_BY_DEPTH):
        raise ValueError(f"sales unit {code} is deeper than a team (depth {depth})")
    return _LEVEL_BY_DEPTH[depth]


@cache
def sales_units() -> tuple[SalesUnit, ...]:
    """The sales-force tree, parents first."""
    depth: dict[str, int] = {}
    result = []
    for i, (code, name, parent, manager) in enumerate(DEMO_SALES_UNITS):
        # DEMO_SALES_UNITS lists parents first, so the parent's depth is already known.
        depth[code] = 0 if parent is None else depth[parent] + 1
        result.append(
            SalesUnit(
                code=code,
                name=name,
                parent_code=parent,
                manager_employee_id=manager,
                level=_level(code, depth[code]),
                sort_order=(i + 1) * 10,
                active=True,
            )
        )
    return tuple(result)


def employees(*, include_field_staff: bool = True) -> tuple[Employee, ...]:
    """The demo users (with logins) and, by default, the field staff without logins, by id."""
    # A plain wrapper keeps the typed signature that `functools.cache` would hide from mypy.
    return _employees(include_field_staff)


@cache
def _employees(include_field_staff: bool) -> tuple[Employee, ...]:
    staff = [
        Employee(
            id=u.employee_id,
            name=u.name,
            username=u.username,
            sales_unit_code=u.sales_unit,
            roles=u.roles,
            active=True,
        )
        for u in DEMO_USERS.values()
    ]
    if include_field_staff:
        staff.extend(
            Employee(
                id=eid,
                name=name,
                username=None,
                sales_unit_code=unit,
                roles=("sales",),
                active=active,
            )
            for eid, name, unit, active in _FIELD_STAFF
        )
    return tuple(sorted(staff, key=lambda e: e.id))
