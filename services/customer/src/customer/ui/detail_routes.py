"""The customer page: status, codes, order eligibility, every field as in the guide, the
pending change, attachments, history; "Gửi CS duyệt" and attachment downloads.

Reads and the submission go through what the REST API uses (`visible_customer`,
`CustomerService.submit`, `AttachmentService`, `customer.queries`), so a customer the user
may not see is a 404 page here exactly as it is a 404 there.
"""

import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response, StreamingResponse

from customer.access import may_write, visible_customer
from customer.attachments import AttachmentService, attachments_of
from customer.attachments_api import Config, content_disposition
from customer.models import Customer
from customer.queries import eligibility_of, history_of
from customer.service import EDITABLE_STATUSES, CustomerService
from customer.ui.views import (
    CODE_LISTS,
    STATUS_BADGE,
    CustomerUser,
    FieldView,
    GroupView,
    HistoryView,
    Problem,
    action_label,
    change_views,
    code_keys,
    customer_url,
    display_value,
    field_label,
    load_names,
)
from shared.concurrency import ensure_current
from shared.errors import ProblemError
from shared.logging import get_logger
from shared.ui import CsrfForm, Flash, UiError, UiUser, flash, get_kit, ui_not_found
from shared.ui.customer_form import (
    FIELD_GROUPS,
    INLINE_TYPES,
    area_of,
    attachment_views,
    field_key,
    group_key,
)
from shared.web import DbSession

log = get_logger(__name__)
router = APIRouter(include_in_schema=False)

#: An opened file runs nothing and loads nothing; browsers still show images and PDFs.
SANDBOX_CSP = "default-src 'none'; img-src 'self' data:; sandbox"
#: Statuses the salesperson may edit in (an active customer's edit becomes a change request).
EDIT_STATUSES = (*EDITABLE_STATUSES, "active")


async def load_customer(
    session: AsyncSession, user: UiUser, customer_id: uuid.UUID, *, lock: bool = False
) -> Customer:
    """The customer if the user may see it, else the 404 page (as if it did not exist)."""
    customer = await visible_customer(session, user.principal, customer_id, lock=lock)
    if customer is None:
        raise ui_not_found()
    return customer


async def render_detail(
    request: Request,
    user: UiUser,
    session: AsyncSession,
    customer: Customer,
    *,
    status: int = 200,
    flashes: Sequence[Flash] = (),
    problems: Sequence[Problem] = (),
) -> Response:
    kit = get_kit(request)
    t = kit.translator(request)
    history = await history_of(session, customer.id)
    attachments = await attachments_of(session, customer.id)
    pending: dict[str, Any] = dict((customer.pending_change or {}).get("fields") or {})
    values = {name: getattr(customer, name) for name in CODE_LISTS}
    # Every name the page shows, in one replica query.
    keys = code_keys(values) + code_keys(pending)
    for entry in history:
        keys.append(("employees", entry.actor))
        for name, change in entry.changes.items():
            if isinstance(change, dict):
                keys += code_keys({name: change.get("old")}) + code_keys({name: change.get("new")})
    keys += [("employees", a["uploaded_by"]) for a in attachments]
    names = await load_names(session, keys)

    scheme = customer.admin_scheme
    groups = [
        GroupView(
            key,
            t(group_key(key)),
            [
                FieldView(
                    name,
                    t(field_key(name)),
                    display_value(t, names, name, getattr(customer, name), scheme),
                )
                for name in fields
            ],
        )
        for key, fields in FIELD_GROUPS
    ]
    pending_changes = change_views(
        t,
        names,
        {k: {"old": getattr(customer, k, None), "new": v} for k, v in pending.items()},
        pending.get("admin_scheme", scheme),
    )
    history_views = [
        HistoryView(
            version=h.version,
            action=action_label(t, h.action),
            by=names.employee(h.actor) or h.actor,
            at=h.at,
            changes=change_views(t, names, h.changes, scheme),
            reason=h.reason,
        )
        for h in reversed(history)  # newest first: what happened last matters most
    ]
    writer = may_write(user.principal)
    context = {
        "customer": customer,
        "badge": STATUS_BADGE.get(customer.status, "plain"),
        "eligibility": eligibility_of(customer),
        "groups": groups,
        "delivery_addresses": [
            {
                **item,
                "area": area_of(item),
                "phone": display_value(t, names, "phone", item.get("phone")),
            }
            for item in customer.delivery_addresses
        ],
        "invoice_profiles": customer.invoice_profiles,
        "attachments": attachment_views(
            t, attachments, f"{customer_url(customer.id)}/attachments", names.employee
        ),
        "pending": customer.pending_change,
        "pending_changes": pending_changes,
        "pending_by": names.employee((customer.pending_change or {}).get("requested_by")),
        "history": history_views,
        "problems": problems,
        "may_edit": writer and customer.status in EDIT_STATUSES,
        "may_submit": writer and customer.status in EDITABLE_STATUSES,
        "edit_url": f"{customer_url(customer.id)}/edit",
        "nav_current": "detail",
    }
    return kit.render(request, "customer/detail.html", context, status=status, flashes=flashes)


