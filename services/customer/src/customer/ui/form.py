"""The customer form as data: what the browser posts, what the service is given, and
where each of the service's problems is shown.

Inputs are named by the problem's JSON path (`tax_code`, `invoice_profiles[0].tax_code`),
so a 422 from `CustomerService` or from the schemas lands next to its input without a
mapping table. Rows are numbered as rendered; blank rows are dropped when the form is
read, so the numbers in the service's problems are those of the re-rendered form.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from customer.submission_rules import REQUIRED_ON_SUBMIT
from shared.errors import FieldError, validation_problem
from shared.ui import clean_param
from shared.ui.customer_form import FIELD_GROUPS, LIST_FIELDS

#: The guide's fields in its order; the scheme switch comes first in the address group
#: because it decides which lists the province, district and ward come from.
FORM_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
    (
        key,
        ("address", "admin_scheme", *(f for f in fields if f not in ("address", "admin_scheme")))
        if key == "address"
        else fields,
    )
    for key, fields in FIELD_GROUPS
)
TOP_FIELDS: tuple[str, ...] = tuple(f for _, fields in FIELD_GROUPS for f in fields)
ASSIGNMENT_FIELDS = ("owner_employee_id", "sales_unit_code")
#: The editable fields of a row, in display order (`id` travels in a hidden input).
ROW_FIELDS: dict[str, tuple[str, ...]] = {
    "delivery_addresses": (
        "label",
        "recipient_name",
        "phone",
        "address",
        "admin_scheme",
        "province_code",
        "district_code",
        "ward_code",
    ),
    "invoice_profiles": ("company_name", "tax_code", "address", "email", "buyer_name"),
}
#: The most rows each list takes (the schemas' limits); more posted rows are ignored.
MAX_ROWS = {"delivery_addresses": 50, "invoice_profiles": 20}
#: Required to send to CS (`district_code` only for a legacy address).
REQUIRED = frozenset(rule.field for rule in REQUIRED_ON_SUBMIT)
MAX_VALUE_CHARS = 4000
_ROW_INPUT = re.compile(r"^(delivery_addresses|invoice_profiles)\[(\d{1,3})\]\.([a-z_]+)$")


def input_id(path: str) -> str:
    """An HTML id for the input of a JSON path: invoice_profiles[0].tax_code ->
    f-invoice_profiles-0-tax_code."""
    return "f-" + re.sub(r"[\[\].]+", "-", path).strip("-")


def _clean(value: object) -> str:
    return clean_param(value, MAX_VALUE_CHARS) if isinstance(value, str) else ""


@dataclass
class FormState:
    """What the form shows: raw strings as typed (so a bad value is shown back as is)."""

    values: dict[str, str] = field(default_factory=dict)
    rows: dict[str, list[dict[str, str]]] = field(
        default_factory=lambda: {name: [] for name in LIST_FIELDS}
    )
    #: Index of the default row of each list, if one is marked.
    defaults: dict[str, int | None] = field(
        default_factory=lambda: dict.fromkeys(LIST_FIELDS, None)
    )
    version: int | None = None

    def value(self, name: str) -> str:
        return self.values.get(name, "")

    @property
    def legacy(self) -> bool:
        return self.values.get("admin_scheme") == "legacy"


def _is_blank(list_name: str, row: Mapping[str, str]) -> bool:
    return not any(row.get(f) for f in ROW_FIELDS[list_name] if f != "admin_scheme")


def parse_form(form: FormData) -> FormState:
    """The posted form; unknown inputs are ignored, blank rows dropped."""
    state = FormState()
    for name in TOP_FIELDS:
        state.values[name] = _clean(form.get(name))
    state.values["admin_scheme"] = "legacy" if form.get("admin_scheme") == "legacy" else "2025"
    version = _clean(form.get("version"))
    state.version = int(version) if version.isdigit() else None
    raw: dict[str, dict[int, dict[str, str]]] = {name: {} for name in LIST_FIELDS}
    for key in form:
        match = _ROW_INPUT.match(key)
        if not match:
            continue
        list_name, index, sub = match.group(1), int(match.group(2)), match.group(3)
        if sub in (*ROW_FIELDS[list_name], "id") and index < MAX_ROWS[list_name] * 2:
            raw[list_name].setdefault(index, {})[sub] = _clean(form.get(key))
    for list_name in LIST_FIELDS:
        chosen = _clean(form.get(f"{list_name}.default"))
        for index in sorted(raw[list_name]):
            row = raw[list_name][index]
            if _is_blank(list_name, row):
                continue
            if list_name == "delivery_addresses":
                row["admin_scheme"] = "legacy" if row.get("admin_scheme") == "legacy" else "2025"
            if chosen == str(index):
                state.defaults[list_name] = len(state.rows[list_name])
            state.rows[list_name].append(row)
        del state.rows[list_name][MAX_ROWS[list_name] :]
    return state


def state_from_customer(customer: Mapping[str, Any]) -> FormState:
    """The form of a stored customer (a pending change shows as what is asked for, so that
    saving again keeps the request instead of withdrawing it)."""
    pending = (customer.get("pending_change") or {}).get("fields") or {}
    data = {**customer, **pending}
    state = FormState(version=int(customer["version"]))
    for name in TOP_FIELDS:
        value = data.get(name)
        state.values[name] = "" if value is None else str(value)
    state.values["admin_scheme"] = "legacy" if data.get("admin_scheme") == "legacy" else "2025"
    for list_name in LIST_FIELDS:
        for index, item in enumerate(data.get(list_name) or []):
            row = {
                k: "" if item.get(k) is None else str(item.get(k)) for k in ROW_FIELDS[list_name]
            }
            row["id"] = str(item.get("id") or "")
            if list_name == "delivery_addresses":
                row["admin_scheme"] = "legacy" if item.get("admin_scheme") == "legacy" else "2025"
            if item.get("is_default"):
                state.defaults[list_name] = index
            state.rows[list_name].append(row)
    return state


def apply_row_action(state: FormState, action: str) -> bool:
    """`add:<list>` or `remove:<list>:<index>` (the no-JavaScript buttons); True if done."""
    parts = action.split(":")
    if len(parts) < 2 or parts[1] not in LIST_FIELDS:
        return False
    list_name, rows = parts[1], state.rows[parts[1]]
    if parts[0] == "add" and len(parts) == 2:
        if len(rows) < MAX_ROWS[list_name]:
            rows.append({"admin_scheme": "2025"} if list_name == "delivery_addresses" else {})
        return True
    if parts[0] == "remove" and len(parts) == 3 and parts[2].isdigit():
        index = int(parts[2])
        if index < len(rows):
            del rows[index]
            default = state.defaults[list_name]
            if default == index:
                state.defaults[list_name] = None
            elif default is not None and default > index:
                state.defaults[list_name] = default - 1
        return True
    return False


def _or_none(value: str | None) -> str | None:
    return value or None


def payload(
    state: FormState, *, with_assignment: bool, before: FormState | None = None
) -> dict[str, Any]:
    """The JSON body the REST API would get for this form (empty means null).

    The owner and the unit are sent only by those who choose them, and in an edit
    (`before`: the form as it was shown) only when changed (the unit also when the owner
    is, as shown: empty means "the new owner's unit"); an empty unit means "the owner's
    unit", so sending an unchanged one could move the customer by itself."""
    body: dict[str, Any] = {name: _or_none(state.values.get(name)) for name in TOP_FIELDS}
    body["admin_scheme"] = "legacy" if state.legacy else "2025"
    changed = {
        name: before is None or state.value(name) != before.value(name)
        for name in ASSIGNMENT_FIELDS
    }
    changed["sales_unit_code"] |= changed["owner_employee_id"]
    for name in ASSIGNMENT_FIELDS:
        if not with_assignment or not changed[name]:
            body.pop(name)
    for list_name in LIST_FIELDS:
        items = []
        for index, row in enumerate(state.rows[list_name]):
            item: dict[str, Any] = {f: _or_none(row.get(f)) for f in ROW_FIELDS[list_name]}
            if row.get("id"):
                item["id"] = row["id"]
            if list_name == "delivery_addresses":
                item["admin_scheme"] = row.get("admin_scheme") or "2025"
            item["is_default"] = state.defaults[list_name] == index
            items.append(item)
        body[list_name] = items
    return body


