"""Seed data for the reference service, as plain immutable Python values.

No database or web code lives here: the service loads these lists into its tables, and
tests can check them without any infrastructure.

- `admin_units`: provinces, districts and wards, 2025 and legacy schemes, from
  `vietnam-provinces`, plus the legacy→2025 ward conversion table.
- `sales_lists`: customer types and groups, sales channels, payment terms and methods.
- `sales_force`: sales units and employees, built on `shared.auth.demo`.
"""
