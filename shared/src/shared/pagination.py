"""Opaque keyset cursors: (timestamp, id) of the last item, base64url JSON."""

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from shared.errors import FieldError, ProblemError

MAX_LIMIT = 200


class Page[T](BaseModel):
    items: list[T]
    next_cursor: str | None


def encode_cursor(at: datetime, item_id: UUID) -> str:
    raw = json.dumps([at.isoformat(), str(item_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, item_id = json.loads(base64.urlsafe_b64decode(padded))
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError("cursor time without a zone")
        return moment.astimezone(UTC), UUID(item_id)
    except (ValueError, TypeError, OverflowError, binascii.Error, json.JSONDecodeError) as exc:
        raise invalid_cursor() from exc


def invalid_cursor() -> ProblemError:
    """The 400 answered for a cursor this API did not issue (or issued for another query)."""
    return ProblemError(
        400,
        "Invalid cursor",
        "The cursor is not one this API issued.",
        "invalid-cursor",
        [FieldError("cursor", "invalid cursor")],
    )


def page_of(
    rows: list[Any], limit: int, *, at: str, key: str = "id"
) -> tuple[list[Any], str | None]:
    """Split a `limit + 1` fetch into the page and the cursor of the next one."""
    items = rows[:limit]
    if len(rows) <= limit or not items:
        return items, None
    last = items[-1]
    return items, encode_cursor(getattr(last, at), getattr(last, key))
