"""Admin edits of the business lists: validation, audit and events (no HTTP here).

Every successful change bumps the item's `version`, writes one `ListItemAudit` row and
records one `ims.reference.ItemChanged.v1` in the outbox, all in the caller's transaction.
Nothing is ever deleted: customers and other services keep the codes, so an item that is
no longer offered is deactivated instead.

Invariant kept by these functions: an active item refers only to items that exist and are
active, and the channel and sales-unit trees have no cycles.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from reference.models import ListItem, ListItemAudit, messaging
from reference.seeding import list_item_view
from shared.concurrency import ensure_current
from shared.errors import FieldError, ProblemError, conflict, json_path, not_found
from shared.events.contracts import ReferenceItemChangedV1
from shared.messaging.outbox import record_event
from shared.validation import NoNul

ListName = Literal[
    "customer-types",
    "customer-groups",
    "channels",
    "payment-terms",
    "payment-methods",
    "sales-units",
    "employees",
]
LIST_NAMES: tuple[ListName, ...] = get_args(ListName)

CODE_PATTERN = r"^[A-Z0-9][A-Z0-9_-]{0,39}$"
# Any fixed key: every admin edit of any list takes it, so reference checks, cycle checks
# and "still in use" checks always see a settled state (edits are rare; contention is not).
_EDIT_LOCK_KEY = 0x52454649  # "REFI"
_MAX_LISTED = 10

Code = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul]
SortOrder = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]  # the column is int4
Days = Annotated[int, Field(ge=0, le=3650)]
Username = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
Role = Literal["sales", "sales_manager", "cs", "accountant", "admin"]
DueBasis = Literal["immediate", "invoice_date", "end_of_month"]
PaymentMethodKind = Literal["cash", "bank_transfer", "card", "e_wallet", "offset"]
SalesUnitLevel = Literal["national", "region", "area", "team", "office"]
ChannelLevel = Annotated[int, Field(ge=0, le=2)]

#: Levels of a sales unit by depth, as `seed.sales_force` derives them; "office" (a back
#: office without territory) is the only level an admin chooses.
SALES_UNIT_LEVELS_BY_DEPTH: tuple[SalesUnitLevel, ...] = ("national", "region", "area", "team")
#: Channel → sub-channel → outlet type (VIETNAM_DATA.md §5): levels 0, 1 and 2.
CHANNEL_MAX_LEVEL = 2


class _Strict(BaseModel):
    # Strict: reference data is typed; "7" is not a number of days and "yes" is not a bool.
    model_config = ConfigDict(extra="forbid", strict=True)


# ---- attributes per list (the full, validated state) -----------------------------------


class CustomerTypeAttributes(_Strict):
    is_company: bool


class CustomerGroupAttributes(_Strict):
    default_payment_term_code: Code
    default_credit_days: Days
    default_channel_code: Code


class ChannelAttributes(_Strict):
    parent_code: Code | None = None
    level: ChannelLevel | None = None  # derived from the tree; if sent, it must agree


class PaymentTermAttributes(_Strict):
    days: Days
    due_basis: DueBasis


class PaymentMethodAttributes(_Strict):
    kind: PaymentMethodKind
    non_cash: bool


class SalesUnitAttributes(_Strict):
    parent_code: Code | None = None
    manager_employee_id: Code | None = None
    level: SalesUnitLevel | None = None  # derived from the depth unless "office"


class EmployeeAttributes(_Strict):
    username: Username | None = None
    sales_unit_code: Code | None = None
    roles: list[Role] = Field(default_factory=list, max_length=len(get_args(Role)))

    @field_validator("roles")
    @classmethod
    def _unique_roles(cls, roles: list[Role]) -> list[Role]:
        return list(dict.fromkeys(roles))  # a role listed twice is still one role


# ---- attribute patches (JSON merge patch: absent keeps, null clears) --------------------


class CustomerTypeAttributesPatch(_Strict):
    is_company: bool | None = None


class CustomerGroupAttributesPatch(_Strict):
    default_payment_term_code: Code | None = None
    default_credit_days: Days | None = None
    default_channel_code: Code | None = None


class ChannelAttributesPatch(_Strict):
    parent_code: Code | None = None
    level: ChannelLevel | None = None


class PaymentTermAttributesPatch(_Strict):
    days: Days | None = None
    due_basis: DueBasis | None = None


class PaymentMethodAttributesPatch(_Strict):
    kind: PaymentMethodKind | None = None
    non_cash: bool | None = None


class SalesUnitAttributesPatch(_Strict):
    parent_code: Code | None = None
    manager_employee_id: Code | None = None
    level: SalesUnitLevel | None = None


class EmployeeAttributesPatch(_Strict):
    username: Username | None = None
    sales_unit_code: Code | None = None
    roles: list[Role] | None = Field(default=None, max_length=len(get_args(Role)))


# ---- create and patch bodies -------------------------------------------------------------


class ItemCreate(_Strict):
    code: Code
    name: Name
    active: bool = True
    sort_order: SortOrder = 0
    attributes: _Strict  # each list's model narrows it

    def attribute_values(self) -> dict[str, Any]:
        """What goes to the `attributes` column (the list's attributes and `name_en`)."""
        values = self.attributes.model_dump(mode="json")
        if "name_en" in type(self).model_fields:
            values["name_en"] = getattr(self, "name_en", None)
        return values


class ItemPatch(_Strict):
    """A JSON merge patch: absent fields stay; `name`, `active`, `sort_order` cannot be null."""

    name: Name | None = None
    active: bool | None = None
    sort_order: SortOrder | None = None


NameEn = Name


class CustomerTypeCreate(ItemCreate):
    name_en: NameEn | None = None
    attributes: CustomerTypeAttributes


class CustomerTypePatch(ItemPatch):
    name_en: NameEn | None = None
    attributes: CustomerTypeAttributesPatch | None = None


class CustomerGroupCreate(ItemCreate):
    name_en: NameEn | None = None
    attributes: CustomerGroupAttributes


class CustomerGroupPatch(ItemPatch):
    name_en: NameEn | None = None
    attributes: CustomerGroupAttributesPatch | None = None


class ChannelCreate(ItemCreate):
    name_en: NameEn | None = None
    attributes: ChannelAttributes = Field(default_factory=ChannelAttributes)


class ChannelPatch(ItemPatch):
    name_en: NameEn | None = None
    attributes: ChannelAttributesPatch | None = None


class PaymentTermCreate(ItemCreate):
    name_en: NameEn | None = None
    attributes: PaymentTermAttributes


class PaymentTermPatch(ItemPatch):
    name_en: NameEn | None = None
    attributes: PaymentTermAttributesPatch | None = None


class PaymentMethodCreate(ItemCreate):
    name_en: NameEn | None = None
    attributes: PaymentMethodAttributes


class PaymentMethodPatch(ItemPatch):
    name_en: NameEn | None = None
    attributes: PaymentMethodAttributesPatch | None = None


class SalesUnitCreate(ItemCreate):
    attributes: SalesUnitAttributes = Field(default_factory=SalesUnitAttributes)


class SalesUnitPatch(ItemPatch):
    attributes: SalesUnitAttributesPatch | None = None


class EmployeeCreate(ItemCreate):
    # The API shows employees with `id`; accept either name for the employee number.
    code: Code = Field(validation_alias=AliasChoices("code", "id"))
    attributes: EmployeeAttributes = Field(default_factory=EmployeeAttributes)


class EmployeePatch(ItemPatch):
    attributes: EmployeeAttributesPatch | None = None


# ---- what each list is ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reference:
    attribute: str
    target: ListName


@dataclass(frozen=True, slots=True)
class ListSpec:
    label: str
    create: type[ItemCreate]
    patch: type[ItemPatch]
    attributes: type[_Strict]
    references: tuple[Reference, ...] = ()
    #: Deepest allowed level (root = 0) for the lists that form a tree through `parent_code`.
    max_depth: int | None = None

    @property
    def has_name_en(self) -> bool:
        return "name_en" in self.create.model_fields


SPECS: dict[ListName, ListSpec] = {
    "customer-types": ListSpec(
        "customer type", CustomerTypeCreate, CustomerTypePatch, CustomerTypeAttributes
    ),
    "customer-groups": ListSpec(
        "customer group",
        CustomerGroupCreate,
        CustomerGroupPatch,
        CustomerGroupAttributes,
        references=(
            Reference("default_payment_term_code", "payment-terms"),
            Reference("default_channel_code", "channels"),
        ),
    ),
    "channels": ListSpec(
        "channel",
        ChannelCreate,
        ChannelPatch,
        ChannelAttributes,
        references=(Reference("parent_code", "channels"),),
        max_depth=CHANNEL_MAX_LEVEL,
    ),
    "payment-terms": ListSpec(
        "payment term", PaymentTermCreate, PaymentTermPatch, PaymentTermAttributes
    ),
    "payment-methods": ListSpec(
        "payment method", PaymentMethodCreate, PaymentMethodPatch, PaymentMethodAttributes
    ),
    "sales-units": ListSpec(
        "sales unit",
        SalesUnitCreate,
        SalesUnitPatch,
        SalesUnitAttributes,
        references=(
            Reference("parent_code", "sales-units"),
            Reference("manager_employee_id", "employees"),
        ),
        max_depth=len(SALES_UNIT_LEVELS_BY_DEPTH) - 1,
    ),
    "employees": ListSpec(
        "employee",
        EmployeeCreate,
        EmployeePatch,
        EmployeeAttributes,
        references=(Reference("sales_unit_code", "sales-units"),),
    ),
}


def referrers_of(target: str) -> list[tuple[ListName, Reference]]:
    """Which (list, attribute) pairs point at items of `target`."""
    return [
        (name, ref)
        for name, spec in SPECS.items()
        for ref in spec.references
        if ref.target == target
    ]


# ---- the working state of one item ---------------------------------------------------


@dataclass(slots=True)
class _State:
    name: str
    active: bool
    sort_order: int
    attributes: dict[str, Any]


def _state(item: ListItem) -> _State:
    return _State(item.name, item.active, item.sort_order, dict(item.attributes))


def _invalid(errors: Sequence[FieldError]) -> ProblemError:
    return ProblemError(422, "Invalid request", None, "validation-error", list(errors))


def _field_errors(exc: ValidationError, prefix: str) -> list[FieldError]:
    return [
        FieldError(json_path((prefix, *err["loc"])), err["msg"], err["type"])
        for err in exc.errors()
    ]


def _now() -> datetime:
    return datetime.now(UTC)


async def lock_lists(session: AsyncSession) -> None:
    """Serialise every change to the lists (and the start-up snapshot) in one order."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _EDIT_LOCK_KEY})


async def _load(session: AsyncSession, list_name: str, code: str) -> ListItem | None:
    return await session.get(ListItem, (list_name, code), populate_existing=True)


# ---- checks --------------------------------------------------------------------------


def _rule_errors(list_name: str, attributes: Mapping[str, Any]) -> list[FieldError]:
    """Rules between attributes of one item."""
    errors = []
    if (
        list_name == "payment-terms"
        and attributes.get("due_basis") == "immediate"
        and attributes.get("days")
    ):
        errors.append(
            FieldError("attributes.days", "An immediate payment term has 0 days.", "value_error")
        )
    if (
        list_name == "payment-methods"
        and attributes.get("kind") == "cash"
        and attributes.get("non_cash")
    ):
        errors.append(
            FieldError("attributes.non_cash", "A cash method cannot be non-cash.", "value_error")
        )
    return errors


async def _reference_errors(
    session: AsyncSession,
    spec: ListSpec,
    new: _State,
    old: _State | None,
) -> list[FieldError]:
    """A reference that is set or changed, or any reference of an item being (re)activated,
    must name an existing, active item."""
    reactivating = new.active and (old is None or not old.active)
    errors = []
    for ref in spec.references:
        value = new.attributes.get(ref.attribute)
        if value is None:
            continue
        if not reactivating and old is not None and old.attributes.get(ref.attribute) == value:
            continue
        field = f"attributes.{ref.attribute}"
        target = await _load(session, ref.target, value)
        label = SPECS[ref.target].label
        if target is None:
            errors.append(FieldError(field, f"There is no {label} '{value}'.", "unknown_reference"))
        elif not target.active:
            errors.append(
                FieldError(field, f"The {label} '{value}' is inactive.", "inactive_reference")
            )
    return errors


async def _tree_changes(
    session: AsyncSession,
    list_name: ListName,
    spec: ListSpec,
    code: str,
    new: _State,
    *,
    level_sent: bool,
) -> tuple[list[FieldError], dict[str, Any]]:
    """Check the item's place in its tree and derive `level` for it and its descendants.

    Returns the errors and {code: new level} for descendants whose level changes.
    """
    assert spec.max_depth is not None
    items = {
        i.code: i for i in await session.scalars(select(ListItem).where(ListItem.list == list_name))
    }
    parents: dict[str, str | None] = {c: i.attributes.get("parent_code") for c, i in items.items()}
    parents[code] = new.attributes.get("parent_code")
    field = "attributes.parent_code"

    # Walk up from the new parent: meeting the item itself means a cycle.
    depth, seen, current = 0, {code}, parents[code]
    while current is not None:
        if current in seen:
            detail = (
                f"'{code}' cannot be placed under its own descendant '{parents[code]}'."
                if current == code
                else f"The tree above '{parents[code]}' has a cycle."
            )
            return [FieldError(field, detail, "cycle")], {}
        seen.add(current)
        depth += 1
        current = parents.get(current)

    children: dict[str, list[str]] = {}
    for child, parent in parents.items():
        if parent is not None and child != code:
            children.setdefault(parent, []).append(child)
    below: dict[str, int] = {}  # descendant -> depth below the item
    stack = [(c, 1) for c in children.get(code, [])]
    while stack:
        child, rel = stack.pop()
        if child in below or child == code:
            continue
        below[child] = rel
        stack.extend((c, rel + 1) for c in children.get(child, []))
    deepest = depth + max(below.values(), default=0)
    if deepest > spec.max_depth:
        return [
            FieldError(
                field,
                f"The tree would be {deepest + 1} levels deep; at most {spec.max_depth + 1} "
                "are allowed.",
                "too_deep",
            )
        ], {}

    def level_at(d: int, current_level: Any) -> Any:
        if list_name == "channels":
            return d
        return "office" if current_level == "office" else SALES_UNIT_LEVELS_BY_DEPTH[d]

    wanted = new.attributes.get("level")
    derived = level_at(depth, wanted)
    if level_sent and wanted is not None and wanted != derived:
        return [
            FieldError(
                "attributes.level",
                f"At depth {depth} the level is {derived!r}.",
                "level_mismatch",
            )
        ], {}
    new.attributes["level"] = derived
    changed = {}
    for child, rel in below.items():
        current_level = items[child].attributes.get("level")
        level = level_at(depth + rel, current_level)
        if level != current_level:
            changed[child] = level
    return [], changed


async def _username_conflict(
    session: AsyncSession, code: str, new: _State, old: _State | None
) -> None:
    username = new.attributes.get("username")
    if username is None or (old is not None and old.attributes.get("username") == username):
        return
    other = await session.scalar(
        select(ListItem.code).where(
            ListItem.list == "employees",
            ListItem.code != code,
            ListItem.attributes["username"].astext == username,
        )
    )
    if other is not None:
        raise conflict(f"The username '{username}' already belongs to employee {other}.")


async def _in_use_conflict(
    session: AsyncSession, list_name: ListName, spec: ListSpec, code: str
) -> None:
    """Deactivating is refused while active items still refer to the item."""
    users: list[str] = []
    for source, ref in referrers_of(list_name):
        rows = await session.scalars(
            select(ListItem.code)
            .where(
                ListItem.list == source,
                ListItem.active.is_(True),
                ListItem.attributes[ref.attribute].astext == code,
            )
            .order_by(ListItem.code)
        )
        users += [f"{source} {c} ({ref.attribute})" for c in rows]
    if users:
        shown = ", ".join(users[:_MAX_LISTED]) + (" and more" if len(users) > _MAX_LISTED else "")
        raise conflict(
            f"The {spec.label} '{code}' is still used by active items: {shown}. "
            "Deactivate them or point them elsewhere first."
        )


# ---- audit and events ----------------------------------------------------------------


def _diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    keys = [k for k in after if k not in ("code", "id")]
    keys += [k for k in before if k not in after and k not in ("code", "id")]
    return {
        k: {"old": before.get(k), "new": after.get(k)}
        for k in keys
        if before.get(k) != after.get(k)
    }


async def _announce(
    session: AsyncSession,
    item: ListItem,
    *,
    action: str,
    actor: str,
    changes: dict[str, Any],
    at: datetime,
) -> None:
    session.add(
        ListItemAudit(
            list=item.list,
            code=item.code,
            version=item.version,
            action=action,
            actor=actor,
            at=at,
            changes=changes,
        )
    )
    await record_event(
        session,
        messaging.outbox,
        ReferenceItemChangedV1(list=item.list, code=item.code, item=list_item_view(item)),
    )


async def _update_descendant_levels(
    session: AsyncSession, list_name: str, levels: Mapping[str, Any], actor: str, at: datetime
) -> None:
    for child_code, level in levels.items():
        child = await _load(session, list_name, child_code)
        assert child is not None
        before = list_item_view(child)
        child.attributes = {**child.attributes, "level": level}
        child.version += 1
        await _announce(
            session,
            child,
            action="updated",
            actor=actor,
            changes=_diff(before, list_item_view(child)),
            at=at,
        )


async def _check(
    session: AsyncSession,
    list_name: ListName,
    spec: ListSpec,
    code: str,
    new: _State,
    old: _State | None,
    *,
    level_sent: bool,
) -> dict[str, Any]:
    """Every rule for the item's new state; returns the descendants' new levels."""
    errors = _rule_errors(list_name, new.attributes)
    errors += await _reference_errors(session, spec, new, old)
    descendant_levels: dict[str, Any] = {}
    parent_changed = old is None or (
        old.attributes.get("parent_code") != new.attributes.get("parent_code")
    )
    if spec.max_depth is not None and (parent_changed or level_sent):
        tree_errors, descendant_levels = await _tree_changes(
            session, list_name, spec, code, new, level_sent=level_sent
        )
        errors += tree_errors
    if errors:
        raise _invalid(errors)
    if list_name == "employees":
        await _username_conflict(session, code, new, old)
    if old is not None and old.active and not new.active:
        await _in_use_conflict(session, list_name, spec, code)
    return descendant_levels


# ---- commands ------------------------------------------------------------------------


async def create_item(
    session: AsyncSession, *, list: ListName, data: ItemCreate, actor: str
) -> ListItem:
    """Add an item to `list` (409 if the code exists, 422 on a bad reference or tree)."""
    list_name, spec = list, SPECS[list]
    if not isinstance(data, spec.create):
        raise TypeError(f"{list_name} takes {spec.create.__name__}, not {type(data).__name__}")
    await lock_lists(session)
    if await _load(session, list_name, data.code) is not None:
        raise conflict(f"The {spec.label} '{data.code}' already exists.")
    new = _State(data.name, data.active, data.sort_order, data.attribute_values())
    level_sent = "level" in data.attributes.model_fields_set
    await _check(session, list_name, spec, data.code, new, None, level_sent=level_sent)
    item = ListItem(
        list=list_name,
        code=data.code,
        name=new.name,
        active=new.active,
        sort_order=new.sort_order,
        attributes=new.attributes,
        version=1,
    )
    session.add(item)
    await _announce(
        session,
        item,
        action="created",
        actor=actor,
        changes=_diff({}, list_item_view(item)),
        at=_now(),
    )
    return item


async def update_item(
    session: AsyncSession,
    *,
    list: ListName,
    code: str,
    patch: ItemPatch,
    actor: str,
    expected_version: frozenset[int] | None,
) -> ListItem:
    """Apply a merge patch (404 unknown, 412 stale, 422 invalid, 409 still in use).

    A patch that changes nothing leaves the item, its version and the audit alone.
    """
    list_name, spec = list, SPECS[list]
    if not isinstance(patch, spec.patch):
        raise TypeError(f"{list_name} takes {spec.patch.__name__}, not {type(patch).__name__}")
    await lock_lists(session)
    item = await _load(session, list_name, code)
    if item is None:
        raise not_found(spec.label)
    ensure_current(expected_version, item.version, what=spec.label)
    old = _state(item)
    new, level_sent = _merge(spec, old, patch)
    descendant_levels = await _check(
        session, list_name, spec, code, new, old, level_sent=level_sent
    )
    before = list_item_view(item)
    item.name, item.active, item.sort_order = new.name, new.active, new.sort_order
    item.attributes = new.attributes
    changes = _diff(before, list_item_view(item))
    if not changes:
        return item
    item.version += 1
    action = "updated"
    if old.active != new.active:
        action = "reactivated" if new.active else "deactivated"
    at = _now()
    await _announce(session, item, action=action, actor=actor, changes=changes, at=at)
    await _update_descendant_levels(session, list_name, descendant_levels, actor, at)
    return item


def _merge(spec: ListSpec, old: _State, patch: ItemPatch) -> tuple[_State, bool]:
    """The item's state after the merge patch, validated as a whole; and whether the patch
    named `level` explicitly."""
    sent = patch.model_dump(mode="json", exclude_unset=True)
    errors = [
        FieldError(key, "Must not be null.", "null")
        for key in ("name", "active", "sort_order", "attributes")
        if key in sent and sent[key] is None
    ]
    if errors:
        raise _invalid(errors)
    attributes = dict(old.attributes)
    name_en = attributes.pop("name_en", None)
    sent_attributes: dict[str, Any] = sent.get("attributes") or {}
    attributes.update(sent_attributes)
    try:
        validated = spec.attributes.model_validate(attributes)
    except ValidationError as exc:
        raise _invalid(_field_errors(exc, "attributes")) from exc
    merged = validated.model_dump(mode="json")
    if spec.has_name_en:
        merged["name_en"] = sent.get("name_en", name_en)
    new = _State(
        name=sent.get("name", old.name),
        active=sent.get("active", old.active),
        sort_order=sent.get("sort_order", old.sort_order),
        attributes=merged,
    )
    return new, "level" in sent_attributes
