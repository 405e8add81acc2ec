import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

LinkState = Literal["pending", "synced", "failed"]
#: What a bulk retry may reset: failed links, or pending ones waiting out MISA.
RetryableState = Literal["failed", "pending"]


class MisaLinkOut(BaseModel):
    customer_id: uuid.UUID
    customer_code: str | None
    misa_code: str | None
    state: LinkState
    attempts: int
    last_error: str | None
    last_error_code: str | None = None
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None
    synced_at: datetime | None


class RetriedLinks(BaseModel):
    #: The state the links were in; they are all pending and due now.
    state: RetryableState
    count: int


class MisaLinkPage(BaseModel):
    items: list[MisaLinkOut]
    next_cursor: str | None


DriftKindOut = Literal["missing", "changed", "extra"]
RefreshMode = Literal["full", "incremental", "none"]


class DriftOut(BaseModel):
    kind: DriftKindOut
    account_object_id: str
    misa_code: str | None
    customer_id: uuid.UUID | None
    customer_code: str | None
    #: For "changed": the mapped fields whose MISA value differs (names only).
    fields: list[str]


class DriftCounts(BaseModel):
    missing: int = 0
    changed: int = 0
    extra: int = 0


class ReconciliationReport(BaseModel):
    refreshed: RefreshMode
    #: When the mirror last read MISA, and when it last read all of it (deletions).
    mirror_refreshed_at: datetime | None
    mirror_full_refreshed_at: datetime | None
    counts: DriftCounts
    items: list[DriftOut]
    #: More drift than `limit`: the counts are complete, the items are not.
    truncated: bool
