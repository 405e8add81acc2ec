"""MISA's response envelope: ``{Success, ErrorCode, ErrorMessage, Data, CustomData}``.

``Data`` and ``CustomData`` are JSON *strings* that clients decode a second time
(MISA_API.md §4). Business errors travel as HTTP 200 with ``Success: false``.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from fastapi.responses import JSONResponse


class ErrorCode(StrEnum):
    """Codes from MISA's "Mã lỗi thường gặp" table, plus two for injected faults."""

    EXCEPTION = "Exception"
    INVALID_APP_ID = "InvalidAppID"
    INVALID_TOKEN = "InvalidToken"  # noqa: S105 - an error code
    EXPIRED_TOKEN = "ExpiredToken"  # noqa: S105 - an error code
    INVALID_PARAM = "InvalidParam"
    # Not in MISA's table: the body MISA sends with a 429 is unknown.
    TOO_MANY_REQUESTS = "TooManyRequests"


class ApiError(Exception):
    """A business error answered as HTTP 200 ``Success: false``."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def encode(value: Any) -> str:
    # MISA keeps Vietnamese text readable inside the encoded string.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def ok(data: Any, custom_data: Any = None) -> JSONResponse:
    return JSONResponse(
        {
            "Success": True,
            "ErrorCode": None,
            "ErrorMessage": "",
            "Data": encode(data),
            "CustomData": None if custom_data is None else encode(custom_data),
        }
    )


def error(
    code: ErrorCode,
    message: str,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {
            "Success": False,
            "ErrorCode": str(code),
            "ErrorMessage": message,
            "Data": None,
            "CustomData": None,
        },
        status_code=status_code,
        headers=headers,
    )
