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


RunOutcome = Literal["ok", "failed"]
RunTrigger = Literal["schedule", "api"]


class ReconciliationReport(BaseModel):
    refreshed: RefreshMode
    #: When the mirror last read MISA, and when it last read all of it (deletions).
    mirror_refreshed_at: datetime | None
    mirror_full_refreshed_at: datetime | None
    counts: DriftCounts
    items: list[DriftOut]
    #: Fewer items than the counts say (past `limit`, or past what a run stores).
    truncated: bool
    #: The stored run reported; null for `refresh=none` (computed, not stored).
    run_id: uuid.UUID | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    outcome: RunOutcome = "ok"


class ReconciliationRunOut(BaseModel):
    run_id: uuid.UUID
    started_at: datetime
    finished_at: datetime
    duration_ms: int
    trigger: RunTrigger
    refreshed: RefreshMode
    outcome: RunOutcome
    #: MISA's (or our) error code when MISA could not be read.
    error_code: str | None
    counts: DriftCounts
    #: The run stored fewer items than it counted.
    truncated: bool


class ReconciliationRunPage(BaseModel):
    items: list[ReconciliationRunOut]
    next_cursor: str | None
