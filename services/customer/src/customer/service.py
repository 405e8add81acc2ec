"""The customer lifecycle: drafts, edits, submission, and the outcomes other services report.

Every change bumps `version`, writes a history entry and, where the contract says so, an
event into the outbox, all in the caller's transaction.
"""

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from customer.attachments import attachments_of
from customer.models import Customer, CustomerHistory, messaging, ref_items
from customer.ownership import resolve_assignment
from customer.reference_rules import group_defaults, reference_errors
from customer.schemas import CustomerCreate, CustomerOut, CustomerPatch
from customer.submission_rules import address_problems, single_default_errors, submission_errors
from customer.type_rules import type_rule_errors
from shared.auth.principal import Principal
from shared.errors import FieldError, ProblemError, conflict
from shared.events.contracts import (
    CustomerActivatedV1,
    CustomerDeactivatedV1,
    CustomerReactivatedV1,
    CustomerRejectedV1,
    CustomerSubmittedV1,
    CustomerUpdatedV1,
    EventData,
)
from shared.messaging.outbox import record_event
from shared.replica import replica_items
from shared.text import fold

EDITABLE_STATUSES = ("draft", "rejected")
#: Fields of an active customer that change only through a change request approved by CS
#: (issue 4); everything else (contact details, notes, delivery addresses) applies at once.
GOVERNED_FIELDS = frozenset(
    {
        "full_name",
        "company_name",
        "tax_code",
        "misa_code",
        "address",
        "province_code",
        "district_code",
        "ward_code",
        "admin_scheme",
        "invoice_profiles",
        "payment_term_code",
        "payment_method_code",
        "credit_days",
        "owner_employee_id",
        "sales_unit_code",
        "customer_type_code",
        "customer_group_code",
        "channel_code",
    }
)
#: Fields the history compares (everything the salesperson or the system can change).
TRACKED_FIELDS = tuple(
    f for f in CustomerOut.model_fields if f not in ("attachments", "version", "updated_at")
)


def now() -> datetime:
    return datetime.now(UTC)


def snapshot(customer: Customer) -> dict[str, Any]:
    """The customer as the REST API returns it, JSON-ready (the events carry this)."""
    return CustomerOut.model_validate(customer, from_attributes=True).model_dump(mode="json")


def search_text(customer: Customer) -> str:
    parts = [
        customer.full_name,
        customer.company_name,
        customer.email,
        customer.tax_code,
        customer.customer_code,
        customer.misa_code,
    ]
    if customer.phone:
        parts += [
            customer.phone,
            "0" + customer.phone[3:] if customer.phone.startswith("+84") else "",
        ]
    return " ".join(fold(p) for p in parts if p)


def _validation_problem(errors: list[FieldError], *, vietnamese: bool) -> ProblemError:
    title = "Dữ liệu không hợp lệ" if vietnamese else "Invalid request"
    return ProblemError(422, title, None, "validation-error", errors)


