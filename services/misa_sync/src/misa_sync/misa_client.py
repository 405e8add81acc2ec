"""Async client for MISA AMIS's ACT Open API (the customer part of it).

Field names, paths and codes follow ``MISA_API.md``. The client only classifies failures;
the caller decides about retries:

- :class:`MisaTransientError` (HTTP 5xx, 429 with ``retry_after``, timeouts, connection
  errors, garbled answers, a token refused even right after a reconnect) may succeed later;
- :class:`MisaBusinessError` (``Success: false`` with any code but the token codes, or a
  4xx) will not succeed by repeating the same request.

Token errors (``ExpiredToken``/``InvalidToken``) are handled here: reconnect, retry once.
Nothing here logs a request or response body, so phone, email and tax code never reach
the logs; exceptions carry MISA's ``ErrorMessage`` as MISA wrote it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Final, Self

import httpx
import structlog

log = structlog.get_logger(__name__)

CONNECT_PATH: Final = "/api/oauth/actopen/connect"
#: Most clients use /apir; /api/sync/actopen also exists (MISA_API.md §2).
DEFAULT_SYNC_PREFIX: Final = "/apir/sync/actopen"
TOKEN_HEADER: Final = "X-MISA-AccessToken"  # noqa: S105 - a header name

#: Account objects are ``data_type`` 1 for get_dictionary and ``dictionary_type`` 1 for
#: save_dictionary; the other types differ between the two calls (MISA_API.md §6, §7).
ACCOUNT_OBJECT_DATA_TYPE: Final = 1
ACCOUNT_OBJECT_DICTIONARY_TYPE: Final = 1

#: The page size clients are told not to exceed (MISA_API.md §6).
MAX_TAKE: Final = 100

TOKEN_ERROR_CODES: Final = frozenset({"ExpiredToken", "InvalidToken", "InvalidAccessToken"})

#: MISA answers in Vietnamese time; naive timestamps and .NET ticks are UTC+07:00.
MISA_TZ: Final = timezone(timedelta(hours=7))
_TICKS_EPOCH: Final = datetime(1, 1, 1)
#: Used only when connect's answer carries no readable expiry (MISA documents 12 h).
_FALLBACK_TOKEN_LIFETIME: Final = timedelta(hours=11)

#: Namespace of ``account_object_id_for``. Never change it: every id already sent to MISA
#: was derived from it, and a new id would make MISA see a new object.
ACCOUNT_OBJECT_NAMESPACE: Final = uuid.UUID("3328b306-3068-5fbf-9ce7-ac7b527d948c")


class MisaError(Exception):
    """A failed MISA call. ``code`` is MISA's ``ErrorCode`` or one of ours (e.g. Timeout)."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


