"""The customer list (Danh sách khách hàng): the customers the user may see, newest first
or by relevance to `q`, with filters, status tabs and cursor paging.

It runs the REST API's own search (`search_customers`, the indexed statements) under the
same visibility filter, one page of 50 at a time; names and provinces for the whole page
come from one replica query, so a page costs a fixed handful of statements.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from customer.access import READ_ALL_ROLES, may_write, unit_subtree, visibility_filter
from customer.models import Customer, ref_items
from customer.search import CustomerFilters, search_customers
from customer.ui.views import (
    STATUS_BADGE,
    STATUSES,
    CustomerUser,
    list_options,
    load_names,
    local_phone,
    province_options,
)
from shared.auth.principal import Principal
from shared.ui import clean_param, get_kit
from shared.ui.customer_form import place_name
from shared.web import DbSession

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
MAX_QUERY_CHARS = 200
MAX_CODE_CHARS = 40
#: The rejected tab counts up to this many (an exact count over a million rows is not free).
REJECTED_COUNT_CAP = 99
TABS = ("all", *STATUSES)
FILTER_LISTS = ("channels", "customer-groups")


@dataclass(frozen=True)
class ListQuery:
    """The list's search and filters as the URL carries them (bad values are dropped)."""

    q: str = ""
    status: str = "all"
    province_code: str = ""
    channel_code: str = ""
    customer_group_code: str = ""
    owner_employee_id: str = ""

    def filters(self) -> CustomerFilters:
        return {
            "status": None if self.status == "all" else self.status,
            "province_code": self.province_code or None,
            "channel_code": self.channel_code or None,
            "customer_group_code": self.customer_group_code or None,
            "owner_employee_id": self.owner_employee_id or None,
        }

    @property
    def filtered(self) -> bool:
        return self != ListQuery()

    def url(self, **changes: Any) -> str:
        values = {
            "q": self.q,
            "status": self.status,
            "province_code": self.province_code,
            "channel_code": self.channel_code,
            "customer_group_code": self.customer_group_code,
            "owner_employee_id": self.owner_employee_id,
            **changes,
        }
        params = {k: v for k, v in values.items() if v and not (k == "status" and v == "all")}
        return "/ui/customers" + (f"?{urlencode(params)}" if params else "")


@dataclass(frozen=True)
class Row:
    id: uuid.UUID
    customer_code: str | None
    full_name: str
    company_name: str | None
    phone: str | None
    province: str | None
    channel: str | None
    owner: str | None
    status: str
    badge: str
    misa_code: str | None
    rejection_reason: str | None
    created_at: datetime


async def rejected_count(session: AsyncSession, visibility: ColumnElement[bool]) -> int:
    """How many of the user's customers wait to be fixed, up to the cap (+1 for 'more')."""
    capped = (
        select(Customer.id)
        .where(visibility, Customer.status == "rejected")
        .limit(REJECTED_COUNT_CAP + 1)
        .subquery()
    )
    return int(await session.scalar(select(func.count()).select_from(capped)) or 0)


async def owner_options(session: AsyncSession, principal: Principal) -> list[tuple[str, str]]:
    """The owners the filter offers: whom the user sees customers of (CONTRACT.md §2) - a
    salesperson themself, a manager the employees of their units, the others everyone."""
    if principal.has_any(*READ_ALL_ROLES):
        return (await list_options(session, ["employees"])).get("employees", [])
    mine = ref_items.c.code == principal.employee_id
    condition: ColumnElement[bool] = mine
    if principal.has_any("sales_manager") and principal.sales_unit:
        units = await unit_subtree(session, principal.sales_unit)
        condition = or_(mine, ref_items.c.data["sales_unit_code"].astext.in_(units))
    rows = await session.execute(
        select(ref_items.c.code, ref_items.c.data).where(ref_items.c.list == "employees", condition)
    )
    found = []
    for code, data in rows:
        order = data.get("sort_order")
        found.append((order if isinstance(order, int) else 0, str(data.get("name") or code), code))
    return [(code, name) for _, name, code in sorted(found)]


@router.get("/ui/")
@router.get("/ui/customers")
async def customer_list(
    request: Request,
    user: CustomerUser,
    session: DbSession,
    q: str = "",
    status: str = "all",
    province_code: str = "",
    channel_code: str = "",
    customer_group_code: str = "",
    owner_employee_id: str = "",
    cursor: str = "",
    partial: str = "",
) -> Response:
    kit = get_kit(request)
    provinces = province_options()
    query = ListQuery(
        q=clean_param(q, MAX_QUERY_CHARS),
        status=status if status in TABS else "all",
        province_code=province_code if province_code in dict(provinces) else "",
        channel_code=clean_param(channel_code, MAX_CODE_CHARS),
        customer_group_code=clean_param(customer_group_code, MAX_CODE_CHARS),
        owner_employee_id=clean_param(owner_employee_id, MAX_CODE_CHARS),
    )
    visibility = await visibility_filter(session, user.principal)
    customers, next_cursor = await search_customers(
        session,
        visibility=visibility,
        filters=query.filters(),
        q=query.q or None,
        limit=PAGE_SIZE,
        cursor=clean_param(cursor, 1000) or None,
    )
    names = await load_names(
        session,
        [("channels", c.channel_code) for c in customers]
        + [("employees", c.owner_employee_id) for c in customers],
    )
    rows = [
        Row(
            id=c.id,
            customer_code=c.customer_code,
            full_name=c.full_name,
            company_name=c.company_name,
            phone=local_phone(c.phone),
            province=place_name("province", c.province_code, c.admin_scheme),
            channel=names.name("channels", c.channel_code),
            owner=names.employee(c.owner_employee_id),
            status=c.status,
            badge=STATUS_BADGE.get(c.status, "plain"),
            misa_code=c.misa_code,
            rejection_reason=c.rejection_reason if c.status == "rejected" else None,
            created_at=c.created_at,
        )
        for c in customers
    ]
    context = {
        "query": query,
        "rows": rows,
        "next_url": query.url(cursor=next_cursor) if next_cursor else None,
        "first_url": query.url(),
        "on_first": not cursor,
        "nav_current": "list",
    }
    if partial:
        return kit.render(request, "customer/_list_results.html", context, partial=True)
    options = await list_options(session, FILTER_LISTS)
    return kit.render(
        request,
        "customer/list.html",
        {
            **context,
            "tabs": TABS,
            "rejected_count": await rejected_count(session, visibility),
            "rejected_cap": REJECTED_COUNT_CAP,
            "provinces": provinces,
            "channels": options.get("channels", []),
            "groups": options.get("customer-groups", []),
            "employees": await owner_options(session, user.principal),
            "may_create": may_write(user.principal),
        },
    )