class CustomerService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        #: Attachments read by this command, by customer: the response reuses them.
        self.attachments: dict[uuid.UUID, list[dict[str, Any]]] = {}

    async def attachments_of(self, customer: Customer) -> list[dict[str, Any]]:
        if customer.id not in self.attachments:
            self.attachments[customer.id] = await attachments_of(self.session, customer.id)
        return self.attachments[customer.id]

    async def full_snapshot(self, customer: Customer) -> dict[str, Any]:
        """The snapshot events carry: the customer with its attachments' metadata."""
        data = snapshot(customer)
        data["attachments"] = await self.attachments_of(customer)
        return data

    async def _emit(self, data: EventData) -> None:
        await record_event(self.session, messaging.outbox, data)

    async def _record(
        self,
        customer: Customer,
        *,
        action: str,
        actor: str,
        before: dict[str, Any] | None,
        reason: str | None = None,
        changes: dict[str, Any] | None = None,
    ) -> None:
        after = snapshot(customer)
        changes = (
            changes
            if changes is not None
            else {
                f: {"old": (before or {}).get(f), "new": after.get(f)}
                for f in TRACKED_FIELDS
                if (before is None and after.get(f) is not None)
                or (before is not None and before.get(f) != after.get(f))
            }
        )
        self.session.add(
            CustomerHistory(
                customer_id=customer.id,
                version=customer.version,
                action=action,
                actor=actor,
                at=customer.updated_at,
                changes=changes,
                reason=reason,
            )
        )

    def _touch(self, customer: Customer) -> None:
        customer.version += 1
        customer.updated_at = now()
        customer.search_text = search_text(customer)

    # ---- commands from the REST API ----------------------------------------------------

    async def create(
        self, principal: Principal, data: CustomerCreate, *, vietnamese: bool
    ) -> Customer:
        fields = data.model_dump(mode="json")
        # One replica round trip serves every check below (owner, unit, group defaults).
        await replica_items(
            self.session,
            ref_items,
            [
                (list_name, code)
                for list_name, code in (
                    ("employees", fields.get("owner_employee_id") or principal.employee_id),
                    ("sales-units", fields.get("sales_unit_code") or principal.sales_unit),
                    ("customer-groups", fields.get("customer_group_code")),
                )
                if code
            ],
        )
        assignment, errors = await resolve_assignment(
            self.session,
            principal,
            owner=fields.get("owner_employee_id"),
            unit=fields.get("sales_unit_code"),
            vietnamese=vietnamese,
        )
        if errors:
            raise _validation_problem(errors, vietnamese=vietnamese)
        fields["owner_employee_id"] = assignment.owner_employee_id
        fields["sales_unit_code"] = assignment.sales_unit_code
        for key, value in (
            await group_defaults(self.session, fields.get("customer_group_code"))
        ).items():
            if fields.get(key) is None:  # the group's terms fill what the salesperson left empty
                fields[key] = value
        stamp = now()
        customer = Customer(
            id=uuid.uuid4(),
            status="draft",
            version=1,
            created_by=principal.employee_id,
            created_at=stamp,
            updated_at=stamp,
            **fields,
        )
        errors = single_default_errors(customer, vietnamese=vietnamese)
        if errors:
            raise _validation_problem(errors, vietnamese=vietnamese)
        customer.search_text = search_text(customer)
        self.session.add(customer)
        self.attachments[customer.id] = []  # a new customer has none yet
        await self.session.flush()
        await self._record(customer, action="created", actor=principal.employee_id, before=None)
        return customer

    async def update(
        self, principal: Principal, customer: Customer, patch: CustomerPatch, *, vietnamese: bool
    ) -> Customer:
        if customer.status == "pending_approval":
            raise conflict("The customer is waiting for CS approval and cannot be edited.")
        if customer.status not in (*EDITABLE_STATUSES, "active"):
            raise conflict(
                f"A customer in status '{customer.status}' cannot be edited; reactivate it first."
            )
        changes = patch.model_dump(mode="json", exclude_unset=True)
        if "full_name" in changes and changes["full_name"] is None:
            raise _validation_problem(
                [
                    FieldError(
                        "full_name",
                        "Họ và tên là bắt buộc." if vietnamese else "Full name is required.",
                        "required",
                    )
                ],
                vietnamese=vietnamese,
            )
        for key in ("admin_scheme", "delivery_addresses", "invoice_profiles"):
            if key in changes and changes[key] is None:
                changes[key] = "2025" if key == "admin_scheme" else []
        if "owner_employee_id" in changes or "sales_unit_code" in changes:
            owner = changes.get("owner_employee_id", customer.owner_employee_id)
            # A new owner brings their unit unless a unit is given with them.
            unit = (
                changes.get("sales_unit_code")
                if "sales_unit_code" in changes
                else (None if "owner_employee_id" in changes else customer.sales_unit_code)
            )
            assignment, errors = await resolve_assignment(
                self.session, principal, owner=owner, unit=unit, vietnamese=vietnamese
            )
            if errors:
                raise _validation_problem(errors, vietnamese=vietnamese)
            changes["owner_employee_id"] = assignment.owner_employee_id
            changes["sales_unit_code"] = assignment.sales_unit_code
        if changes.get("customer_group_code"):
            for key, value in (
                await group_defaults(self.session, changes["customer_group_code"])
            ).items():
                if changes.get(key, getattr(customer, key)) is None:
                    changes[key] = value
        if customer.status == "active":
            return await self._request_change(principal, customer, changes, vietnamese=vietnamese)
        before = snapshot(customer)
        for key, value in changes.items():
            setattr(customer, key, value)
        errors = single_default_errors(customer, vietnamese=vietnamese)
        if errors:
            raise _validation_problem(errors, vietnamese=vietnamese)
        self._touch(customer)
        await self._record(customer, action="updated", actor=principal.employee_id, before=before)
        return customer

    async def _full_validation(self, customer: Customer, *, vietnamese: bool) -> list[FieldError]:
        return [
            *submission_errors(customer, vietnamese=vietnamese),
            *address_problems(customer, vietnamese=vietnamese),
            *single_default_errors(customer, vietnamese=vietnamese),
            *await reference_errors(self.session, customer, vietnamese=vietnamese),
            *await type_rule_errors(self.session, customer, vietnamese=vietnamese),
        ]

    async def _request_change(
        self, principal: Principal, customer: Customer, changes: dict[str, Any], *, vietnamese: bool
    ) -> Customer:
        """An edit of an active customer: what is governed waits for CS as a change request
        (the active values keep serving everyone); the rest applies at once."""
        pending = dict((customer.pending_change or {}).get("fields", {}))
        governed = {k: v for k, v in changes.items() if k in GOVERNED_FIELDS}
        immediate = {
            k: v
            for k, v in changes.items()
            if k not in GOVERNED_FIELDS and getattr(customer, k) != v
        }
        # A newer request replaces the pending one field by field; asking for the current
        # value again withdraws that field from the request.
        for key, value in governed.items():
            pending[key] = value
        pending = {k: v for k, v in pending.items() if getattr(customer, k) != v}
        requested = bool(governed) and pending != (customer.pending_change or {}).get("fields")
        if not immediate and not requested:
            return customer

        before = snapshot(customer)
        for key, value in immediate.items():
            setattr(customer, key, value)
        proposed: dict[str, Any] | None = None
        if requested and pending:
            # Validate the customer as it would be, then put the active values back.
            active_values = {k: getattr(customer, k) for k in pending}
            for key, value in pending.items():
                setattr(customer, key, value)
            errors = await self._full_validation(customer, vietnamese=vietnamese)
            proposed = await self.full_snapshot(customer)
            for key, value in active_values.items():
                setattr(customer, key, value)
            if errors:
                raise _validation_problem(errors, vietnamese=vietnamese)
        else:
            errors = single_default_errors(customer, vietnamese=vietnamese)
            if errors:
                raise _validation_problem(errors, vietnamese=vietnamese)
        self._touch(customer)
        if immediate:
            await self._record(
                customer, action="updated", actor=principal.employee_id, before=before
            )
            await self._emit(
                CustomerUpdatedV1(
                    customer_id=customer.id,
                    version=customer.version,
                    changed_fields=sorted(immediate),
                    customer=await self.full_snapshot(customer),
                )
            )
        if requested:
            customer.pending_change = (
                {
                    "fields": pending,
                    "requested_by": principal.employee_id,
                    "requested_at": customer.updated_at.isoformat(),
                    "version": customer.version,
                }
                if pending
                else None
            )
            diff = {k: {"old": before.get(k), "new": v} for k, v in pending.items()}
            await self._record(
                customer,
                action="change_requested",
                actor=principal.employee_id,
                before=None,
                changes=diff,
            )
            if proposed is not None:
                proposed["pending_change"] = customer.pending_change
                await self._emit(
                    CustomerSubmittedV1(
                        customer_id=customer.id,
                        version=customer.version,
                        review_kind="change",
                        submitted_by=principal.employee_id,
                        submitted_at=customer.updated_at,
                        customer=proposed,
                        changes=diff,
                    )
                )
        return customer

    async def submit(
        self, principal: Principal, customer: Customer, *, vietnamese: bool
    ) -> Customer:
        if customer.status not in EDITABLE_STATUSES:
            raise conflict(f"A customer in status '{customer.status}' cannot be submitted.")
        errors = await self._full_validation(customer, vietnamese=vietnamese)
        if errors:
            raise _validation_problem(errors, vietnamese=vietnamese)
        before = snapshot(customer)
        customer.status = "pending_approval"
        customer.submitted_at = now()
        customer.submitted_by = principal.employee_id
        customer.rejection_reason = None
        self._touch(customer)
        await self._record(customer, action="submitted", actor=principal.employee_id, before=before)
        await self._emit(
            CustomerSubmittedV1(
                customer_id=customer.id,
                version=customer.version,
                review_kind="new" if customer.customer_code is None else "change",
                submitted_by=principal.employee_id,
                submitted_at=customer.submitted_at,
                customer=await self.full_snapshot(customer),
            )
        )
        return customer

    async def set_active(
        self, principal: Principal, customer: Customer, *, active: bool, reason: str
    ) -> Customer:
        """CS deactivates an active customer or reactivates an inactive one, with a reason."""
        wanted_from = "inactive" if active else "active"
        if customer.status != wanted_from:
            verb = "reactivated" if active else "deactivated"
            raise conflict(f"Only a customer in status '{wanted_from}' can be {verb}.")
        before = snapshot(customer)
        customer.status = "active" if active else "inactive"
        self._touch(customer)
        action = "reactivated" if active else "deactivated"
        await self._record(
            customer, action=action, actor=principal.employee_id, before=before, reason=reason
        )
        event_type = CustomerReactivatedV1 if active else CustomerDeactivatedV1
        await self._emit(
            event_type(
                customer_id=customer.id,
                version=customer.version,
                by=principal.employee_id,
                at=customer.updated_at,
                reason=reason,
                customer=await self.full_snapshot(customer),
            )
        )
        return customer

    # ---- outcomes reported by other services (consumers) -------------------------------

    async def _locked(self, customer_id: uuid.UUID) -> Customer | None:
        stmt = select(Customer).where(Customer.id == customer_id).with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def _pending_version(self, customer_id: uuid.UUID, version: int) -> Customer | None:
        """The customer, locked, if it is still pending at the version CS decided on."""
        customer = await self._locked(customer_id)
        if customer is None or customer.status != "pending_approval" or customer.version != version:
            return None
        return customer

    async def _pending_change_at(self, customer_id: uuid.UUID, version: int) -> Customer | None:
        """The customer, locked, if its pending change request is the one CS decided on."""
        customer = await self._locked(customer_id)
        change = customer.pending_change if customer is not None else None
        if customer is None or not change or change.get("version") != version:
            return None
        return customer

    async def _apply_pending_change(
        self, customer_id: uuid.UUID, version: int, approved_by: str
    ) -> bool:
        customer = await self._pending_change_at(customer_id, version)
        if customer is None or customer.pending_change is None:
            return False
        before = snapshot(customer)
        fields = dict(customer.pending_change["fields"])
        for key, value in fields.items():
            setattr(customer, key, value)
        customer.pending_change = None
        self._touch(customer)
        await self._record(customer, action="change_approved", actor=approved_by, before=before)
        await self._emit(
            CustomerUpdatedV1(
                customer_id=customer.id,
                version=customer.version,
                changed_fields=sorted(fields),
                customer=await self.full_snapshot(customer),
            )
        )
        return True

    async def _discard_pending_change(
        self, customer_id: uuid.UUID, version: int, rejected_by: str, reason: str
    ) -> bool:
        customer = await self._pending_change_at(customer_id, version)
        if customer is None or customer.pending_change is None:
            return False
        discarded = customer.pending_change["fields"]
        customer.pending_change = None
        self._touch(customer)
        # The active record did not change, so no event: only the request is gone.
        await self._record(
            customer,
            action="change_rejected",
            actor=rejected_by,
            before=None,
            reason=reason,
            changes={k: {"old": getattr(customer, k), "new": v} for k, v in discarded.items()},
        )
        return True

    async def on_approved(
        self,
        *,
        customer_id: uuid.UUID,
        customer_version: int,
        customer_code: str,
        approved_by: str,
        approved_at: datetime,
    ) -> bool:
        """Activate the customer with its code; False when the decision no longer applies."""
        if await self._apply_pending_change(customer_id, customer_version, approved_by):
            return True
        customer = await self._pending_version(customer_id, customer_version)
        if customer is None:
            return False
        before = snapshot(customer)
        customer.status = "active"
        customer.customer_code = customer.customer_code or customer_code
        customer.approved_at = approved_at
        self._touch(customer)
        await self._record(customer, action="approved", actor=approved_by, before=before)
        await self._emit(
            CustomerActivatedV1(
                customer_id=customer.id,
                version=customer.version,
                customer_code=customer.customer_code,
                approved_by=approved_by,
                approved_at=approved_at,
                customer=await self.full_snapshot(customer),
            )
        )
        return True

    async def on_rejected(
        self,
        *,
        customer_id: uuid.UUID,
        customer_version: int,
        reason: str,
        rejected_by: str,
        rejected_at: datetime,
    ) -> bool:
        if await self._discard_pending_change(customer_id, customer_version, rejected_by, reason):
            return True
        customer = await self._pending_version(customer_id, customer_version)
        if customer is None:
            return False
        before = snapshot(customer)
        customer.status = "rejected"
        customer.rejection_reason = reason
        self._touch(customer)
        await self._record(
            customer, action="rejected", actor=rejected_by, before=before, reason=reason
        )
        await self._emit(
            CustomerRejectedV1(
                customer_id=customer.id,
                version=customer.version,
                reason=reason,
                rejected_by=rejected_by,
                rejected_at=rejected_at,
            )
        )
        return True

    async def on_misa_linked(self, *, customer_id: uuid.UUID, misa_code: str) -> bool:
        customer = await self._locked(customer_id)
        if customer is None or customer.misa_code == misa_code:
            return False
        before = snapshot(customer)
        customer.misa_code = misa_code
        self._touch(customer)
        await self._record(customer, action="misa_linked", actor="misa_sync", before=before)
        if customer.status in ("active", "inactive"):
            await self._emit(
                CustomerUpdatedV1(
                    customer_id=customer.id,
                    version=customer.version,
                    changed_fields=["misa_code"],
                    customer=await self.full_snapshot(customer),
                )
            )
        return True
