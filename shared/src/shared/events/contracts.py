"""Pydantic models for the `data` of every event type of CONTRACT.md §8.

Each model knows its `ce_type` and topic. A breaking change makes a `V2` model and a new
type; `v1` models only ever gain optional fields.
"""

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from shared.events import topics
from shared.events.envelope import CloudEvent
from shared.events.snapshots import CustomerSnapshotV1, DescribedBy
from shared.logging import current_correlation_id
from shared.tracing import current_traceparent


class EventData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    TYPE: ClassVar[str]
    TOPIC: ClassVar[str]
    SOURCE: ClassVar[str]

    def subject(self) -> str:
        """The Kafka key and `ce_subject`: the aggregate id."""
        raise NotImplementedError


class _KeyedByCustomer(EventData):
    customer_id: UUID

    def subject(self) -> str:
        return str(self.customer_id)


#: The customer in customer events: a dict, as the REST API returns it; its schema is
#: CustomerSnapshotV1's (shared.events.snapshots).
CustomerSnapshot = Annotated[dict[str, Any], DescribedBy(CustomerSnapshotV1)]


# ---- ims.customer.events.v1 ------------------------------------------------------------


class _CustomerEvent(_KeyedByCustomer):
    TOPIC = topics.CUSTOMER_EVENTS
    SOURCE = "/ims/customer"


class CustomerSubmittedV1(_CustomerEvent):
    """A salesperson sent a new customer, or a change to an active one, to CS."""

    TYPE = "ims.customer.CustomerSubmitted.v1"
    version: int
    review_kind: Literal["new", "change"]
    submitted_by: str
    submitted_at: datetime
    customer: CustomerSnapshot
    #: For a change review: {field: {old, new}}; `customer` then shows the proposed state.
    changes: dict[str, Any] | None = None


class CustomerActivatedV1(_CustomerEvent):
    """CS approved a new customer: it has its code and may order."""

    TYPE = "ims.customer.CustomerActivated.v1"
    version: int
    customer_code: str
    approved_by: str
    approved_at: datetime
    customer: CustomerSnapshot


class CustomerRejectedV1(_CustomerEvent):
    """CS rejected a submission; the customer is back with the salesperson."""

    TYPE = "ims.customer.CustomerRejected.v1"
    version: int
    reason: str
    rejected_by: str
    rejected_at: datetime


class CustomerUpdatedV1(_CustomerEvent):
    """An active customer changed (an approved change, a field outside CS's review, its MISA code)."""

    TYPE = "ims.customer.CustomerUpdated.v1"
    version: int
    changed_fields: list[str]
    customer: CustomerSnapshot


class CustomerDeactivatedV1(_CustomerEvent):
    """A customer may no longer order."""

    TYPE = "ims.customer.CustomerDeactivated.v1"
    version: int
    by: str
    at: datetime
    reason: str | None = None
    customer: CustomerSnapshot


class CustomerReactivatedV1(_CustomerEvent):
    """A deactivated customer may order again."""

    TYPE = "ims.customer.CustomerReactivated.v1"
    version: int
    by: str
    at: datetime
    reason: str | None = None
    customer: CustomerSnapshot


# ---- ims.approval.events.v1 ------------------------------------------------------------


class _ApprovalEvent(_KeyedByCustomer):
    TOPIC = topics.APPROVAL_EVENTS
    SOURCE = "/ims/approval"


class CustomerApprovedV1(_ApprovalEvent):
    """CS approved a review; the customer service activates the customer or applies the change."""

    TYPE = "ims.approval.CustomerApproved.v1"
    review_id: UUID
    customer_version: int
    customer_code: str
    approved_by: str
    approved_at: datetime


class ApprovalCustomerRejectedV1(_ApprovalEvent):
    """CS rejected a review, with the reason."""

    TYPE = "ims.approval.CustomerRejected.v1"
    review_id: UUID
    customer_version: int
    reason: str
    rejected_by: str
    rejected_at: datetime
    #: The reject reason's code (GET /api/v1/reviews/reject-reasons), when CS chose one.
    reason_code: str | None = None


# ---- ims.misa.events.v1 ----------------------------------------------------------------


class _MisaEvent(_KeyedByCustomer):
    TOPIC = topics.MISA_EVENTS
    SOURCE = "/ims/misa-sync"


class MisaCustomerLinkedV1(_MisaEvent):
    """The customer exists in MISA AMIS under `misa_code`."""

    TYPE = "ims.misa.CustomerLinked.v1"
    customer_code: str
    misa_code: str
    misa_account_object_id: str
    created_in_misa: bool
    linked_at: datetime


class MisaSyncFailedV1(_MisaEvent):
    """Sending the customer to MISA failed after every retry; accounting is alerted."""

    TYPE = "ims.misa.SyncFailed.v1"
    attempts: int
    error: str
    failed_at: datetime


# ---- ims.reference.events.v1 -----------------------------------------------------------


class ReferenceItemChangedV1(EventData):
    """An item of a reference list (province, channel, payment term…) changed or was deleted."""

    TYPE = "ims.reference.ItemChanged.v1"
    TOPIC = topics.REFERENCE_EVENTS
    SOURCE = "/ims/reference"
    list: str
    code: str
    item: dict[str, Any] | None
    deleted: bool = False

    def subject(self) -> str:
        return f"{self.list}/{self.code}"


EVENT_TYPES: dict[str, type[EventData]] = {
    cls.TYPE: cls
    for cls in (
        CustomerSubmittedV1,
        CustomerActivatedV1,
        CustomerRejectedV1,
        CustomerUpdatedV1,
        CustomerDeactivatedV1,
        CustomerReactivatedV1,
        CustomerApprovedV1,
        ApprovalCustomerRejectedV1,
        MisaCustomerLinkedV1,
        MisaSyncFailedV1,
        ReferenceItemChangedV1,
    )
}


def to_cloud_event(data: EventData) -> CloudEvent:
    """Wrap event data in its envelope, carrying the current correlation id."""
    return CloudEvent(
        source=data.SOURCE,
        type=data.TYPE,
        subject=data.subject(),
        data=data.model_dump(mode="json"),
        correlation_id=current_correlation_id(),
        traceparent=current_traceparent(),
    )


def parse_data[E: EventData](event: CloudEvent, model: type[E]) -> E:
    """The typed data of an event (raises pydantic.ValidationError on a bad payload)."""
    return model.model_validate(event.data)
