"""A local copy of MISA's account objects, so a lookup by code or tax code is one query.

MISA has no lookup by code (MISA_API.md §6): without the mirror, every new customer would
page through the whole dictionary. An incremental refresh asks only for what changed
since MISA's ``LastSyncTime`` (kept in ``misa_mirror_state``); it cannot see deletions,
so a full scan now and then drops what MISA no longer has. Refreshes are serialised by a
PostgreSQL advisory lock, so replicas do not read MISA twice for the same thing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from misa_sync.misa_client import MAX_TAKE, MisaClient
from misa_sync.models import MirrorObject, MirrorState
from shared.logging import get_logger

log = get_logger(__name__)

#: pg_advisory_xact_lock key of mirror refreshes ("MISAMIRR" in ASCII, as a bigint).
_LOCK_KEY: Final = 0x4D4953414D495252
_STATE_ID: Final = 1
_UPSERT_BATCH: Final = 500


def code_key(code: str) -> str:
    # As the simulator assumes of MISA: codes compare ignoring case and surrounding spaces.
    return code.strip().casefold()


def tax_code_key(tax_code: Any) -> str | None:
    if not isinstance(tax_code, str):
        return None
    key = re.sub(r"\s+", "", tax_code).upper()
    return key or None


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class RefreshResult:
    full: bool
    #: False when another refresh had just done the work.
    ran: bool
    received: int = 0
    removed: int = 0


def _row(record: Mapping[str, Any], *, scan_id: uuid.UUID | None, at: datetime) -> dict[str, Any]:
    code = str(record.get("account_object_code") or "")
    return {
        "account_object_id": str(record["account_object_id"]),
        "code": code,
        "code_key": code_key(code),
        "tax_code_key": tax_code_key(record.get("company_tax_code")),
        "is_customer": bool(record.get("is_customer")),
        "record": dict(record),
        "scan_id": scan_id,
        "refreshed_at": at,
    }


async def upsert_records(
    session: AsyncSession,
    records: Sequence[Mapping[str, Any]],
    *,
    scan_id: uuid.UUID | None = None,
    at: datetime | None = None,
) -> int:
    """Store MISA records in the mirror (records without an id are skipped)."""
    at = at or now()
    rows = [_row(r, scan_id=scan_id, at=at) for r in records if r.get("account_object_id")]
    for start in range(0, len(rows), _UPSERT_BATCH):
        stmt = insert(MirrorObject).values(rows[start : start + _UPSERT_BATCH])
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[MirrorObject.account_object_id],
                set_={
                    c: stmt.excluded[c]
                    for c in (
                        "code",
                        "code_key",
                        "tax_code_key",
                        "is_customer",
                        "record",
                        "scan_id",
                        "refreshed_at",
                    )
                },
            )
        )
    return len(rows)


async def state(session: AsyncSession) -> MirrorState:
    found = await session.get(MirrorState, _STATE_ID)
    return found if found is not None else MirrorState(id=_STATE_ID)


class Mirror:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        client: MisaClient,
        *,
        page_size: int = MAX_TAKE,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._client = client
        self._take = max(1, min(page_size, MAX_TAKE))

    async def refresh(self, *, full: bool = False, if_older_than_s: float = 0.0) -> RefreshResult:
        """Read MISA into the mirror: what changed since the last read, or everything.

        Skipped when a refresh of that kind ran less than ``if_older_than_s`` ago (another
        replica, or a caller who waited for the lock while it ran). MISA's errors
        propagate; the mirror and its high-water mark then stay as they were.
        """
        async with self._sessionmaker() as session, session.begin():
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
            current = await state(session)
            last = current.full_refreshed_at if full else current.refreshed_at
            fresh_enough = last is not None and now() - last < timedelta(seconds=if_older_than_s)
            if if_older_than_s > 0 and fresh_enough:
                return RefreshResult(full=full, ran=False)
            since = None if full or current.last_sync_time is None else current.last_sync_time
            started = now()
            scan_id = uuid.uuid4() if since is None else None
            received, high_water = await self._read(session, since, scan_id, started)
            removed = 0
            if scan_id is not None:
                # Only rows this scan could have seen: a save recorded meanwhile stays.
                result = await session.execute(
                    delete(MirrorObject).where(
                        MirrorObject.scan_id.is_distinct_from(scan_id),
                        MirrorObject.refreshed_at < started,
                    )
                )
                removed = int(getattr(result, "rowcount", 0) or 0)
            current.last_sync_time = high_water or current.last_sync_time
            current.refreshed_at = started
            if scan_id is not None:
                current.full_refreshed_at = started
            await session.merge(current)
        log.info("misa_mirror_refreshed", full=scan_id is not None, received=received)
        return RefreshResult(full=scan_id is not None, ran=True, received=received, removed=removed)

    async def _read(
        self, session: AsyncSession, since: str | None, scan_id: uuid.UUID | None, at: datetime
    ) -> tuple[int, str | None]:
        skip = 0
        received = 0
        high_water: str | None = None
        while True:
            items, sync_time = await self._client.get_dictionary(skip, self._take, since)
            # The first page's time is the safe mark: later changes are read again next time.
            if skip == 0:
                high_water = sync_time
            received += await upsert_records(session, items, scan_id=scan_id, at=at)
            if len(items) < self._take:
                return received, high_water
            skip += len(items)

    async def ensure_fresh(self, max_age_s: float) -> RefreshResult:
        """Refresh incrementally unless that happened within ``max_age_s`` (0: always)."""
        return await self.refresh(if_older_than_s=max_age_s)


async def by_id(session: AsyncSession, account_object_id: str) -> MirrorObject | None:
    return await session.get(MirrorObject, account_object_id)


async def customers_by_code(session: AsyncSession, code: str) -> list[MirrorObject]:
    rows = await session.scalars(
        select(MirrorObject)
        .where(MirrorObject.is_customer, MirrorObject.code_key == code_key(code))
        .order_by(MirrorObject.account_object_id)
    )
    return list(rows)


async def objects_by_code(session: AsyncSession, code: str) -> list[MirrorObject]:
    """Every object with the code, vendors and employees included."""
    rows = await session.scalars(
        select(MirrorObject)
        .where(MirrorObject.code_key == code_key(code))
        .order_by(MirrorObject.account_object_id)
    )
    return list(rows)


async def customers_by_tax_code(session: AsyncSession, tax_code: str) -> list[MirrorObject]:
    key = tax_code_key(tax_code)
    if key is None:
        return []
    rows = await session.scalars(
        select(MirrorObject)
        .where(MirrorObject.is_customer, MirrorObject.tax_code_key == key)
        .order_by(MirrorObject.account_object_id)
    )
    return list(rows)
