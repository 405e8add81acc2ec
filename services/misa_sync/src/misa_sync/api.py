"""REST endpoints of CONTRACT.md §6."""

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import and_, or_, select, update

from misa_sync import mirror
from misa_sync.mirror import Mirror
from misa_sync.misa_client import MisaError
from misa_sync.models import MisaLink
from misa_sync.reconciliation import find_drift
from misa_sync.schemas import (
    DriftCounts,
    DriftKindOut,
    DriftOut,
    LinkState,
    MisaLinkOut,
    MisaLinkPage,
    ReconciliationReport,
    RefreshMode,
    RetriedLinks,
    RetryableState,
)
from misa_sync.settings import MisaSyncSettings
from misa_sync.sync_worker import Pause
from shared.auth.dependencies import require_roles
from shared.auth.principal import Principal
from shared.errors import ProblemError, not_found
from shared.pagination import MAX_LIMIT, decode_cursor, page_of
from shared.web import DbSession

router = APIRouter(prefix="/api/v1/misa-links", tags=["misa-links"])

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


@router.get("/reconciliation", response_model=ReconciliationReport)
async def reconciliation(
    _: Reconciler,
    session: DbSession,
    request: Request,
    kind: DriftKindOut | None = None,
    refresh: RefreshMode = "incremental",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> ReconciliationReport:
    """Drift between links and MISA; ``refresh=full`` rereads all of MISA (slow, but the
    only way to see deletions), ``none`` answers from the mirror as it is."""
    settings: MisaSyncSettings = request.app.state.misa_settings
    if refresh != "none":
        misa_mirror: Mirror = request.app.state.misa_mirror
        try:
            await misa_mirror.refresh(full=refresh == "full")
        except MisaError as exc:
            raise ProblemError(
                503,
                "MISA unavailable",
                f"MISA could not be read ({exc.code}); refresh=none answers from the mirror.",
                "misa-unavailable",
            ) from None
    drift = await find_drift(session, ims_code_pattern=settings.misa_ims_code_pattern)
    counts = DriftCounts()
    for d in drift:
        setattr(counts, d.kind, getattr(counts, d.kind) + 1)
    wanted = [d for d in drift if kind is None or d.kind == kind]
    state = await mirror.state(session)
    return ReconciliationReport(
        refreshed=refresh,
        mirror_refreshed_at=state.refreshed_at,
        mirror_full_refreshed_at=state.full_refreshed_at,
        counts=counts,
        items=[
            DriftOut(
                kind=d.kind,
                account_object_id=d.account_object_id,
                misa_code=d.misa_code,
                customer_id=uuid.UUID(d.customer_id) if d.customer_id else None,
                customer_code=d.customer_code,
                fields=d.fields,
            )
            for d in wanted[:limit]
        ],
        truncated=len(wanted) > limit,
    )


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


@router.get("/{customer_id}", response_model=MisaLinkOut)
async def get_link(customer_id: uuid.UUID, _: Reader, session: DbSession) -> MisaLinkOut:
    link = await session.get(MisaLink, customer_id)
    if link is None:
        raise not_found("MISA link")
    return out(link)


@router.post("/{customer_id}/retry", response_model=MisaLinkOut)
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
