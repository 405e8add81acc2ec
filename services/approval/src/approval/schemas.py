import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints

from shared.validation import NoNul


class DuplicateCandidate(BaseModel):
    customer_id: uuid.UUID
    customer_code: str | None
    full_name: str
    reasons: list[str]
    #: The candidate's status when the review was created: active, inactive or pending.
    status: str | None = None
    #: 0..1, higher is likelier the same customer (approval.duplicates).
    score: float | None = None


class ReviewOut(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    customer_version: int
    kind: str
    status: str
    submitted_by: str
    submitted_at: datetime
    customer: dict[str, Any]
    duplicates: list[DuplicateCandidate] = []
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    customer_code: str | None
    reason_code: str | None = None
    #: A change review's {field: {old, new}}; null for a new customer.
    changes: dict[str, Any] | None = None
    has_duplicates: bool = False


class ReviewPage(BaseModel):
    items: list[ReviewOut]
    next_cursor: str | None


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), NoNul
    ]
    #: One of GET /api/v1/reviews/reject-reasons; `reason` is then the free text.
    reason_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = (
        None
    )


class RejectReasonOut(BaseModel):
    code: str
    #: In the request's language (Accept-Language: vi → Vietnamese).
    label: str
    label_vi: str
    label_en: str
