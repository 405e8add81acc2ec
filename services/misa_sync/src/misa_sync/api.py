"""REST endpoints of CONTRACT.md §6."""

import uuid
from datetime import UTC, datetime
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import and_, or_, select, update

from misa_sync import mirror
from misa_sync.models import MisaLink, MisaReconciliation
from misa_sync.reconciliation import ReconciliationJob, find_drift, new_run
from misa_sync.schemas import (
    DriftCounts,
    DriftKindOut,
    DriftOut,
    LinkState,
    MisaLinkOut,
    MisaLinkPage,
    ReconciliationReport,
    ReconciliationRunOut,
    ReconciliationRunPage,
    RefreshMode,
    RetriedLinks,
    RetryableState,
    RunOutcome,
    RunTrigger,
)
from misa_sync.settings import MisaSyncSettings
from misa_sync.sync_worker import Pause
from shared.auth.dependencies import require_roles
from shared.auth.principal import Principal
from shared.errors import API_PROBLEMS, ProblemError, not_found, problem_responses
from shared.pagination import MAX_LIMIT, decode_cursor, page_of
from shared.web import DbSession

# Every route is the accountant's: 403 for the other roles.
router = APIRouter(
    prefix="/api/v1/misa-links",
    tags=["misa-links"],
    responses=problem_responses(*API_PROBLEMS, 403),
)

#: CONTRACT.md §2: "see and retry MISA sync" is the accountant's (admin always passes
#: require_roles); CS sees a customer's MISA code on the customer itself.
Reader = Annotated[Principal, Depends(require_roles("accountant"))]
Retrier = Reader
Reconciler = Reader


def resume_worker(request: Request) -> None:
    """A person asked for a retry: the worker in this process stops waiting out MISA.

    Other replicas resume when their (bounded) pause ends.
    """
    pause = getattr(request.app.state, "misa_pause", None)
    if isinstance(pause, Pause):
        pause.clear()


def out(link: MisaLink) -> MisaLinkOut:
    return MisaLinkOut.model_validate(link, from_attributes=True)


@router.get("", response_model=MisaLinkPage)
async def list_links(
    _: Reader,
    session: DbSession,
    state: LinkState | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: str | None = None,
) -> MisaLinkPage:
    stmt = select(MisaLink)
    if state:
        stmt = stmt.where(MisaLink.state == state)
    if cursor:
        at, last_id = decode_cursor(cursor)
        stmt = stmt.where(
            or_(
                MisaLink.created_at > at,
                and_(MisaLink.created_at == at, MisaLink.customer_id > last_id),
            )
        )
    stmt = stmt.order_by(MisaLink.created_at, MisaLink.customer_id).limit(limit + 1)
    rows = list((await session.scalars(stmt)).all())
    items, next_cursor = page_of(rows, limit, at="created_at", key="customer_id")
    return MisaLinkPage(items=[out(link) for link in items], next_cursor=next_cursor)


def report_of(
    run: MisaReconciliation, *, kind: DriftKindOut | None, limit: int, stored: bool = True
) -> ReconciliationReport:
    counts = DriftCounts(missing=run.missing, changed=run.changed, extra=run.extra)
    total = getattr(counts, kind) if kind else counts.missing + counts.changed + counts.extra
    wanted = [i for i in run.items if kind is None or i.get("kind") == kind][:limit]
    return ReconciliationReport(
        refreshed=cast(RefreshMode, run.refresh),
        mirror_refreshed_at=run.mirror_refreshed_at,
        mirror_full_refreshed_at=run.mirror_full_refreshed_at,
        counts=counts,
        items=[DriftOut.model_validate(i) for i in wanted],
        truncated=len(wanted) < total,
        run_id=run.id if stored else None,
        started_at=run.started_at,
        finished_at=run.finished_at,
        outcome=cast(RunOutcome, run.outcome),
    )


def run_out(run: MisaReconciliation) -> ReconciliationRunOut:
    return ReconciliationRunOut(
        run_id=run.id,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_ms=run.duration_ms,
        trigger=cast(RunTrigger, run.trigger),
        refreshed=cast(RefreshMode, run.refresh),
        outcome=cast(RunOutcome, run.outcome),
        error_code=run.error_code,
        counts=DriftCounts(missing=run.missing, changed=run.changed, extra=run.extra),
        truncated=run.truncated,
    )


