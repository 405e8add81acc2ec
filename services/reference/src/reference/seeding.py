"""Loads the official administrative units and the seed lists into the service's tables.

Runs inside a migration (a synchronous connection). It upserts, so it can run again when
the seed data changes; every business-list item it inserts or changes is announced on
`ims.reference.events.v1` through the outbox, which is how other services fill their
replicas.
"""

from dataclasses import asdict
from typing import Any

from shared.events.contracts import ReferenceItemChangedV1, to_cloud_event
from shared.messaging.outbox import outbox_row
from sqlalchemy import Connection, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from reference.models import District, ListItem, Province, Ward, messaging
from reference.seed import sales_force, sales_lists
from shared import admin_units

_BATCH = 2000


def _upsert(
    connection: Connection, model: Any, rows: list[dict[str, Any]], keys: list[str]
) -> None:
    for start in range(0, len(rows), _BATCH):
        chunk = rows[start : start + _BATCH]
        stmt = pg_insert(model).values(chunk)
        updates = {c: stmt.excluded[c] for c in chunk[0] if c not in keys}
        connection.execute(stmt.on_conflict_do_update(index_elements=keys, set_=updates))


def seed_admin_units(connection: Connection) -> None:
    for scheme in ("2025", "legacy"):
        _upsert(
            connection,
            Province,
            [asdict(p) for p in admin_units.provinces(scheme)],
            ["scheme", "code"],
        )
        _upsert(
            connection, Ward, [asdict(w) for w in admin_units.wards(scheme)], ["scheme", "code"]
        )
    _upsert(connection, District, [asdict(d) for d in admin_units.districts()], ["code"])


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
    current = {(i.list, i.code): i for i in connection.execute(select(ListItem)).all()}
    changed = 0
    for list_name, rows in list_seed().items():
        for row in rows:
            values = list_item_values(list_name, row)
            old = current.get((list_name, row["code"]))
            if old is not None and all(getattr(old, k) == v for k, v in values.items()):
                continue
            _upsert(connection, ListItem, [values], ["list", "code"])
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
    """A stored list item as the API and the events show it."""
    return item_view(
        {
            "list": item.list,
            "code": item.code,
            "name": item.name,
            "active": item.active,
            "sort_order": item.sort_order,
            "attributes": item.attributes,
        }
    )