def validate[M: BaseModel](
    model: type[M], body: Mapping[str, Any], *, vietnamese: bool
) -> tuple[M | None, list[FieldError]]:
    """The body checked by the REST API's own schema, with the API's own messages."""
    try:
        return model.model_validate(body), []
    except ValidationError as exc:
        problem = validation_problem(RequestValidationError(exc.errors()), vietnamese=vietnamese)
        return None, list(problem.errors)


@dataclass
class Problems:
    """The service's problems, by the path of the input they belong to."""

    by_path: dict[str, list[str]] = field(default_factory=dict)
    #: Problems no input of the form shows (shown at the top).
    general: list[str] = field(default_factory=list)
    #: Paths in the order the form shows them (the first gets the focus).
    order: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.by_path or self.general)

    def of(self, path: str) -> list[str]:
        return self.by_path.get(path, [])

    @property
    def first(self) -> str | None:
        return next((p for p in self.order if p in self.by_path), None)


def shown_paths(state: FormState) -> list[str]:
    """Every path an input of the form (or a list's heading) shows problems for."""
    paths = [f for _, fields in FORM_GROUPS for f in fields]
    for list_name in LIST_FIELDS:
        paths.append(list_name)
        for index in range(len(state.rows[list_name])):
            prefix = f"{list_name}[{index}]."
            paths += [prefix + f for f in ROW_FIELDS[list_name]]
            paths += [prefix + "is_default", prefix + "id"]
    return paths


def sort_problems(
    errors: Iterable[FieldError], state: FormState, hidden: Iterable[str] = ()
) -> Problems:
    order = shown_paths(state)
    known = set(order) - set(hidden)
    problems = Problems(order=order)
    for error in errors:
        path = error.field
        # A whole row (`delivery_addresses[1]`) is shown at its first input.
        row = re.fullmatch(r"(delivery_addresses|invoice_profiles)\[(\d+)\]", path)
        if row:
            path = f"{path}.{ROW_FIELDS[row.group(1)][0]}"
        if path in known:
            problems.by_path.setdefault(path, []).append(error.message)
        else:
            problems.general.append(error.message)
    return problems