def misa_unavailable(code: str | None) -> ProblemError:
    return ProblemError(
        503,
        "MISA unavailable",
        f"MISA could not be read ({code}); the failed run is recorded. refresh=none answers "
        "from the mirror, GET .../reconciliation/runs lists the runs.",
        "misa-unavailable",
    )


@router.get("/reconciliation", response_model=ReconciliationReport)
async def reconciliation(
    _: Reconciler,
    session: DbSession,
    request: Request,
    kind: DriftKindOut | None = None,
    refresh: RefreshMode | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> ReconciliationReport:
    """Drift between links and MISA.

    By default the latest successful run of the reconciliation job, without calling MISA
    (when no run has succeeded yet, one runs now). ``refresh=incremental`` or ``full``
    runs one now and stores it (``full`` rereads all of MISA: slow, but the only way to
    see deletions); ``none`` compares with the mirror as it is, without storing a run.
    """
    job: ReconciliationJob = request.app.state.misa_reconciliation
    if refresh == "none":
        settings: MisaSyncSettings = request.app.state.misa_settings
        started_at = datetime.now(UTC)
        drift = await find_drift(session, ims_code_pattern=settings.misa_ims_code_pattern)
        run = new_run(drift, started_at=started_at, refresh="none", trigger="api")
        state = await mirror.state(session)
        run.mirror_refreshed_at = state.refreshed_at
        run.mirror_full_refreshed_at = state.full_refreshed_at
        return report_of(run, kind=kind, limit=limit, stored=False)
    if refresh is None:
        run = await job.latest_ok_or_run()
    else:
        run = await job.run_now(refresh)
    if run.outcome != "ok":
        raise misa_unavailable(run.error_code)
    return report_of(run, kind=kind, limit=limit)


@router.get("/reconciliation/runs", response_model=ReconciliationRunPage)
async def reconciliation_runs(
    _: Reconciler,
    session: DbSession,
    outcome: RunOutcome | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    cursor: str | None = None,
) -> ReconciliationRunPage:
    """The stored runs, newest first (summaries: counts, no items)."""
    run = MisaReconciliation
    stmt = select(run)
    if outcome:
        stmt = stmt.where(run.outcome == outcome)
    if cursor:
        at, last_id = decode_cursor(cursor)
        stmt = stmt.where(or_(run.started_at < at, and_(run.started_at == at, run.id < last_id)))
    stmt = stmt.order_by(run.started_at.desc(), run.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(stmt)).all())
    items, next_cursor = page_of(rows, limit, at="started_at", key="id")
    return ReconciliationRunPage(items=[run_out(r) for r in items], next_cursor=next_cursor)


@router.post("/retry", response_model=RetriedLinks)
async def retry_links(
    _: Retrier, session: DbSession, request: Request, state: RetryableState = "failed"
) -> RetriedLinks:
    """Every link in ``state`` due now, attempts reset: after fixing what failed them (the
    credentials, a code in MISA), or to bring links waiting out an outage forward."""
    at = datetime.now(UTC)
    async with session.begin():
        result = await session.execute(
            update(MisaLink)
            .where(MisaLink.state == state)
            .values(state="pending", attempts=0, next_attempt_at=at, updated_at=at)
        )
    resume_worker(request)
    return RetriedLinks(state=state, count=int(getattr(result, "rowcount", 0) or 0))


@router.get("/{customer_id}", response_model=MisaLinkOut, responses=problem_responses(404))
async def get_link(customer_id: uuid.UUID, _: Reader, session: DbSession) -> MisaLinkOut:
    link = await session.get(MisaLink, customer_id)
    if link is None:
        raise not_found("MISA link")
    return out(link)


@router.post("/{customer_id}/retry", response_model=MisaLinkOut, responses=problem_responses(404))
async def retry_link(
    customer_id: uuid.UUID, _: Retrier, session: DbSession, request: Request
) -> MisaLinkOut:
    async with session.begin():
        link = await session.get(MisaLink, customer_id, with_for_update=True)
        if link is None:
            raise not_found("MISA link")
        if link.state != "synced":
            # Also brings a link waiting out a MISA outage forward: a person asked for it.
            link.state = "pending"
            link.attempts = 0
            link.next_attempt_at = datetime.now(UTC)
            link.updated_at = datetime.now(UTC)
    resume_worker(request)
    return out(link)
