"""The CS web UI: the review queue, a review, approve and reject.

Every route needs a signed-in user with the `cs` role (admin passes); every POST passes
the kit's CSRF check and, unless confirmed, answers a confirmation page. Decisions go
through the same `ReviewService` as the REST API, so the rules (four-eyes, one decision,
codes) are enforced in one place; its refusals are shown as messages on the page.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from approval import queries
from approval.models import Review
from approval.queries import KINDS, ReviewFilters
from approval.service import ReviewService
from approval.settings import ApprovalSettings
from approval.ui.attachments import AttachmentProxy, AttachmentUnavailable
from approval.ui.views import (
    CODE_LISTS,
    build_review_view,
    duplicate_views,
    is_overdue,
    named,
    reference_names,
)
from shared.errors import ProblemError
from shared.logging import get_logger
from shared.ui import (
    CsrfForm,
    Flash,
    Translator,
    UiError,
    UiUser,
    clean_param,
    flash,
    get_kit,
    require_ui_roles,
    ui_not_found,
)
from shared.web import DbSession

log = get_logger(__name__)
router = APIRouter(include_in_schema=False)
CsUser = Annotated[UiUser, Depends(require_ui_roles("cs"))]

QUEUE_PAGE_SIZE = 25
MAX_QUERY_CHARS = 200
MAX_REASON_CHARS = 2000
STATUS_TABS = ("pending", "approved", "rejected", "superseded", "all")


def settings_of(request: Request) -> ApprovalSettings:
    settings = request.app.state.runtime.settings
    assert isinstance(settings, ApprovalSettings)
    return settings


def review_url(review_id: uuid.UUID) -> str:
    return f"/ui/reviews/{review_id}"


@dataclass(frozen=True)
class QueueQuery:
    """The queue's filters as the URL carries them (bad values fall back to defaults)."""

    status: str = "pending"
    kind: str = ""
    sales_unit: str = ""
    dup: bool = False
    q: str = ""

    def filters(self) -> ReviewFilters:
        return ReviewFilters(
            status=None if self.status == "all" else self.status,
            kind=self.kind or None,
            q=self.q or None,
            sales_unit=self.sales_unit or None,
            has_duplicates=True if self.dup else None,
        )

    def url(self, **changes: Any) -> str:
        values = {
            "status": self.status,
            "kind": self.kind,
            "sales_unit": self.sales_unit,
            "dup": "1" if self.dup else "",
            "q": self.q,
            **changes,
        }
        params = {k: v for k, v in values.items() if v and not (k == "status" and v == "pending")}
        return "/ui/reviews" + (f"?{urlencode(params)}" if params else "")


@dataclass
class QueueRow:
    id: uuid.UUID
    kind: str
    status: str
    full_name: str
    company_name: str | None
    submitter: str
    sales_unit: str | None
    submitted_at: datetime
    decided_at: datetime | None
    overdue: bool
    has_duplicates: bool
    customer_code: str | None


@router.get("/ui/")
@router.get("/ui/reviews")
async def queue(
    request: Request,
    user: CsUser,
    session: DbSession,
    status: str = "pending",
    kind: str = "",
    sales_unit: str = "",
    dup: str = "",
    q: str = "",
    cursor: str = "",
    partial: str = "",
) -> Response:
    kit = get_kit(request)
    settings = settings_of(request)
    query = QueueQuery(
        status=status if status in STATUS_TABS else "pending",
        kind=kind if kind in KINDS else "",
        sales_unit=clean_param(sales_unit, 40),
        dup=bool(dup),
        q=clean_param(q, MAX_QUERY_CHARS),
    )
    reviews, next_cursor = await queries.list_reviews(
        session, query.filters(), limit=QUEUE_PAGE_SIZE, cursor=clean_param(cursor, 500) or None
    )
    names = await reference_names(session, ["sales-units", "employees"])
    rows = [
        QueueRow(
            id=r.id,
            kind=r.kind,
            status=r.status,
            full_name=r.full_name or str(r.customer.get("full_name") or ""),
            company_name=r.customer.get("company_name"),
            submitter=named(names, "employees", r.submitted_by) or r.submitted_by,
            sales_unit=named(
                names, "sales-units", r.sales_unit or r.customer.get("sales_unit_code")
            ),
            submitted_at=r.submitted_at,
            decided_at=r.decided_at,
            overdue=r.status == "pending" and is_overdue(r.submitted_at, settings.review_sla_hours),
            has_duplicates=bool(r.has_duplicates),
            customer_code=r.customer_code,
        )
        for r in reviews
    ]
    context = {
        "query": query,
        "rows": rows,
        "next_url": query.url(cursor=next_cursor) if next_cursor else None,
        "first_url": query.url(),
        "on_first": not cursor,
        "pending_count": await queries.pending_count(session),
        "status_tabs": STATUS_TABS,
        "kinds": KINDS,
        "sales_units": sorted(names.get("sales-units", {}).items()),
        "sla_hours": settings.review_sla_hours,
        "nav_current": "queue",
    }
    if partial:
        return kit.render(request, "approval/_queue_results.html", context, partial=True)
    return kit.render(request, "approval/queue.html", context)


async def load_review(session: AsyncSession, review_id: str) -> Review:
    try:
        rid = uuid.UUID(review_id)
    except ValueError:
        raise ui_not_found() from None
    review = await queries.get_review(session, rid)
    if review is None:
        raise ui_not_found()
    return review


def reject_reason_options(settings: ApprovalSettings, t: Translator) -> list[tuple[str, str]]:
    return [
        (code, reason.label(vietnamese=t.lang == "vi"))
        for code, reason in settings.reject_reasons.items()
    ]


async def render_review(
    request: Request,
    user: UiUser,
    session: AsyncSession,
    review: Review,
    *,
    status: int = 200,
    flashes: tuple[Flash, ...] = (),
    reject_form: dict[str, str] | None = None,
    reject_errors: dict[str, str] | None = None,
) -> Response:
    kit = get_kit(request)
    t = kit.translator(request)
    settings = settings_of(request)
    names = await reference_names(session, set(CODE_LISTS.values()))
    view = build_review_view(t, names, review)
    view.duplicates = await duplicate_views(session, review)
    history = await queries.reviews_of_customer(session, review.customer_id)
    reasons = reject_reason_options(settings, t)
    own = review.submitted_by == user.principal.employee_id
    return kit.render(
        request,
        "approval/review.html",
        {
            "review": review,
            "customer": review.customer or {},
            "view": view,
            "history": history,
            "employee": lambda code: named(names, "employees", code) or code,
            "reason_label": dict(reasons),
            "reject_reasons": reasons,
            "own_submission": own,
            "overdue": review.status == "pending"
            and is_overdue(review.submitted_at, settings.review_sla_hours),
            "reject_form": reject_form or {},
            "reject_errors": reject_errors or {},
            "queue_url": QueueQuery().url(),
            "nav_current": "review",
        },
        status=status,
        flashes=flashes,
    )


@router.get("/ui/reviews/{review_id}")
async def review_page(
    review_id: str, request: Request, user: CsUser, session: DbSession
) -> Response:
    review = await load_review(session, review_id)
    return await render_review(request, user, session, review)


def _failure_flash(t: Translator, problem: ProblemError, review: Review) -> Flash:
    """The service's refusal in the user's words."""
    if problem.status == 403:
        return flash("error", "decide.four_eyes")
    if problem.status == 409 and review.status == "superseded":
        return flash("error", "decide.superseded")
    if problem.status == 409:
        return flash(
            "error",
            "decide.already_decided",
            status=t(f"status.{review.status}"),
            by=review.decided_by or "",
        )
    return flash("error", "decide.failed")


async def _decision_failed(
    request: Request,
    user: UiUser,
    session: AsyncSession,
    review_id: uuid.UUID,
    problem: ProblemError,
) -> Response:
    if problem.status == 404:
        raise ui_not_found()
    review = await queries.get_review(session, review_id)
    if review is None:
        raise ui_not_found()
    t = get_kit(request).translator(request)
    log.info("ui_decision_refused", review_id=str(review_id), status=problem.status)
    return await render_review(
        request,
        user,
        session,
        review,
        status=problem.status,
        flashes=(_failure_flash(t, problem, review),),
    )


@router.post("/ui/reviews/{review_id}/approve")
async def approve(
    review_id: str, request: Request, user: CsUser, form: CsrfForm, session: DbSession
) -> Response:
    kit = get_kit(request)
    t = kit.translator(request)
    if form.get("confirmed") != "1":
        review = await load_review(session, review_id)
        return kit.confirm_page(
            request,
            action=f"{review_url(review.id)}/approve",
            fields={},
            question=t("decide.approve_question", name=review.full_name or ""),
            confirm_label=t("decide.approve"),
            cancel_url=review_url(review.id),
        )
    try:
        async with session.begin():
            review = await load_review(session, review_id)
            decided = await ReviewService(session, settings_of(request)).approve(
                user.principal, review.id
            )
    except ProblemError as problem:
        return await _decision_failed(request, user, session, uuid.UUID(review_id), problem)
    log.info("ui_review_approved", review_id=str(decided.id), customer_code=decided.customer_code)
    return kit.redirect(
        request,
        review_url(decided.id),
        flash(
            "success", "decide.approved", name=decided.full_name, code=decided.customer_code or ""
        ),
    )


@router.post("/ui/reviews/{review_id}/reject")
async def reject(
    review_id: str, request: Request, user: CsUser, form: CsrfForm, session: DbSession
) -> Response:
    kit = get_kit(request)
    t = kit.translator(request)
    settings = settings_of(request)
    raw_reason = form.get("reason")
    raw_code = form.get("reason_code")
    reason = raw_reason.strip() if isinstance(raw_reason, str) else ""
    reason_code = raw_code.strip() if isinstance(raw_code, str) else ""
    errors: dict[str, str] = {}
    if not reason:
        errors["reason"] = t("decide.reason_required")
    elif len(reason) > MAX_REASON_CHARS or "\x00" in reason:
        errors["reason"] = t("decide.reason_too_long", n=MAX_REASON_CHARS)
    if reason_code and reason_code not in settings.reject_reasons:
        errors["reason_code"] = t("decide.reason_code_unknown")
    if errors:
        review = await load_review(session, review_id)
        return await render_review(
            request,
            user,
            session,
            review,
            status=422,
            flashes=(flash("error", "decide.check_form"),),
            reject_form={"reason": reason.replace("\x00", ""), "reason_code": reason_code},
            reject_errors=errors,
        )
    if form.get("confirmed") != "1":
        review = await load_review(session, review_id)
        labels = dict(reject_reason_options(settings, t))
        return kit.confirm_page(
            request,
            action=f"{review_url(review.id)}/reject",
            fields={"reason": reason, "reason_code": reason_code},
            details=[
                (t("decide.reason_code"), labels.get(reason_code, "")),
                (t("decide.reason"), reason),
            ],
            question=t("decide.reject_question", name=review.full_name or ""),
            confirm_label=t("decide.reject"),
            cancel_url=review_url(review.id),
            danger=True,
        )
    try:
        async with session.begin():
            review = await load_review(session, review_id)
            decided = await ReviewService(session, settings).reject(
                user.principal, review.id, reason=reason, reason_code=reason_code or None
            )
    except ProblemError as problem:
        return await _decision_failed(request, user, session, uuid.UUID(review_id), problem)
    log.info("ui_review_rejected", review_id=str(decided.id), reason_code=decided.reason_code)
    return kit.redirect(
        request, QueueQuery().url(), flash("success", "decide.rejected", name=decided.full_name)
    )


@router.get("/ui/reviews/{review_id}/attachments/{attachment_id}")
async def attachment(
    review_id: str, attachment_id: str, request: Request, user: CsUser, session: DbSession
) -> Response:
    review = await load_review(session, review_id)
    listed = {
        str(a.get("id")): a for a in review.customer.get("attachments") or [] if isinstance(a, dict)
    }
    meta = listed.get(attachment_id)
    if meta is None:
        raise ui_not_found()
    await session.close()  # the file may take a while: give the connection back first
    proxy: AttachmentProxy = request.app.state.attachment_proxy
    try:
        return await proxy.open(
            token=user.token,
            customer_id=review.customer_id,
            attachment_id=uuid.UUID(attachment_id),
            content_type=str(meta.get("content_type") or ""),
            filename=str(meta.get("filename") or "attachment"),
        )
    except AttachmentUnavailable as exc:
        raise UiError(exc.status, exc.message_key) from exc
