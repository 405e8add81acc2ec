"""The customer form ("Tạo mới" and edit), its unit cascades and its attachment uploads.

Saving calls `CustomerService` in process exactly as the REST API does (same schemas,
same scoping, same If-Match rule through the form's `version`), so the form can accept
nothing the API would refuse; the service's problems are shown next to their inputs.
"""

import hashlib
import os
import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData, UploadFile
from starlette.responses import JSONResponse, Response

from customer.api import load_for_change, load_visible
from customer.attachments import (
    AttachmentService,
    StagedUpload,
    attachments_of,
    human_size,
    too_large_problem,
)
from customer.attachments_api import MULTIPART_OVERHEAD, attachment_config, discard_file
from customer.file_types import HEAD_BYTES
from customer.schemas import CustomerCreate, CustomerOut, CustomerPatch
from customer.service import EDITABLE_STATUSES, GOVERNED_FIELDS, CustomerService
from customer.ui import form_options as opts
from customer.ui.form import (
    FORM_GROUPS,
    REQUIRED,
    ROW_FIELDS,
    FormState,
    Problems,
    apply_row_action,
    input_id,
    parse_form,
    payload,
    sort_problems,
    state_from_customer,
    validate,
)
from shared.errors import FieldError, ProblemError
from shared.logging import get_logger
from shared.ui import (
    CsrfForm,
    Flash,
    Translator,
    UiUser,
    flash,
    get_kit,
    require_ui_roles,
    ui_not_found,
)
from shared.ui.assets import AppAssets
from shared.ui.customer_form import (
    ATTACHMENT_KINDS,
    LIST_FIELDS,
    AttachmentView,
    attachment_views,
)
from shared.ui.security import same_origin
from shared.web import DbSession

log = get_logger(__name__)
router = APIRouter(include_in_schema=False)
#: Who creates and edits customers (CONTRACT.md §2); cs and accountants get a 403 page.
Writer = Annotated[UiUser, Depends(require_ui_roles("sales", "sales_manager"))]
#: The form's own script and stylesheet (cascades, rows, group defaults, upload progress).
assets = AppAssets("customer", Path(__file__).parent / "static")


def edit_url(customer_id: uuid.UUID | str) -> str:
    return f"/ui/customers/{customer_id}/edit"


def _attachments(t: Translator, customer: dict[str, Any] | None) -> list[AttachmentView]:
    if customer is None:
        return []
    return attachment_views(
        t, customer.get("attachments") or [], f"/ui/customers/{customer['id']}/attachments"
    )


def page_url(customer_id: uuid.UUID | str) -> str:
    return f"/ui/customers/{customer_id}"


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ui_not_found() from None


async def _customer_out(session: AsyncSession, customer: Any) -> dict[str, Any]:
    out = CustomerOut.model_validate(customer, from_attributes=True).model_dump(mode="json")
    out["attachments"] = await attachments_of(session, customer.id)
    return out


# ---- rendering --------------------------------------------------------------------------


async def render_form(
    request: Request,
    user: UiUser,
    session: AsyncSession,
    state: FormState,
    *,
    customer: dict[str, Any] | None = None,
    problems: Problems | None = None,
    status: int = 200,
    flashes: tuple[Flash, ...] = (),
    stale: bool = False,
) -> Response:
    kit = get_kit(request)
    t = kit.translator(request)
    choose = user.principal.has_any("sales_manager", "admin")
    if not state.values.get("owner_employee_id") and customer is None:
        state.values["owner_employee_id"] = user.principal.employee_id
        if not choose:
            # Shown only: a salesperson's customers are in their own unit. For those who
            # choose, the empty unit ("the owner's") is the default (CONTRACT.md §4).
            state.values["sales_unit_code"] = user.principal.sales_unit or ""
    references = await opts.reference_options(session, t, state.values, opts.SELECT_LISTS.values())
    assignment = await opts.assignment_options(session, user.principal, t, state.values, customer)
    if problems is None:
        problems = Problems()
    active = customer is not None and customer["status"] == "active"
    #: Waiting for CS, inactive…: shown read-only, without the actions.
    locked = customer is not None and customer["status"] not in (*EDITABLE_STATUSES, "active")
    current = customer or {}
    max_bytes = (await attachment_config(request)).settings.attachment_max_bytes
    pending = (current.get("pending_change") or {}).get("fields") or {}
    context = {
        "state": state,
        "customer": customer,
        "problems": problems,
        "groups": FORM_GROUPS,
        "row_fields": ROW_FIELDS,
        "list_fields": LIST_FIELDS,
        "required": REQUIRED,
        "references": references,
        "select_lists": opts.SELECT_LISTS,
        "assignment": assignment,
        "unit_label": next(
            (o.label for o in assignment.units if o.code == state.value("sales_unit_code")),
            state.value("sales_unit_code") or "—",
        ),
        "owner_unit_label": assignment.owner_unit_label(state.value("owner_employee_id")),
        "units": opts,
        "input_id": input_id,
        "attachment_kinds": ATTACHMENT_KINDS,
        "attachments": _attachments(t, customer),
        "active": active,
        "governed": GOVERNED_FIELDS if active else frozenset(),
        "pending": pending,
        "in_force": {k: current.get(k) for k in pending},
        "locked": locked,
        "uploads_open": customer is not None and not locked,
        "removable": customer is not None and customer["status"] in EDITABLE_STATUSES,
        "max_bytes": max_bytes,
        "max_size": human_size(max_bytes),
        "stale": stale,
        "action_url": edit_url(current["id"]) if customer else "/ui/customers/new",
        "form_js": assets.url("customer-form.js"),
        "form_css": assets.url("customer-form.css"),
        "nav_current": "form",
    }
    return kit.render(request, "customer/form.html", context, status=status, flashes=flashes)


# ---- create ------------------------------------------------------------------------------


@router.get("/ui/customers/new")
async def new_form(request: Request, user: Writer, session: DbSession) -> Response:
    return await render_form(request, user, session, FormState())


def _vietnamese(request: Request) -> bool:
    return get_kit(request).lang(request) == "vi"


def _action(form: FormData) -> str:
    value = form.get("action")
    return value if isinstance(value, str) else "save"


@router.post("/ui/customers/new")
async def create(request: Request, user: Writer, form: CsrfForm, session: DbSession) -> Response:
    state, action = parse_form(form), _action(form)
    if action not in ("save", "submit"):
        apply_row_action(state, action)  # or "refresh": the lists follow the choices
        return await render_form(request, user, session, state)
    vietnamese = _vietnamese(request)
    assign = user.principal.has_any("sales_manager", "admin")
    body, errors = validate(
        CustomerCreate, payload(state, with_assignment=assign), vietnamese=vietnamese
    )
    if body is None:
        return await _invalid(request, user, session, state, errors)
    try:
        async with session.begin():
            customer = await CustomerService(session).create(
                user.principal, body, vietnamese=vietnamese
            )
            customer_id = customer.id
    except ProblemError as problem:
        return await _refused(request, user, session, state, problem)
    log.info("ui_customer_created", customer_id=str(customer_id))
    if action == "submit":
        return await _submit(request, user, session, customer_id)
    return get_kit(request).redirect(request, edit_url(customer_id), flash("success", "form.saved"))


async def _invalid(
    request: Request,
    user: UiUser,
    session: AsyncSession,
    state: FormState,
    errors: list[FieldError],
    customer: dict[str, Any] | None = None,
    status: int = 422,
) -> Response:
    hidden = () if user.principal.has_any("sales_manager", "admin") else ("owner_employee_id",)
    return await render_form(
        request,
        user,
        session,
        state,
        customer=customer,
        problems=sort_problems(errors, state, hidden),
        status=status,
        flashes=(flash("error", "form.check_fields"),),
    )


async def _refused(
    request: Request,
    user: UiUser,
    session: AsyncSession,
    state: FormState,
    problem: ProblemError,
    customer: dict[str, Any] | None = None,
) -> Response:
    """The service's refusal, on the form the user sent (nothing of theirs is lost)."""
    if problem.status == 422:
        return await _invalid(request, user, session, state, list(problem.errors), customer)
    if problem.status == 409:
        return await render_form(
            request,
            user,
            session,
            state,
            customer=customer,
            status=409,
            flashes=(flash("error", "form.not_editable"),),
        )
    raise problem


async def _submit(
    request: Request, user: UiUser, session: AsyncSession, customer_id: uuid.UUID
) -> Response:
    """Send the saved draft to CS; on problems, the edit form with each at its input."""
    kit = get_kit(request)
    try:
        async with session.begin():
            customer = await load_for_change(session, user.principal, customer_id)
            await CustomerService(session).submit(
                user.principal, customer, vietnamese=_vietnamese(request)
            )
    except ProblemError as problem:
        if problem.status not in (409, 422):
            raise
        async with session.begin():
            stored = await _customer_out(
                session, await load_visible(session, user.principal, customer_id)
            )
        state = state_from_customer(stored)
        if problem.status == 409:
            return await render_form(
                request,
                user,
                session,
                state,
                customer=stored,
                status=409,
                flashes=(flash("error", "form.not_submittable"),),
            )
        hidden = () if user.principal.has_any("sales_manager", "admin") else ("owner_employee_id",)
        return await render_form(
            request,
            user,
            session,
            state,
            customer=stored,
            problems=sort_problems(problem.errors, state, hidden),
            status=422,
            flashes=(flash("warning", "form.saved_not_submitted"),),
        )
    log.info("ui_customer_submitted", customer_id=str(customer_id))
    return kit.redirect(request, page_url(customer_id), flash("success", "form.submitted"))