# `:uuid` paths, so `/ui/customers/new` and other words stay free for the form's routes.
@router.get("/ui/customers/{customer_id:uuid}")
async def customer_page(
    customer_id: uuid.UUID, request: Request, user: CustomerUser, session: DbSession
) -> Response:
    customer = await load_customer(session, user, customer_id)
    return await render_detail(request, user, session, customer)


def _version(value: object) -> frozenset[int]:
    """The version the page showed; none (or garbage) matches no version: a stale form."""
    if isinstance(value, str) and value.isdigit() and len(value) < 10:
        return frozenset({int(value)})
    return frozenset()


@router.post("/ui/customers/{customer_id:uuid}/submit")
async def submit(
    customer_id: uuid.UUID, request: Request, user: CustomerUser, form: CsrfForm, session: DbSession
) -> Response:
    """ "Gửi CS duyệt", as `POST /api/v1/customers/{id}/submit` with If-Match: the version
    the page showed, so a customer someone changed meanwhile is not sent unseen."""
    kit = get_kit(request)
    t = kit.translator(request)
    if not may_write(user.principal):
        raise UiError(403, "error.forbidden")
    try:
        async with session.begin():
            customer = await load_customer(session, user, customer_id, lock=True)
            ensure_current(_version(form.get("version")), customer.version, what="customer")
            await CustomerService(session).submit(
                user.principal, customer, vietnamese=t.lang == "vi"
            )
    except ProblemError as problem:
        log.info("ui_submit_refused", customer_id=str(customer_id), status=problem.status)
        current = await load_customer(session, user, customer_id)
        if problem.status == 422:
            problems = [
                Problem(field_label(t, e.field), e.message, e.field) for e in problem.errors
            ]
            return await render_detail(
                request,
                user,
                session,
                current,
                status=422,
                flashes=(flash("error", "detail.submit_invalid", n=len(problems)),),
                problems=problems,
            )
        key = {412: "detail.submit_stale", 409: "detail.submit_conflict"}.get(problem.status)
        if key is None:
            raise
        return await render_detail(
            request, user, session, current, status=problem.status, flashes=(flash("error", key),)
        )
    log.info("ui_customer_submitted", customer_id=str(customer.id), version=customer.version)
    return kit.redirect(request, customer_url(customer.id), flash("success", "detail.submitted"))


@router.get("/ui/customers/{customer_id:uuid}/attachments/{attachment_id:uuid}")
async def attachment(
    customer_id: uuid.UUID,
    attachment_id: uuid.UUID,
    user: CustomerUser,
    session: DbSession,
    config: Config,
) -> Response:
    """The file, streamed from the blob store with the API's headers; images and PDFs
    inline (the browser cannot send the API's bearer token, the session cookie it can)."""
    service = AttachmentService(session, config)
    row = await service.find_visible(user.principal, customer_id, attachment_id)
    await session.close()  # the file may take a while: give the connection back first
    chunks = await service.open_blob(row)
    disposition = content_disposition(row.filename)
    if row.content_type in INLINE_TYPES:
        disposition = "inline" + disposition.removeprefix("attachment")
    headers = {
        "ETag": f'"{row.sha256}"',
        "Cache-Control": "private, no-cache",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": disposition,
        "Content-Length": str(row.size),
        "Content-Security-Policy": SANDBOX_CSP,
    }
    return StreamingResponse(chunks, media_type=row.content_type, headers=headers)
