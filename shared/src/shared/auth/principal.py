"""Who is calling: the verified claims of CONTRACT.md §2."""

from dataclasses import dataclass

ROLES = frozenset({"sales", "sales_manager", "cs", "accountant", "admin"})


@dataclass(frozen=True, slots=True)
class Principal:
    employee_id: str
    name: str
    roles: frozenset[str]
    sales_unit: str | None

    def has_any(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles
