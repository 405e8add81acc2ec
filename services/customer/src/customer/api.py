"""REST endpoints of CONTRACT.md §4."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from customer.access import may_write, visibility_filter, visible_customer
from customer.attachments import attachments_for, attachments_of
from customer.models import Customer
from customer.queries import eligibility_of, history_of
from customer.schemas import (
    Attachment,
    CustomerCreate,
    CustomerOut,
    CustomerPage,
    CustomerPatch,
    HistoryEntry,
    HistoryPage,
    OrderEligibility,
    StatusChange,
)
from customer.search import CustomerFilters, search_customers
from customer.service import CustomerService
from shared.auth.dependencies import CurrentPrincipal
from shared.auth.principal import Principal
from shared.concurrency import ensure_current, etag, if_match_versions
from shared.errors import (
    API_PROBLEMS,
    forbidden,
    not_found,
    problem_responses,
    wants_vietnamese,
)
from shared.pagination import MAX_LIMIT
from shared.web import DbSession

router = APIRouter(
    prefix="/api/v1/customers", tags=["customers"], responses=problem_responses(*API_PROBLEMS)
)


def check_if_match(if_match: str | None, customer: Customer) -> None:
    ensure_current(if_match_versions(if_match), customer.version, what="customer")


async def load_visible(
    session: AsyncSession, principal: Principal, customer_id: uuid.UUID, *, lock: bool = False
) -> Customer:
    """The customer if the caller may see it (else 404); `lock` holds its row for this
    transaction."""
    customer = await visible_customer(session, principal, customer_id, lock=lock)
    if customer is None:
        raise not_found("customer")
    return customer


async def load_for_change(
    session: AsyncSession, principal: Principal, customer_id: uuid.UUID
) -> Customer:
    """The customer, locked for this transaction, if the caller may see and change it."""
    customer = await load_visible(session, principal, customer_id, lock=True)
    require_writer(principal)
    return customer


def require_writer(principal: Principal) -> None:
    if not may_write(principal):
        raise forbidden("Only sales, sales managers and admins create or change customers.")


def customer_response(
    response: Response, customer: Customer, attachments: list[dict[str, Any]]
) -> CustomerOut:
    response.headers["ETag"] = etag(customer.version)
    out = CustomerOut.model_validate(customer, from_attributes=True)
    out.attachments = [Attachment.model_validate(a) for a in attachments]
    return out


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CustomerOut,
    responses=problem_responses(403),
)
async def create_customer(
    body: CustomerCreate,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    session: DbSession,
) -> CustomerOut:
    require_writer(principal)
    async with session.begin():
        service = CustomerService(session)
        customer = await service.create(principal, body, vietnamese=wants_vietnamese(request))
        attachments = await service.attachments_of(customer)
    response.headers["Location"] = f"/api/v1/customers/{customer.id}"
    return customer_response(response, customer, attachments)


@router.get("", response_model=CustomerPage)
async def list_customers(
    principal: CurrentPrincipal,
    session: DbSession,
    q: Annotated[str | None, Query(max_length=200)] = None,
    status_: Annotated[str | None, Query(alias="status")] = None,
    province_code: str | None = None,
    channel_code: str | None = None,
    customer_group_code: str | None = None,
    owner_employee_id: str | None = None,
    sales_unit_code: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: str | None = None,
) -> CustomerPage:
    filters: CustomerFilters = {
        "status": status_,
        "province_code": province_code,
        "channel_code": channel_code,
        "customer_group_code": customer_group_code,
        "owner_employee_id": owner_employee_id,
        "sales_unit_code": sales_unit_code,
    }
    items, next_cursor = await search_customers(
        session,
        visibility=await visibility_filter(session, principal),
        filters=filters,
        q=q,
        limit=limit,
        cursor=cursor,
    )
    files = await attachments_for(session, [c.id for c in items])
    return CustomerPage(
        items=[
            CustomerOut.model_validate(c, from_attributes=True).model_copy(
                update={"attachments": [Attachment.model_validate(a) for a in files.get(c.id, [])]}
            )
            for c in items
        ],
        next_cursor=next_cursor,
    )


@router.get("/{customer_id}", response_model=CustomerOut, responses=problem_responses(404))
async def get_customer(
    customer_id: uuid.UUID, response: Response, principal: CurrentPrincipal, session: DbSession
) -> CustomerOut:
    customer = await load_visible(session, principal, customer_id)
    return customer_response(response, customer, await attachments_of(session, customer.id))


@router.patch(
    "/{customer_id}",
    response_model=CustomerOut,
    responses=problem_responses(403, 404, 409, 412, 428),
)
async def patch_customer(
    customer_id: uuid.UUID,
    body: CustomerPatch,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    session: DbSession,
    if_match: Annotated[str | None, Header()] = None,
) -> CustomerOut:
    async with session.begin():
        customer = await load_for_change(session, principal, customer_id)
        check_if_match(if_match, customer)
        service = CustomerService(session)
        await service.update(principal, customer, body, vietnamese=wants_vietnamese(request))
        attachments = await service.attachments_of(customer)
    return customer_response(response, customer, attachments)


@router.post(
    "/{customer_id}/submit",
    response_model=CustomerOut,
    responses=problem_responses(403, 404, 409, 412),
)
async def submit_customer(
    customer_id: uuid.UUID,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    session: DbSession,
    if_match: Annotated[str | None, Header()] = None,
) -> CustomerOut:
    async with session.begin():
        customer = await load_for_change(session, principal, customer_id)
        if if_match is not None:  # optional here: submitting is not an edit of fields
            check_if_match(if_match, customer)
        service = CustomerService(session)
        await service.submit(principal, customer, vietnamese=wants_vietnamese(request))
        attachments = await service.attachments_of(customer)
    return customer_response(response, customer, attachments)


async def _set_active(
    customer_id: uuid.UUID,
    body: StatusChange,
    principal: Principal,
    session: AsyncSession,
    *,
    active: bool,
    response: Response,
) -> CustomerOut:
    async with session.begin():
        customer = await load_visible(session, principal, customer_id, lock=True)
        if not principal.has_any("cs", "admin"):
            raise forbidden("Only Customer Service deactivates or reactivates customers.")
        service = CustomerService(session)
        await service.set_active(principal, customer, active=active, reason=body.reason)
        attachments = await service.attachments_of(customer)
    return customer_response(response, customer, attachments)


@router.post(
    "/{customer_id}/deactivate",
    response_model=CustomerOut,
    responses=problem_responses(403, 404, 409),
)
async def deactivate_customer(
    customer_id: uuid.UUID,
    body: StatusChange,
    response: Response,
    principal: CurrentPrincipal,
    session: DbSession,
) -> CustomerOut:
    """CS stops an active customer (it can no longer order); the reason is recorded."""
    return await _set_active(customer_id, body, principal, session, active=False, response=response)


@router.post(
    "/{customer_id}/reactivate",
    response_model=CustomerOut,
    responses=problem_responses(403, 404, 409),
)
async def reactivate_customer(
    customer_id: uuid.UUID,
    body: StatusChange,
    response: Response,
    principal: CurrentPrincipal,
    session: DbSession,
) -> CustomerOut:
    return await _set_active(customer_id, body, principal, session, active=True, response=response)


@router.get(
    "/{customer_id}/order-eligibility",
    response_model=OrderEligibility,
    responses=problem_responses(404),
)
async def order_eligibility(
    customer_id: uuid.UUID, principal: CurrentPrincipal, session: DbSession
) -> OrderEligibility:
    return eligibility_of(await load_visible(session, principal, customer_id))


@router.get("/{customer_id}/history", response_model=HistoryPage, responses=problem_responses(404))
async def customer_history(
    customer_id: uuid.UUID, principal: CurrentPrincipal, session: DbSession
) -> HistoryPage:
    await load_visible(session, principal, customer_id)
    rows = await history_of(session, customer_id)
    return HistoryPage(
        items=[
            HistoryEntry(
                version=h.version,
                action=h.action,
                by=h.actor,
                at=h.at,
                changes=h.changes,
                reason=h.reason,
            )
            for h in rows
        ]
    )