class MisaTransientError(MisaError):
    """May succeed if tried again later; ``retry_after`` (seconds) when MISA said so."""

    def __init__(
        self,
        code: str,
        message: str = "",
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(code, message)
        self.status_code = status_code
        self.retry_after = retry_after


class MisaTokenError(MisaTransientError):
    """MISA refused the token even after a fresh connect."""


class MisaBusinessError(MisaError):
    """MISA refused the request (``Success: false``): repeating it will not help."""

    def __init__(self, code: str, message: str = "", *, status_code: int | None = None) -> None:
        super().__init__(code, message)
        self.status_code = status_code


class _TokenRejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    expires_at: datetime
    #: ``time.monotonic()`` after which the token is renewed before use.
    renew_at: float


class MisaClient:
    """One MISA tenant (app_id + access_code + org_company_code) over HTTP.

    Safe to share between tasks: one connect at a time, the token is shared.
    """

    def __init__(
        self,
        base_url: str,
        app_id: str,
        access_code: str,
        org_company_code: str,
        *,
        http: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
        sync_prefix: str = DEFAULT_SYNC_PREFIX,
        token_renew_margin_s: float = 300.0,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._app_id = app_id
        self._access_code = access_code
        self._org_company_code = org_company_code
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient()
        self._timeout_s = timeout_s
        self._sync_prefix = "/" + sync_prefix.strip("/")
        self._renew_margin_s = token_renew_margin_s
        self._token: _Token | None = None
        self._connect_lock = asyncio.Lock()

    def __repr__(self) -> str:
        # Never show the access code or the token.
        return f"MisaClient(base_url={self._base_url!r}, app_id={self._app_id!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            await self._http.aclose()

    @property
    def token_expires_at(self) -> datetime | None:
        """When the cached token expires (None before the first connect)."""
        return self._token.expires_at if self._token is not None else None

    # -- token -------------------------------------------------------------------------

    async def connect(self) -> datetime:
        """Get a fresh token and cache it; answers its expiry.

        Raises MisaBusinessError when MISA refuses the credentials (e.g. InvalidAppID).
        """
        async with self._connect_lock:
            return await self._connect_locked()

    async def _connect_locked(self) -> datetime:
        body = {
            "app_id": self._app_id,
            "access_code": self._access_code,
            "org_company_code": self._org_company_code,
        }
        envelope = await self._post(CONNECT_PATH, body, token=None)
        data = _decode(envelope.get("Data"), "connect Data")
        access_token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(access_token, str) or not access_token:
            raise MisaTransientError("InvalidResponse", "connect answered without an access_token")
        expires_at = _token_expiry(data) if isinstance(data, dict) else None
        if expires_at is None:
            expires_at = datetime.now(UTC) + _FALLBACK_TOKEN_LIFETIME
        # Count down on the monotonic clock so a wall-clock jump cannot keep a dead token.
        lifetime_s = (expires_at - datetime.now(UTC)).total_seconds()
        renew_at = time.monotonic() + lifetime_s - self._renew_margin_s
        self._token = _Token(access_token, expires_at, renew_at)
        log.info("misa.connected", expires_at=expires_at.isoformat())
        return expires_at

    async def _usable_token(self) -> str:
        token = self._token
        if token is not None and time.monotonic() < token.renew_at:
            return token.value
        async with self._connect_lock:
            # Another task may have connected while this one waited for the lock.
            token = self._token
            if token is None or time.monotonic() >= token.renew_at:
                await self._connect_locked()
            assert self._token is not None
            return self._token.value

    async def _replace_rejected_token(self, rejected: str) -> str:
        async with self._connect_lock:
            if self._token is None or self._token.value == rejected:
                await self._connect_locked()
            assert self._token is not None
            return self._token.value

    # -- calls -------------------------------------------------------------------------

    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A token-carrying call; on a token error, reconnect and retry exactly once."""
        token = await self._usable_token()
        try:
            return await self._post(path, body, token=token)
        except _TokenRejected as exc:
            log.info("misa.token_rejected", path=path, error_code=exc.code)
        token = await self._replace_rejected_token(token)
        try:
            return await self._post(path, body, token=token)
        except _TokenRejected as exc:
            raise MisaTokenError(exc.code, exc.message) from None

    async def _post(self, path: str, body: dict[str, Any], *, token: str | None) -> dict[str, Any]:
        """POST one request and answer its envelope; raise the classified error otherwise."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token is not None:
            headers[TOKEN_HEADER] = token
        content = json.dumps(body, ensure_ascii=False).encode()
        started = time.monotonic()
        try:
            response = await self._http.post(
                self._base_url + path, content=content, headers=headers, timeout=self._timeout_s
            )
        except httpx.TimeoutException as exc:
            log.warning("misa.call_failed", path=path, error="timeout")
            raise MisaTransientError("Timeout", f"no answer within {self._timeout_s}s") from exc
        except httpx.TransportError as exc:
            log.warning("misa.call_failed", path=path, error=type(exc).__name__)
            raise MisaTransientError("ConnectionError", type(exc).__name__) from exc

        status = response.status_code
        elapsed_ms = round((time.monotonic() - started) * 1000)
        envelope = _envelope(response) if 200 <= status < 300 else None
        if envelope is None:
            error_code: str | None = f"HTTP{status}"
        elif envelope["Success"]:
            error_code = None
        else:
            error_code = str(envelope.get("ErrorCode") or "Unknown")
        log.info(
            "misa.call", path=path, status=status, error_code=error_code, elapsed_ms=elapsed_ms
        )

        _raise_for_status(response, token_sent=token is not None)
        if envelope is None:
            raise MisaTransientError(
                "InvalidResponse", f"HTTP {status} without MISA's envelope", status_code=status
            )
        if error_code is None:
            return envelope
        message = str(envelope.get("ErrorMessage") or "")
        if error_code in TOKEN_ERROR_CODES and token is not None:
            raise _TokenRejected(error_code, message)
        raise MisaBusinessError(error_code, message, status_code=status)

    def _sync_path(self, name: str) -> str:
        return f"{self._sync_prefix}/{name}"

    # -- MISA operations ---------------------------------------------------------------

    async def get_dictionary(
        self,
        skip: int = 0,
        take: int = 100,
        last_sync_time: str | None = None,
        *,
        data_type: int = ACCOUNT_OBJECT_DATA_TYPE,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of master data and MISA's ``LastSyncTime`` (pass it back next time).

        For data_type 1 the page mixes customers, vendors and employees.
        """
        body = {
            "data_type": data_type,
            "branch_id": None,
            "skip": skip,
            "take": take,
            "app_id": self._app_id,
            "org_company_code": self._org_company_code,
            "last_sync_time": last_sync_time,
        }
        envelope = await self._call(self._sync_path("get_dictionary"), body)
        data = _decode(envelope.get("Data"), "get_dictionary Data")
        if data is None:
            items: list[dict[str, Any]] = []
        elif isinstance(data, list):
            items = [item for item in data if isinstance(item, dict)]
        else:
            raise MisaTransientError("InvalidResponse", "get_dictionary Data is not a list")
        custom = _decode(envelope.get("CustomData"), "get_dictionary CustomData", strict=False)
        sync_time = custom.get("LastSyncTime") if isinstance(custom, dict) else None
        return items, sync_time if isinstance(sync_time, str) and sync_time else None

    async def find_customer_by_code(
        self, code: str, *, page_size: int = 100, max_pages: int = 10_000
    ) -> dict[str, Any] | None:
        """The customer account object with this code, paging through everything.

        MISA has no lookup by code (MISA_API.md §6). Codes compare ignoring case and
        surrounding spaces; vendors and employees are skipped.
        """
        wanted = _code_key(code)
        # Several clients say MISA caps take at 100; asking more could end the loop early
        # on a capped page mistaken for the last one.
        take = max(1, min(page_size, MAX_TAKE))
        skip = 0
        for _ in range(max_pages):
            items, _sync_time = await self.get_dictionary(skip, take)
            for item in items:
                if not item.get("is_customer"):
                    continue
                if item.get("dictionary_type", ACCOUNT_OBJECT_DICTIONARY_TYPE) != 1:
                    continue
                if _code_key(str(item.get("account_object_code") or "")) == wanted:
                    return item
            if len(items) < take:
                return None
            skip += len(items)
        raise MisaTransientError("InvalidResponse", f"more than {max_pages} pages of objects")

    async def save_account_objects(self, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create or update account objects with save_dictionary (upsert by id).

        Answers MISA's ``Data`` decoded (the objects as stored). MISA does not document
        that ``Data``; when it is absent the objects sent are answered instead, and the
        caller should confirm with ``get_dictionary`` / ``find_customer_by_code``.
        """
        if not objects:
            return []
        dictionary = [{**obj, "dictionary_type": ACCOUNT_OBJECT_DICTIONARY_TYPE} for obj in objects]
        body = {
            "app_id": self._app_id,
            "org_company_code": self._org_company_code,
            "dictionary": dictionary,
        }
        envelope = await self._call(self._sync_path("save_dictionary"), body)
        data = _decode(envelope.get("Data"), "save_dictionary Data", strict=False)
        if isinstance(data, list):
            return [item for item in data if isinstance(item, dict)]
        return dictionary


# -- response handling -------------------------------------------------------------------


def _raise_for_status(response: httpx.Response, *, token_sent: bool) -> None:
    """Raise the classified error for a non-2xx answer; return for a 2xx one."""
    status = response.status_code
    if status == 429:
        raise MisaTransientError(
            "RateLimited",
            "HTTP 429",
            status_code=status,
            retry_after=_retry_after(response.headers.get("Retry-After")),
        )
    if status >= 500:
        raise MisaTransientError(f"HTTP{status}", f"HTTP {status}", status_code=status)
    if status in (401, 403) and token_sent:
        # Some clients see these on a rejected token; treat them like InvalidToken.
        raise _TokenRejected("InvalidToken", f"HTTP {status}")
    if not 200 <= status < 300:
        raise MisaBusinessError(f"HTTP{status}", f"HTTP {status}", status_code=status)


def _envelope(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("Success"), bool):
        return None
    return body


def _decode(value: Any, what: str, *, strict: bool = True) -> Any:
    """Decode MISA's JSON-in-a-string ``Data``/``CustomData``; tolerate already-decoded."""
    if not isinstance(value, str):
        return value
    if not value.strip():
        return None
    try:
        return json.loads(value)
    except ValueError:
        if strict:
            raise MisaTransientError("InvalidResponse", f"{what} is not valid JSON") from None
        return None


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _token_expiry(data: Mapping[str, Any]) -> datetime | None:
    """``expired_time`` (ISO, with offset), else ``expired_time_ticks`` (+07:00 .NET ticks)."""
    raw = data.get("expired_time")
    if isinstance(raw, str) and raw:
        try:
            parsed = datetime.fromisoformat(raw.strip())
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=MISA_TZ)
    ticks = data.get("expired_time_ticks")
    if isinstance(ticks, int) and not isinstance(ticks, bool) and ticks > 0:
        try:
            wall = _TICKS_EPOCH + timedelta(microseconds=ticks // 10)
        except OverflowError:
            return None
        return wall.replace(tzinfo=MISA_TZ)
    return None


def _code_key(code: str) -> str:
    return code.strip().casefold()


# -- mapping -----------------------------------------------------------------------------


def account_object_id_for(customer_id: str) -> str:
    """The MISA ``account_object_id`` of an IMS customer: stable, so saves are idempotent."""
    return str(uuid.uuid5(ACCOUNT_OBJECT_NAMESPACE, str(customer_id)))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _default_entry(entries: Any) -> Mapping[str, Any] | None:
    """The ``is_default`` entry of a list (else the first), for delivery/invoice lists."""
    if not isinstance(entries, list):
        return None
    candidates = [e for e in entries if isinstance(e, Mapping)]
    for entry in candidates:
        if entry.get("is_default"):
            return entry
    return candidates[0] if candidates else None


def customer_to_account_object(
    customer: Mapping[str, Any], *, account_object_id: str, branch_id: str | None = None
) -> dict[str, Any]:
    """Map an IMS customer (CONTRACT.md §4) to a MISA account object for a customer.

    The code is the customer's ``misa_code`` when it already has one, else its
    ``customer_code``. A customer with a company is an organisation (type 0) named after
    the company, with the person as contact; otherwise an individual (type 1).
    Optional extras used when present: ``province_name``, ``district_name``,
    ``ward_name`` (MISA wants names, IMS stores codes).
    Raises ValueError when the customer has no code or no name.
    """
    code = _text(customer.get("misa_code")) or _text(customer.get("customer_code"))
    if code is None:
        raise ValueError("customer has neither misa_code nor customer_code")
    company = _text(customer.get("company_name"))
    person = _text(customer.get("full_name"))
    name = company or person
    if name is None:
        raise ValueError("customer has no full_name or company_name")

    credit_days = customer.get("credit_days")
    obj: dict[str, Any] = {
        "dictionary_type": ACCOUNT_OBJECT_DICTIONARY_TYPE,
        "account_object_id": account_object_id,
        "account_object_code": code,
        "account_object_name": name,
        "account_object_type": 0 if company else 1,
        "is_customer": True,
        "is_vendor": False,
        "is_employee": False,
        "inactive": customer.get("status") == "inactive",
        "company_tax_code": _text(customer.get("tax_code")),
        "address": _text(customer.get("address")),
        "country": "Việt Nam",
        "tel": _text(customer.get("phone")),
        "email_address": _text(customer.get("email")),
        "contact_name": _text(customer.get("contact_name")) or (person if company else None),
        "due_time": credit_days if isinstance(credit_days, int) and credit_days >= 0 else None,
        "description": _text(customer.get("note")),
        # Standard receivable/payable accounts of VN accounting (Circular 200).
        "receive_account": "131",
        "pay_account": "331",
        # 1 = add; the Odoo connector also sends 1 for updates (MISA_API.md §7).
        "state": 1,
    }
    for source, target in (
        ("province_name", "province_or_city"),
        ("district_name", "district"),
        ("ward_name", "ward_or_commune"),
    ):
        value = _text(customer.get(source))
        if value is not None:
            obj[target] = value

    delivery = _default_entry(customer.get("delivery_addresses"))
    shipping = _text(delivery.get("address")) if delivery is not None else None
    if shipping is not None:
        obj["shipping_address"] = shipping

    invoice = _default_entry(customer.get("invoice_profiles"))
    if invoice is not None:
        buyer = _text(invoice.get("buyer_name"))
        invoice_email = _text(invoice.get("email"))
        if buyer is not None:
            obj["einvoice_contact_name"] = buyer
        if invoice_email is not None:
            obj["einvoice_contact_email"] = invoice_email

    if branch_id is not None:
        obj["branch_id"] = branch_id
    return obj
