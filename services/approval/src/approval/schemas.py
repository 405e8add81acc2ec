import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints


class DuplicateCandidate(BaseModel):
    customer_id: uuid.UUID
    customer_code: str | None
    full_name: str
    reasons: list[str]


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


class ReviewPage(BaseModel):
    items: list[ReviewOut]
    next_cursor: str | None


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    reason_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = (
        None
    )
