"""Loads the official administrative units and the seed lists into the service's tables.

Runs inside a migration (a synchronous connection). It upserts, so it can run again when
the seed data changes; every business-list item it inserts or changes is announced on
`ims.reference.events.v1` through the outbox, which is how other services fill their
replicas.
"""

from dataclasses import asdict
from typing import Any

from sqlalchemy import Connection, Text, column, insert, select, table
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

from reference.models import ListItem, messaging
from reference.seed import sales_force, sales_lists
from shared import admin_units
from shared.events.contracts import ReferenceItemChangedV1, to_cloud_event
from shared.messaging.outbox import outbox_row

_BATCH = 2000


def _column_type(value: Any) -> Any:
    if isinstance(value, dict):
        return JSONB
    if isinstance(value, list):
        return ARRAY(Text)
    return None


def _upsert(
    connection: Connection, table_name: str, rows: list[dict[str, Any]], keys: list[str]
) -> None:
    """Insert or update `rows` touching only their own columns.

    A lightweight table of just those columns (not the ORM model) keeps data migrations
    valid after later migrations add columns with defaults.
    """
    if not rows:
        return
    target = table(
        table_name,
        *(column(c, _column_type(v)) for c, v in rows[0].items()),
    )
    for start in range(0, len(rows), _BATCH):
        chunk = rows[start : start + _BATCH]
        stmt = pg_insert(target).values(chunk)
        updates = {c: stmt.excluded[c] for c in chunk[0] if c not in keys}
        connection.execute(stmt.on_conflict_do_update(index_elements=keys, set_=updates))


def seed_admin_units(connection: Connection) -> None:
    for scheme in ("2025", "legacy"):
        _upsert(
            connection,
            "provinces",
            [asdict(p) for p in admin_units.provinces(scheme)],
            ["scheme", "code"],
        )
        _upsert(
            connection, "wards", [asdict(w) for w in admin_units.wards(scheme)], ["scheme", "code"]
        )
    _upsert(connection, "districts", [asdict(d) for d in admin_units.districts()], ["code"])


def seed_ward_conversions(connection: Connection) -> None:
    """Where every legacy ward went on 1 July 2025 (the official conversion table)."""
    rows = [
        {
            "legacy_ward_code": c.legacy_ward_code,
            "legacy_district_code": c.legacy_district_code,
            "legacy_province_code": c.legacy_province_code,
            "new_ward_codes": list(c.new_ward_codes),
            "new_province_code": c.new_province_code,
            "partly_merged": c.partly_merged,
            "ambiguous": c.ambiguous,
        }
        for c in admin_units.legacy_to_2025_ward_mapping().values()
    ]
    _upsert(connection, "ward_conversions", rows, ["legacy_ward_code"])


def list_seed() -> dict[str, list[dict[str, Any]]]:
    """Every business list as rows of (code, name, active, sort_order, attributes...)."""
    lists: dict[str, list[dict[str, Any]]] = {
        "customer-types": [asdict(x) for x in sales_lists.customer_types()],
        "customer-groups": [asdict(x) for x in sales_lists.customer_groups()],
        "channels": [asdict(x) for x in sales_lists.sales_channels()],
        "payment-terms": [asdict(x) for x in sales_lists.payment_terms()],
        "payment-methods": [asdict(x) for x in sales_lists.payment_methods()],
        "sales-units": [asdict(x) for x in sales_force.sales_units()],
        "employees": [],
    }
    for employee in sales_force.employees():
        row = asdict(employee)
        row["code"] = row.pop("id")
        row["roles"] = list(row["roles"])
        lists["employees"].append(row)
    return lists


def seed_lists(connection: Connection) -> int:
    """Upsert the lists; announce what changed. Returns the number of changed items."""
    # Only the columns of the first schema: this runs inside migration 0002, before later
    # migrations add columns to the model.
    seeded = (
        ListItem.list,
        ListItem.code,
        ListItem.name,
        ListItem.active,
        ListItem.sort_order,
        ListItem.attributes,
    )
    current = {(i.list, i.code): i for i in connection.execute(select(*seeded)).all()}
    changed = 0
    for list_name, rows in list_seed().items():
        for row in rows:
            values = list_item_values(list_name, row)
            old = current.get((list_name, row["code"]))
            if old is not None and all(getattr(old, k) == v for k, v in values.items()):
                continue
            _upsert(connection, "list_items", [values], ["list", "code"])
            event = to_cloud_event(
                ReferenceItemChangedV1(list=list_name, code=row["code"], item=item_view(values))
            )
            connection.execute(
                insert(messaging.outbox).values(
                    **outbox_row(event, topic=ReferenceItemChangedV1.TOPIC)
                )
            )
            changed += 1
    return changed


def list_item_values(list_name: str, row: dict[str, Any]) -> dict[str, Any]:
    """A seed row as the columns of `list_items` (extra fields go to `attributes`)."""
    return {
        "list": list_name,
        "code": row["code"],
        "name": row["name"],
        "active": row.get("active", True),
        "sort_order": row.get("sort_order", 0),
        "attributes": {
            k: v for k, v in row.items() if k not in ("code", "name", "active", "sort_order")
        },
    }


def item_view(values: dict[str, Any]) -> dict[str, Any]:
    """An item as the API shows it: code, name, active, sort_order and its attributes."""
    view = {
        "code": values["code"],
        "name": values["name"],
        "active": values["active"],
        "sort_order": values["sort_order"],
        **values["attributes"],
    }
    if values["list"] == "employees":
        view["id"] = view.pop("code")
    return view


def list_item_view(item: ListItem) -> dict[str, Any]:
    """A stored list item as the API and the events show it, with its version, so that
    replicas can ignore an announcement older than what they hold."""
    view = item_view(
        {
            "list": item.list,
            "code": item.code,
            "name": item.name,
            "active": item.active,
            "sort_order": item.sort_order,
            "attributes": item.attributes,
        }
    )
    view["version"] = item.version
    return view
