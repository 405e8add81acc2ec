"""MISA's ACT Open API: connect, get_dictionary and save_dictionary.

Every request body is parsed by hand rather than by a pydantic model: MISA answers a bad
parameter with its envelope (HTTP 200, ``InvalidParam``), never FastAPI's 422, and a
malformed body must never become a 500.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from misa_simulator import misa_time
from misa_simulator.envelope import ApiError, ErrorCode, error, ok
from misa_simulator.runtime import FaultMode, RuntimeDep, SimulatorRuntime
from misa_simulator.store import ACCOUNT_OBJECT

CONNECT_PATH = "/api/oauth/actopen/connect"
#: Most clients use /apir; MISA's own CRM doc and some clients use /api (MISA_API.md §2).
SYNC_PREFIXES = ("/apir/sync/actopen", "/api/sync/actopen")
TOKEN_HEADER = "X-MISA-AccessToken"  # noqa: S105 - a header name

#: GET ``data_type`` codes MISA knows (MISA_API.md §6); only 1 has data here.
_KNOWN_DATA_TYPES = frozenset({1, 2, 3, 4, 5, 6, 8, 9, 11, 12, 14})
_DEFAULT_TAKE = 100
_APP_NAME = "CÔNG TY DEMO IMS (MISA simulator)"

Handler = Callable[[Request, SimulatorRuntime], Awaitable[JSONResponse]]


async def _serve(
    request: Request, runtime: SimulatorRuntime, name: str, handler: Handler, *, with_token: bool
) -> JSONResponse:
    """Count the call, apply an armed fault, run the handler, map ApiError to the envelope."""
    runtime.calls[name] += 1
    fault = runtime.faults.take(carries_token=with_token)
    if fault is FaultMode.HTTP_500:
        return error(ErrorCode.EXCEPTION, "Simulated internal server error", status_code=500)
    if fault is FaultMode.RATE_LIMIT:
        retry_after = runtime.faults.retry_after_header()
        return error(
            ErrorCode.TOO_MANY_REQUESTS,
            "Too many requests",
            status_code=429,
            headers={"Retry-After": retry_after},
        )
    if fault is FaultMode.EXPIRED_TOKEN:
        return error(ErrorCode.EXPIRED_TOKEN, "Token expired")

    try:
        response = await handler(request, runtime)
    except ApiError as exc:
        response = error(exc.code, exc.message)
    if fault is FaultMode.TIMEOUT:
        # The work is done first, then the answer is held back: the caller cannot tell
        # whether its write happened, which is exactly the case a client must survive.
        await runtime.hold(runtime.tunables.timeout_delay_s)
    return response


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        raise ApiError(ErrorCode.INVALID_PARAM, "Request body is empty")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(ErrorCode.INVALID_PARAM, "Request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise ApiError(ErrorCode.INVALID_PARAM, "Request body must be a JSON object")
    return value


def _authenticate(request: Request, runtime: SimulatorRuntime) -> None:
    token = request.headers.get(TOKEN_HEADER, "").strip()
    if not token:
        raise ApiError(ErrorCode.INVALID_TOKEN, f"Missing {TOKEN_HEADER} header")
    status = runtime.store.token_status(token)
    if status == "unknown":
        raise ApiError(ErrorCode.INVALID_TOKEN, "Access token is not valid")
    if status == "expired":
        raise ApiError(ErrorCode.EXPIRED_TOKEN, "Token expired")


def _check_app_id(body: dict[str, Any], runtime: SimulatorRuntime) -> None:
    # Sync calls carry app_id in the body; when present it must be this tenant's app.
    app_id = body.get("app_id")
    if app_id is not None and app_id != runtime.settings.app_id:
        raise ApiError(ErrorCode.INVALID_APP_ID, "app_id is not valid")


def _int_param(body: dict[str, Any], name: str, *, default: int, minimum: int) -> int:
    value = body.get(name)
    if value is None:
        return default
    problem = ApiError(ErrorCode.INVALID_PARAM, f"{name} must be an integer >= {minimum}")
    # .NET model binding takes "10" as well as 10; bool is not a number.
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise problem from None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise problem
    return value


# -- connect -----------------------------------------------------------------------------


async def _connect(request: Request, runtime: SimulatorRuntime) -> JSONResponse:
    body = await _json_object(request)
    settings = runtime.settings
    if body.get("app_id") != settings.app_id:
        raise ApiError(ErrorCode.INVALID_APP_ID, "app_id is not valid")
    # MISA does not document the code for a wrong access_code; InvalidParam is a guess.
    if body.get("access_code") != settings.access_code:
        raise ApiError(ErrorCode.INVALID_PARAM, "access_code is not valid")
    if body.get("org_company_code") != settings.org_company_code:
        raise ApiError(ErrorCode.INVALID_PARAM, "org_company_code is not valid")
    issued = runtime.store.issue_token(runtime.tunables.token_ttl_s)
    return ok(
        {
            "access_token": issued.access_token,
            "expired_time": misa_time.iso(issued.expires_at),
            "expired_time_ticks": misa_time.dotnet_ticks(issued.expires_at),
            "tenant_code": settings.org_company_code,
            "app_name": _APP_NAME,
        }
    )


# -- get_dictionary ----------------------------------------------------------------------


async def _get_dictionary(request: Request, runtime: SimulatorRuntime) -> JSONResponse:
    _authenticate(request, runtime)
    body = await _json_object(request)
    _check_app_id(body, runtime)

    data_type = body.get("data_type")
    if isinstance(data_type, bool) or not isinstance(data_type, int):
        raise ApiError(ErrorCode.INVALID_PARAM, "data_type is required (integer)")
    if data_type not in _KNOWN_DATA_TYPES:
        raise ApiError(ErrorCode.INVALID_PARAM, f"data_type {data_type} is not supported")
    skip = _int_param(body, "skip", default=0, minimum=0)
    take = _int_param(body, "take", default=_DEFAULT_TAKE, minimum=1)

    raw_since = body.get("last_sync_time")
    since = None
    if raw_since not in (None, ""):
        if not isinstance(raw_since, str):
            raise ApiError(ErrorCode.INVALID_PARAM, "last_sync_time must be a string")
        try:
            since = misa_time.parse_timestamp(raw_since)
        except ValueError:
            raise ApiError(
                ErrorCode.INVALID_PARAM, "last_sync_time must look like 'yyyy-MM-dd HH:mm:ss'"
            ) from None

    # Taken before reading, so a change made meanwhile is caught by the next sync.
    sync_time = misa_time.format_last_sync(misa_time.now())
    # Only account objects are simulated; other known lists exist but are empty.
    rows = runtime.store.changed_since(since) if data_type == ACCOUNT_OBJECT else []
    return ok(rows[skip : skip + take], {"LastSyncTime": sync_time})


# -- save_dictionary ---------------------------------------------------------------------


def _validated_account_object(index: int, item: Any) -> dict[str, Any]:
    where = f"dictionary[{index}]"
    if not isinstance(item, dict):
        raise ApiError(ErrorCode.INVALID_PARAM, f"{where} must be an object")
    dictionary_type = item.get("dictionary_type")
    if isinstance(dictionary_type, bool) or dictionary_type != ACCOUNT_OBJECT:
        raise ApiError(
            ErrorCode.INVALID_PARAM,
            f"{where}.dictionary_type must be 1: the simulator stores account objects only",
        )
    raw_id = item.get("account_object_id")
    try:
        object_id = str(uuid.UUID(raw_id)) if isinstance(raw_id, str) else None
    except ValueError:
        object_id = None
    if object_id is None:
        raise ApiError(ErrorCode.INVALID_PARAM, f"{where}.account_object_id must be a UUID")
    for field in ("account_object_code", "account_object_name"):
        value = item.get(field)
        if not isinstance(value, str) or not value.strip():
            raise ApiError(ErrorCode.INVALID_PARAM, f"{where}.{field} is required")
    return {**item, "account_object_id": object_id}


async def _save_dictionary(request: Request, runtime: SimulatorRuntime) -> JSONResponse:
    _authenticate(request, runtime)
    body = await _json_object(request)
    _check_app_id(body, runtime)
    items = body.get("dictionary")
    if not isinstance(items, list) or not items:
        raise ApiError(ErrorCode.INVALID_PARAM, "dictionary must be a non-empty list")
    validated = [_validated_account_object(i, item) for i, item in enumerate(items)]
    saved = runtime.store.save_batch(validated, runtime.tunables.duplicate_code_mode)
    return ok(saved)


# -- routes ------------------------------------------------------------------------------


async def connect(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Issue a 12-hour access token for app_id + access_code + org_company_code."""
    return await _serve(request, runtime, "connect", _connect, with_token=False)


async def get_dictionary(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Read master data, paged with skip/take, optionally only what changed since a time."""
    return await _serve(request, runtime, "get_dictionary", _get_dictionary, with_token=True)


async def save_dictionary(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Create or update account objects (upsert by account_object_id)."""
    return await _serve(request, runtime, "save_dictionary", _save_dictionary, with_token=True)


def build_router() -> APIRouter:
    router = APIRouter(tags=["MISA ACT Open API"])
    router.add_api_route(CONNECT_PATH, connect, methods=["POST"])
    for prefix in SYNC_PREFIXES:
        router.add_api_route(f"{prefix}/get_dictionary", get_dictionary, methods=["POST"])
        router.add_api_route(f"{prefix}/save_dictionary", save_dictionary, methods=["POST"])
    return router
