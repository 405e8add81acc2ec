"""The customer replica: kept from ims.customer.events.v1, read by approval.duplicates.

Every event carries the customer's `version`; a row only ever moves forward, so an
older event (a redelivery, a partition replayed) changes nothing. Events of the same
version are applied again (the same version always describes the same customer).

A change request on an active customer (CustomerSubmitted with `changes`) is not in
force: the row keeps the active values, rebuilt from the proposal and the `old` side of
`changes`. The proposal itself is what its review's duplicates are computed from. A
rejected change announces nothing, so storing the proposal would leave it in place.
"""

import uuid
from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Table, func
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession

from approval.matchkeys import (
    address_key,
    name_key,
    normalise_email,
    normalise_phone,
    normalise_tax_code,
    snapshot_text,
)
from approval.models import CustomerReplica

#: The customer service's statuses as the replica keeps them (drafts never arrive).
_STATUSES = {
    "pending_approval": "pending",
    "active": "active",
    "inactive": "inactive",
    "rejected": "rejected",
}


def in_force(snapshot: Mapping[str, Any], changes: Mapping[str, Any] | None) -> dict[str, Any]:
    """The customer as it stands: a change request's proposal with its old values back."""
    current = dict(snapshot)
    if changes and snapshot.get("status") in ("active", "inactive"):
        for field, change in changes.items():
            if isinstance(change, Mapping) and "old" in change:
                current[field] = change["old"]
    return current


def province_2025(snapshot: Mapping[str, Any]) -> str | None:
    """The 2025 province: a legacy address's successor (the snapshot's `admin_2025`), so
    that a shop recorded under either scheme is compared with its neighbours."""
    successor = snapshot.get("admin_2025")
    if isinstance(successor, Mapping) and successor.get("province_code"):
        return str(successor["province_code"])
    return snapshot_text(snapshot, "province_code")


def replica_values(
    customer_id: uuid.UUID, version: int, snapshot: Mapping[str, Any], status: str | None = None
) -> dict[str, Any]:
    """The replica row for a snapshot (`status` overrides the snapshot's)."""
    raw_status = str(snapshot.get("status") or "")
    full_name = snapshot_text(snapshot, "full_name") or ""
    address = snapshot_text(snapshot, "address")
    return {
        "customer_id": customer_id,
        "version": version,
        "status": status or _STATUSES.get(raw_status, raw_status or "pending"),
        "customer_code": snapshot_text(snapshot, "customer_code"),
        "full_name": full_name,
        "company_name": snapshot_text(snapshot, "company_name"),
        "tax_code": normalise_tax_code(snapshot_text(snapshot, "tax_code")),
        "phone": normalise_phone(snapshot_text(snapshot, "phone")),
        "email": normalise_email(snapshot_text(snapshot, "email")),
        "address": address,
        "province_code": snapshot_text(snapshot, "province_code"),
        "match_name": name_key(full_name),
        "match_address": address_key(address),
        "match_province": province_2025(snapshot),
        "snapshot": dict(snapshot),
    }


def _build_upsert() -> Insert:
    """The snapshot upsert, built once: a replay runs it millions of times, and building
    the statement (its `excluded` alias above all) cost more than running it."""
    table = cast(Table, CustomerReplica.__table__)
    stmt = insert(table)
    columns = [c.name for c in table.columns if c.name not in ("customer_id", "updated_at")]
    return stmt.on_conflict_do_update(
        index_elements=[table.c.customer_id],
        set_={**{name: stmt.excluded[name] for name in columns}, "updated_at": func.now()},
        where=table.c.version <= stmt.excluded.version,
    )


_UPSERT_SNAPSHOT = _build_upsert()


async def apply_snapshot(
    session: AsyncSession,
    customer_id: uuid.UUID,
    version: int,
    snapshot: Mapping[str, Any],
    *,
    status: str | None = None,
) -> None:
    """Upsert the row unless the replica already holds a newer version."""
    await session.execute(_UPSERT_SNAPSHOT, replica_values(customer_id, version, snapshot, status))


def _build_status_upsert() -> Insert:
    table = cast(Table, CustomerReplica.__table__)
    stmt = insert(table).values(full_name="", match_name="", match_address="", snapshot={})
    return stmt.on_conflict_do_update(
        index_elements=[table.c.customer_id],
        set_={
            "version": stmt.excluded.version,
            "status": stmt.excluded.status,
            "updated_at": func.now(),
        },
        where=table.c.version <= stmt.excluded.version,
    )


_UPSERT_STATUS = _build_status_upsert()


async def apply_status(
    session: AsyncSession, customer_id: uuid.UUID, version: int, status: str
) -> None:
    """An event without a snapshot (CustomerRejected): only the status and version move.

    An unknown customer gets a bare row, so that a late, older event cannot bring it back.
    """
    await session.execute(
        _UPSERT_STATUS, {"customer_id": customer_id, "version": version, "status": status}
    )
