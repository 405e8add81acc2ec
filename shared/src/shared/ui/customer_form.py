"""The customer form of the user guide (SEED.md) as data, for every UI that shows it.

The salesperson's form (customer service) and CS's review page (approval) show the same
fields in the same order and groups, labelled from the kit's catalog: a field's label is
`customer.field.<name>`, a group's title `customer.group.<key>`.
"""

#: The guide's fields in its order, in sections (`ward_code` and `admin_scheme` belong to
#: the address since the 2025 reform).
FIELD_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("contact", ("full_name", "phone", "email", "misa_code")),
    ("address", ("address", "province_code", "district_code", "ward_code", "admin_scheme")),
    ("company", ("company_name", "tax_code", "contact_name")),
    ("classification", ("customer_type_code", "customer_group_code", "channel_code")),
    ("payment", ("payment_term_code", "payment_method_code", "credit_days")),
    ("assignment", ("sales_unit_code", "owner_employee_id", "note")),
)
#: The guide's last three fields: lists of their own.
LIST_FIELDS: tuple[str, ...] = ("delivery_addresses", "invoice_profiles")
ATTACHMENTS_FIELD = "attachments"
#: What an attachment may be (CONTRACT.md §4); labels `customer.attachment_kind.<kind>`.
ATTACHMENT_KINDS: tuple[str, ...] = (
    "business_license",
    "contract",
    "announcement",
    "note",
    "image",
    "other",
)


def field_key(name: str) -> str:
    return f"customer.field.{name}"


def group_key(key: str) -> str:
    return f"customer.group.{key}"


def scheme_key(scheme: str) -> str:
    return f"customer.scheme.{scheme}"


def attachment_kind_key(kind: str) -> str:
    return f"customer.attachment_kind.{kind}"
