"""Seed data for the reference service, as plain immutable Python values.

No database or web code lives here: the service loads these lists into its tables, and
tests can check them without any infrastructure. Administrative units live in
`shared.admin_units`, because the customer service validates addresses with them too.

- `sales_lists`: customer types and groups, sales channels, payment terms and methods.
- `sales_force`: sales units and employees, built on `shared.auth.demo`.
"""
