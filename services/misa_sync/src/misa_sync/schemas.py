import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

LinkState = Literal["pending", "synced", "failed"]


class MisaLinkOut(BaseModel):
    customer_id: uuid.UUID
    customer_code: str | None
    misa_code: str | None
    state: LinkState
    attempts: int
    last_error: str | None
    synced_at: datetime | None


class MisaLinkPage(BaseModel):
    items: list[MisaLinkOut]
    next_cursor: str | None
