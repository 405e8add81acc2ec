"""Drift between our links and MISA's dictionary, read from the mirror.

- missing: a link MISA accepted, whose object MISA no longer has (as of the last full
  scan, the only read that sees deletions);
- changed: MISA holds other values than we last pushed for mapped fields (someone
  edited the customer in MISA, or MISA normalised a value);
- extra: a MISA customer no link points to, whose code looks like ours or whose id is
  one we derive (account_object_id_for) — created by IMS, or by hand with our codes.

Only field names are reported, never values: the report is about where to look.

The comparison is a job (``ReconciliationJob``): every ``reconcile_interval_s`` one
replica (a non-blocking advisory lock, then "is a run due?" against the stored runs)
refreshes the mirror — fully when the mirror's own full-scan schedule says so, else
incrementally — compares, and stores the run in ``misa_reconciliations`` (the newest
``reconcile_keep_runs`` kept, and always the latest successful one). MISA being away
makes a ``failed`` run with MISA's error code; the next interval tries again.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from misa_sync import mirror
from misa_sync.mapping import differing_fields
from misa_sync.mirror import Mirror
from misa_sync.misa_client import MisaError, account_object_id_for
from misa_sync.models import MirrorObject, MisaLink, MisaReconciliation
from misa_sync.settings import MisaSyncSettings
from shared.logging import get_logger

log = get_logger(__name__)

DriftKind = Literal["missing", "changed", "extra"]


@dataclass(frozen=True, slots=True)
class Drift:
    kind: DriftKind
    account_object_id: str
    misa_code: str | None
    customer_id: str | None = None
    customer_code: str | None = None
    fields: list[str] = field(default_factory=list)


def _link_drift(kind: DriftKind, link: MisaLink, fields: list[str]) -> Drift:
    return Drift(
        kind,
        account_object_id=link.account_object_id,
        misa_code=link.misa_code,
        customer_id=str(link.customer_id),
        customer_code=link.customer_code,
        fields=fields,
    )


async def find_drift(session: AsyncSession, *, ims_code_pattern: str) -> list[Drift]:
    """Every drift, links first (in customer order), then extras (in code order)."""
    pattern = re.compile(ims_code_pattern)
    mirrored = {
        m.account_object_id: m
        for m in await session.scalars(select(MirrorObject).where(MirrorObject.is_customer))
    }
    linked_ids: set[str] = set()
    own_ids: set[str] = set()
    drift: list[Drift] = []
    links = await session.stream_scalars(select(MisaLink).order_by(MisaLink.customer_id))
    async for link in links:
        linked_ids.add(link.account_object_id)
        own_ids.add(account_object_id_for(str(link.customer_id)))
        if link.pushed is None:
            continue  # never accepted by MISA: nothing to compare yet
        held = mirrored.get(link.account_object_id)
        if held is None:
            drift.append(_link_drift("missing", link, []))
            continue
        fields = differing_fields(link.pushed, held.record)
        if fields:
            drift.append(_link_drift("changed", link, fields))
    for object_id, held in sorted(mirrored.items(), key=lambda item: item[1].code_key):
        if object_id in linked_ids:
            continue
        if object_id in own_ids or pattern.match(held.code):
            drift.append(Drift("extra", account_object_id=object_id, misa_code=held.code))
    return drift


#: pg_advisory_xact_lock key of reconciliation runs ("MISARECO" in ASCII, as a bigint).
_LOCK_KEY: Final = 0x4D4953415245434F
#: Drift items stored per kind and run (the API's largest ``limit``); counts are complete.
MAX_ITEMS_PER_KIND: Final = 1000
#: How long a replica that found another one running waits before looking again.
_LOCKED_RETRY_S: Final = 60.0

#: full / incremental: that read of MISA first; scheduled: full when the mirror's full
#: scan is due (``misa_mirror_full_refresh_interval_s``), else incremental.
RunMode = Literal["scheduled", "full", "incremental"]
Trigger = Literal["schedule", "api"]
Skipped = Literal["locked", "not_due"]


def now() -> datetime:
    return datetime.now(UTC)


def new_run(
    drift: list[Drift],
    *,
    started_at: datetime,
    refresh: str,
    trigger: str,
    max_items_per_kind: int = MAX_ITEMS_PER_KIND,
) -> MisaReconciliation:
    """A successful run of the drift found (not added to any session)."""
    counts = {"missing": 0, "changed": 0, "extra": 0}
    items: list[dict[str, Any]] = []
    for d in drift:
        counts[d.kind] += 1
        if counts[d.kind] <= max_items_per_kind:
            items.append(asdict(d))
    finished_at = now()
    return MisaReconciliation(
        id=uuid.uuid4(),
        started_at=started_at,
        finished_at=finished_at,
        duration_ms=_ms(started_at, finished_at),
        trigger=trigger,
        refresh=refresh,
        outcome="ok",
        error_code=None,
        items=items,
        truncated=len(items) < len(drift),
        **counts,
    )


def _ms(started_at: datetime, finished_at: datetime) -> int:
    return max(0, round((finished_at - started_at).total_seconds() * 1000))


async def latest_run(session: AsyncSession, *, ok_only: bool = False) -> MisaReconciliation | None:
    stmt = select(MisaReconciliation)
    if ok_only:
        stmt = stmt.where(MisaReconciliation.outcome == "ok")
    stmt = stmt.order_by(MisaReconciliation.started_at.desc(), MisaReconciliation.id.desc())
    return (await session.scalars(stmt.limit(1))).one_or_none()


class ReconciliationJob:
    """Runs reconciliation on a schedule (``run``) or when asked (``run_now``)."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        mirror: Mirror,
        settings: MisaSyncSettings,
        max_items_per_kind: int = MAX_ITEMS_PER_KIND,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._mirror = mirror
        self._settings = settings
        self._max_items = max_items_per_kind

    @property
    def interval_s(self) -> float:
        return self._settings.reconcile_interval_s

    async def run(self) -> None:
        """The background worker: a run whenever one is due, until cancelled."""
        if self.interval_s <= 0:
            log.info("misa_reconciliation_disabled")
            return
        while True:
            delay = self.interval_s
            try:
                outcome = await self.run_if_due()
                if outcome == "locked":
                    delay = min(self.interval_s, _LOCKED_RETRY_S)
                else:
                    delay = await self.seconds_until_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database, or our bug: try again later
                log.warning("misa_reconciliation_error", error_type=type(exc).__name__)
                delay = min(self.interval_s, _LOCKED_RETRY_S)
            # A little jitter, so replicas woken together do not all queue on the lock.
            jitter = random.uniform(0, min(5.0, self.interval_s * 0.05))
            await asyncio.sleep(max(delay, 0.0) + jitter)

    async def run_if_due(self) -> MisaReconciliation | Skipped:
        """A run, unless another replica is running one (``locked``) or the last run, by
        anyone, started less than ``reconcile_interval_s`` ago (``not_due``)."""
        return await self._run("scheduled", "schedule", wait=False, only_if_due=True)

    async def run_now(self, mode: RunMode = "scheduled") -> MisaReconciliation:
        """A run now (after the one in progress, if any), stored like the job's."""
        run = await self._run(mode, "api", wait=True)
        assert not isinstance(run, str)
        return run

    async def latest_ok_or_run(self) -> MisaReconciliation:
        """The latest successful run; when there is none, one now."""
        async with self._sessionmaker() as session:
            found = await latest_run(session, ok_only=True)
        if found is not None:
            return found
        run = await self._run("scheduled", "api", wait=True, reuse_ok=True)
        assert not isinstance(run, str)
        return run

    async def seconds_until_due(self) -> float:
        async with self._sessionmaker() as session:
            return await self._until_due(session)

    async def _until_due(self, session: AsyncSession) -> float:
        last = await latest_run(session)
        if last is None:
            return 0.0
        due = last.started_at + timedelta(seconds=self.interval_s)
        return max(0.0, (due - now()).total_seconds())

    async def _run(
        self,
        mode: RunMode,
        trigger: Trigger,
        *,
        wait: bool,
        only_if_due: bool = False,
        reuse_ok: bool = False,
    ) -> MisaReconciliation | Skipped:
        # The lock lives as long as the transaction that stores the run: one run at a time
        # across replicas, and the "is one due" check sees every committed run.
        async with self._sessionmaker() as session, session.begin():
            lock = {"k": _LOCK_KEY}
            if wait:
                await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), lock)
            elif not await session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), lock):
                log.info("misa_reconciliation_skipped", reason="locked")
                return "locked"
            if only_if_due and await self._until_due(session) > 0:
                return "not_due"
            if reuse_ok and (found := await latest_run(session, ok_only=True)) is not None:
                return found  # stored while this call waited for the lock
            run = await self._reconcile(session, mode, trigger)
            session.add(run)
            await session.flush()
            await self._prune(session)
        _log_run(run)
        return run

    async def _reconcile(
        self, session: AsyncSession, mode: RunMode, trigger: Trigger
    ) -> MisaReconciliation:
        started_at = now()
        started = time.monotonic()
        try:
            refresh = await self._refresh(mode)
        except Exception as exc:
            code = exc.code if isinstance(exc, MisaError) else "Unexpected"
            if not isinstance(exc, MisaError):
                log.error("misa_reconciliation_refresh_error", error_type=type(exc).__name__)
            run = MisaReconciliation(
                id=uuid.uuid4(),
                started_at=started_at,
                finished_at=now(),
                duration_ms=round((time.monotonic() - started) * 1000),
                trigger=trigger,
                refresh="full" if mode == "full" else "incremental",
                outcome="failed",
                error_code=code,
                missing=0,
                changed=0,
                extra=0,
                items=[],
                truncated=False,
            )
        else:
            drift = await find_drift(session, ims_code_pattern=self._settings.misa_ims_code_pattern)
            run = new_run(
                drift,
                started_at=started_at,
                refresh=refresh,
                trigger=trigger,
                max_items_per_kind=self._max_items,
            )
            run.duration_ms = round((time.monotonic() - started) * 1000)
        state = await mirror.state(session)
        run.mirror_refreshed_at = state.refreshed_at
        run.mirror_full_refreshed_at = state.full_refreshed_at
        return run

    async def _refresh(self, mode: RunMode) -> str:
        """Read MISA into the mirror; answers how (full or incremental)."""
        if mode == "full":
            await self._mirror.refresh(full=True)
            return "full"
        if mode == "scheduled":
            # The mirror's full-scan schedule, shared with the sync worker: whoever comes
            # first after the interval scans, the other skips.
            scanned = await self._mirror.refresh(
                full=True, if_older_than_s=self._settings.misa_mirror_full_refresh_interval_s
            )
            if scanned.ran:
                return "full"
        await self._mirror.refresh()
        return "incremental"

    async def _prune(self, session: AsyncSession) -> None:
        """Delete all but the newest runs, keeping the latest successful one."""
        run = MisaReconciliation
        newest = (
            select(run.id)
            .order_by(run.started_at.desc(), run.id.desc())
            .limit(self._settings.reconcile_keep_runs)
        )
        latest_ok = (
            select(run.id)
            .where(run.outcome == "ok")
            .order_by(run.started_at.desc(), run.id.desc())
            .limit(1)
        )
        await session.execute(delete(run).where(run.id.not_in(newest), run.id.not_in(latest_ok)))


def _log_run(run: MisaReconciliation) -> None:
    """One line per run: codes and counts only."""
    fields: dict[str, Any] = {
        "run_id": str(run.id),
        "trigger": run.trigger,
        "refresh": run.refresh,
        "outcome": run.outcome,
        "missing": run.missing,
        "changed": run.changed,
        "extra": run.extra,
        "truncated": run.truncated,
        "duration_ms": run.duration_ms,
    }
    if run.error_code:
        fields["error_code"] = run.error_code
    if run.outcome != "ok" or run.missing or run.changed or run.extra:
        log.warning("misa_reconciliation", **fields)
    else:
        log.info("misa_reconciliation", **fields)