# ---- edit --------------------------------------------------------------------------------


async def _editable(session: AsyncSession, user: UiUser, customer_id: str) -> dict[str, Any]:
    """The customer as the API shows it, if the user may see it (else 404) and edit it."""
    async with session.begin():
        customer = await load_visible(session, user.principal, _uuid(customer_id))
        return await _customer_out(session, customer)


@router.get("/ui/customers/{customer_id}/edit")
async def edit_form(
    customer_id: str, request: Request, user: Writer, session: DbSession
) -> Response:
    customer = await _editable(session, user, customer_id)
    if customer["status"] not in (*EDITABLE_STATUSES, "active"):
        # Read-only, without the actions, and saying why (the page's locked notice).
        return await render_form(
            request, user, session, state_from_customer(customer), customer=customer, status=409
        )
    return await render_form(
        request, user, session, state_from_customer(customer), customer=customer
    )


@router.post("/ui/customers/{customer_id}/edit")
async def update(
    customer_id: str, request: Request, user: Writer, form: CsrfForm, session: DbSession
) -> Response:
    stored = await _editable(session, user, customer_id)
    state, action = parse_form(form), _action(form)
    if action not in ("save", "submit"):
        apply_row_action(state, action)
        return await render_form(request, user, session, state, customer=stored)
    vietnamese = _vietnamese(request)
    assign = user.principal.has_any("sales_manager", "admin")
    before = state_from_customer(stored)
    body, errors = validate(
        CustomerPatch, payload(state, with_assignment=assign, before=before), vietnamese=vietnamese
    )
    if body is None:
        return await _invalid(request, user, session, state, errors, stored)
    try:
        async with session.begin():
            customer = await load_for_change(session, user.principal, _uuid(customer_id))
            if state.version != customer.version:
                # The form's version is its If-Match: another save came in between.
                raise ProblemError(412, "Precondition Failed", None, "stale")
            await CustomerService(session).update(
                user.principal, customer, body, vietnamese=vietnamese
            )
            pending = customer.pending_change is not None and customer.status == "active"
            cid = customer.id
    except ProblemError as problem:
        if problem.status == 412:
            log.info("ui_customer_stale", customer_id=customer_id)
            return await render_form(
                request, user, session, state, customer=stored, status=412, stale=True
            )
        return await _refused(request, user, session, state, problem, stored)
    log.info("ui_customer_updated", customer_id=str(cid))
    if action == "submit" and stored["status"] in EDITABLE_STATUSES:
        return await _submit(request, user, session, cid)
    message = "form.change_requested" if pending else "form.saved"
    return get_kit(request).redirect(request, edit_url(cid), flash("success", message))


# ---- administrative units (the cascades' fragments) ------------------------------------


@router.get("/ui/units/options")
async def unit_options(
    request: Request,
    user: Writer,
    level: str,
    scheme: str = "2025",
    province: str = "",
    district: str = "",
) -> Response:
    """The <option>s of one select of an address, for the script's cascade."""
    if level == "province":
        options = opts.provinces(scheme)
    elif level == "district":
        options = opts.districts(province[:10])
    elif level == "ward":
        options = opts.wards(scheme, province[:10], district[:10])
    else:
        raise ui_not_found()
    return get_kit(request).render(
        request, "customer/_unit_options.html", {"options": options, "selected": ""}, partial=True
    )


@router.get("/ui/units/equivalent")
async def unit_equivalent(
    request: Request, user: Writer, province: str = "", ward: str = ""
) -> Response:
    """A legacy address's 2025 equivalent and its ambiguity warning, as a fragment."""
    kit = get_kit(request)
    found = opts.equivalent(kit.translator(request), "legacy", province[:10], ward[:10])
    return kit.render(request, "customer/_equivalent.html", {"eq": found}, partial=True)


# ---- attachments -------------------------------------------------------------------------


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


async def _stage(file: UploadFile, tmp_dir: Path | None) -> StagedUpload:
    """The uploaded file in a temporary file of our own, measured and hashed."""
    if tmp_dir is not None:
        await anyio.Path(tmp_dir).mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="ui-upload-", suffix=".part", dir=tmp_dir)
    digest, head, size = hashlib.sha256(), bytearray(), 0
    async with anyio.wrap_file(os.fdopen(fd, "wb")) as out:
        while chunk := await file.read(256 * 1024):
            size += len(chunk)
            digest.update(chunk)
            if len(head) < HEAD_BYTES:
                head += chunk[: HEAD_BYTES - len(head)]
            await out.write(chunk)
    return StagedUpload(Path(name), file.filename or "", size, digest.hexdigest(), bytes(head))


async def _attachments_fragment(
    request: Request, session: AsyncSession, user: UiUser, customer_id: uuid.UUID
) -> str:
    async with session.begin():
        customer = await _customer_out(
            session, await load_visible(session, user.principal, customer_id)
        )
    kit = get_kit(request)
    response = kit.render(
        request,
        "customer/_attachment_list.html",
        {
            "attachments": _attachments(kit.translator(request), customer),
            "removable": customer["status"] in EDITABLE_STATUSES,
        },
        partial=True,
    )
    return bytes(response.body).decode()


@router.post("/ui/customers/{customer_id}/attachments")
async def upload(customer_id: str, request: Request, user: Writer, session: DbSession) -> Response:
    """A file with its kind: the API's service with its limits and type sniffing. The page's
    script sends it with progress and gets JSON; without the script, a redirect."""
    kit = get_kit(request)
    cid = _uuid(customer_id)
    config = await attachment_config(request)
    vietnamese = _vietnamese(request)
    service = AttachmentService(session, config)
    max_bytes = config.settings.attachment_max_bytes
    declared = request.headers.get("content-length", "")
    try:
        # 404, 403 and 409 before a byte of the body is read.
        await service.check_upload(user.principal, cid, vietnamese=vietnamese)
        if (
            same_origin(request)
            and declared.isdigit()
            and int(declared) > max_bytes + MULTIPART_OVERHEAD
        ):
            # The API's 413, said as such (not as an expired form), without reading the body.
            raise too_large_problem(max_bytes, vietnamese=vietnamese)
        form = await kit.check_csrf(request, upload_limit_bytes=max_bytes + MULTIPART_OVERHEAD)
    except ProblemError as problem:
        if problem.status == 404:
            raise ui_not_found() from None
        return _upload_refused(request, cid, problem)
    file, kind = form.get("file"), form.get("kind")
    staged: StagedUpload | None = None
    try:
        if not isinstance(file, UploadFile) or not file.filename:
            message = kit.translator(request)("form.attachment.choose_file")
            raise ProblemError(422, "", None, "", [FieldError("file", message)])
        staged = await _stage(file, config.settings.upload_tmp_dir)
        await service.add(user.principal, cid, str(kind or ""), staged, vietnamese=vietnamese)
    except ProblemError as problem:
        return _upload_refused(request, cid, problem)
    finally:
        await form.close()
        if staged is not None:
            await discard_file(staged.path)
    log.info("ui_attachment_added", customer_id=customer_id)
    if _wants_json(request):
        html = await _attachments_fragment(request, session, user, cid)
        return JSONResponse({"ok": True, "html": html})
    return kit.redirect(request, edit_url(cid), flash("success", "form.attachment.added"))


def _upload_refused(request: Request, customer_id: uuid.UUID, problem: ProblemError) -> Response:
    message = "; ".join(e.message for e in problem.errors) or problem.detail or problem.title
    if _wants_json(request):
        return JSONResponse({"ok": False, "message": message}, status_code=problem.status)
    return get_kit(request).redirect(
        request, edit_url(customer_id), flash("error", "form.attachment.refused", reason=message)
    )


@router.post("/ui/customers/{customer_id}/attachments/{attachment_id}/delete")
async def remove_attachment(
    customer_id: str,
    attachment_id: str,
    request: Request,
    user: Writer,
    form: CsrfForm,
    session: DbSession,
) -> Response:
    kit = get_kit(request)
    t = kit.translator(request)
    cid, aid = _uuid(customer_id), _uuid(attachment_id)
    if form.get("confirmed") != "1":
        return kit.confirm_page(
            request,
            action=f"/ui/customers/{cid}/attachments/{aid}/delete",
            fields={},
            question=t("form.attachment.remove_question"),
            confirm_label=t("form.attachment.remove"),
            cancel_url=edit_url(cid),
            danger=True,
        )
    config = await attachment_config(request)
    try:
        await AttachmentService(session, config).remove(
            user.principal, cid, aid, vietnamese=_vietnamese(request)
        )
    except ProblemError as problem:
        if problem.status == 404:
            raise ui_not_found() from None
        return _upload_refused(request, cid, problem)
    return kit.redirect(request, edit_url(cid), flash("success", "form.attachment.removed"))
