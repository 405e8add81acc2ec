"""Async client for MISA AMIS's ACT Open API (the customer part of it).

Field names, paths and codes follow ``MISA_API.md``. Each public call is protected:

- the token is cached, renewed ``token_renew_margin_s`` before it expires, and renewed
  once more on ``ExpiredToken``/``InvalidToken`` (a second refusal is :class:`MisaTokenError`);
- every request waits for the process-wide rate limit (:class:`TokenBucket`) and passes a
  circuit breaker: after repeated transient failures calls fail fast with
  :class:`MisaCircuitOpenError` until a probe succeeds;
- HTTP 5xx, 429 (honouring ``Retry-After``), timeouts, lost connections and garbled
  answers are retried with full-jitter exponential back-off, up to ``RetryPolicy``'s
  attempts; what remains reaches the caller as :class:`MisaTransientError`;
- :class:`MisaBusinessError` (``Success: false`` with any code but the token codes, or a
  4xx) is never retried: repeating the same request will not help.

Logs carry the operation, outcome, status, MISA's error code, attempt and duration, never a
request or response body or MISA's ``ErrorMessage``, so names, phones, e-mails and tax
codes stay out of them; exceptions carry ``ErrorMessage`` as MISA wrote it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

import httpx
import structlog

from misa_sync.resilience import (
    CircuitBreaker,
    CircuitOpen,
    CircuitSnapshot,
    CircuitState,
    RetryPolicy,
    TokenBucket,
)
from shared import metrics

if TYPE_CHECKING:
    from misa_sync.settings import MisaSyncSettings

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

#: MISA's codes that concern the whole tenant (its credentials, its connection to IMS, its
#: accounting database, MISA itself), not one object (MISA_API.md §4): no single request
#: can fix them, but the tenant can, so callers should wait rather than give up.
TENANT_ERROR_CODES: Final = frozenset(
    {"Exception", "InvalidAppID", "AppIDDisconnect", "DBAmisNotConnectDBACT"}
)

#: MISA answers in Vietnamese time; naive timestamps and .NET ticks are UTC+07:00.
MISA_TZ: Final = timezone(timedelta(hours=7))
_TICKS_EPOCH: Final = datetime(1, 1, 1)
#: Used only when connect's answer carries no readable expiry (MISA documents 12 h).
_FALLBACK_TOKEN_LIFETIME: Final = timedelta(hours=11)

#: MISA publishes no quota; the Odoo connector spaces reads about 1 s apart (§9).
DEFAULT_RATE_LIMIT_PER_S: Final = 2.0
DEFAULT_RATE_LIMIT_BURST: Final = 5
DEFAULT_CIRCUIT_FAILURE_THRESHOLD: Final = 5
DEFAULT_CIRCUIT_COOLDOWN_S: Final = 30.0

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


class MisaCircuitOpenError(MisaTransientError):
    """Refused without calling MISA: it failed repeatedly and is given time to recover.

    ``retry_after`` is the seconds until the circuit lets a probe through (``retry_at``).
    """

    def __init__(self, retry_after: float, retry_at: datetime) -> None:
        super().__init__(
            "CircuitOpen",
            f"MISA considered down; next probe at {retry_at.isoformat(timespec='seconds')}",
            retry_after=retry_after,
        )
        self.retry_at = retry_at


class MisaBusinessError(MisaError):
    """MISA refused the request (``Success: false``): repeating it will not help."""

    def __init__(self, code: str, message: str = "", *, status_code: int | None = None) -> None:
        super().__init__(code, message)
        self.status_code = status_code


class MisaConnectError(MisaBusinessError):
    """MISA refused to connect (e.g. ``InvalidAppID``, a wrong access code): the tenant's
    credentials or setup are wrong, not the request that needed the token."""


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


@dataclass(frozen=True, slots=True)
class DictionaryPage:
    """One get_dictionary page: its objects, where it starts, MISA's ``LastSyncTime``."""

    items: list[dict[str, Any]]
    skip: int
    last_sync_time: str | None


@dataclass(frozen=True, slots=True)
class DictionaryRead:
    """Every object of a full (or incremental) read, each once.

    ``last_sync_time`` is the first page's ``LastSyncTime``: MISA takes it before reading,
    so passing it back next time also catches what changed while the pages were read.
    """

    items: list[dict[str, Any]]
    last_sync_time: str | None


class MisaClient:
    """One MISA tenant (app_id + access_code + org_company_code) over HTTP.

    Safe to share between tasks: one connect at a time, the token is shared. The rate
    limiter and circuit breaker belong to the instance; create one client per process
    (or hand the same ``rate_limiter``/``circuit_breaker`` to a second one).
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
        retry: RetryPolicy | None = None,
        rate_limiter: TokenBucket | None = None,
        circuit_breaker: CircuitBreaker | None = None,
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
        self._retry = retry or RetryPolicy()
        self._limiter = rate_limiter or TokenBucket(
            DEFAULT_RATE_LIMIT_PER_S, DEFAULT_RATE_LIMIT_BURST
        )
        self._breaker = circuit_breaker or CircuitBreaker(
            DEFAULT_CIRCUIT_FAILURE_THRESHOLD, DEFAULT_CIRCUIT_COOLDOWN_S
        )
        self._token: _Token | None = None
        self._connect_lock = asyncio.Lock()

    @classmethod
    def from_settings(
        cls, settings: MisaSyncSettings, *, http: httpx.AsyncClient | None = None
    ) -> MisaClient:
        """The client the service runs with: credentials, timeouts and limits from settings."""
        return cls(
            settings.misa_base_url,
            settings.misa_app_id,
            settings.misa_access_code.get_secret_value(),
            settings.misa_org_company_code,
            http=http,
            timeout_s=settings.misa_timeout_s,
            token_renew_margin_s=settings.misa_token_renew_margin_s,
            retry=RetryPolicy(
                max_attempts=settings.misa_retry_max_attempts,
                base_delay_s=settings.misa_retry_base_delay_s,
                max_delay_s=settings.misa_retry_max_delay_s,
            ),
            rate_limiter=TokenBucket(
                settings.misa_rate_limit_per_s, settings.misa_rate_limit_burst
            ),
            circuit_breaker=CircuitBreaker(
                settings.misa_circuit_failure_threshold, settings.misa_circuit_cooldown_s
            ),
        )

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

    @property
    def circuit(self) -> CircuitSnapshot:
        """The circuit breaker's state, failures and opening time, for metrics and health."""
        return self._breaker.snapshot()

    @property
    def circuit_breaker(self) -> CircuitBreaker:
        return self._breaker

    @property
    def rate_limiter(self) -> TokenBucket:
        return self._limiter

    # -- token -------------------------------------------------------------------------

    async def connect(self) -> datetime:
        """Get a fresh token and cache it; answers its expiry.

        Raises MisaConnectError (a MisaBusinessError) when MISA refuses the credentials
        (e.g. InvalidAppID).
        """

        async def attempt(n: int) -> datetime:
            async with self._connect_lock:
                return await self._connect_locked(n)

        return await self._retrying("connect", attempt)

    async def _connect_locked(self, attempt: int) -> datetime:
        body = {
            "app_id": self._app_id,
            "access_code": self._access_code,
            "org_company_code": self._org_company_code,
        }
        try:
            envelope = await self._post("connect", CONNECT_PATH, body, token=None, attempt=attempt)
        except MisaBusinessError as exc:
            raise MisaConnectError(exc.code, exc.message, status_code=exc.status_code) from None
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

    async def _usable_token(self, attempt: int) -> str:
        token = self._token
        if token is not None and time.monotonic() < token.renew_at:
            return token.value
        async with self._connect_lock:
            # Another task may have connected while this one waited for the lock.
            token = self._token
            if token is None or time.monotonic() >= token.renew_at:
                await self._connect_locked(attempt)
            assert self._token is not None
            return self._token.value

    async def _replace_rejected_token(self, rejected: str, attempt: int) -> str:
        async with self._connect_lock:
            if self._token is None or self._token.value == rejected:
                await self._connect_locked(attempt)
            assert self._token is not None
            return self._token.value

    # -- calls -------------------------------------------------------------------------

    async def _retrying[T](self, operation: str, attempt: Callable[[int], Awaitable[T]]) -> T:
        """Run ``attempt(1)``, ``attempt(2)``, … while it fails transiently and may retry."""
        number = 1
        while True:
            try:
                return await attempt(number)
            except (MisaCircuitOpenError, MisaTokenError):
                # Open circuit: waiting is the caller's job. Token: one renewal was enough.
                raise
            except MisaTransientError as exc:
                delay = self._retry.delay_s(number, exc.retry_after)
                if delay is None:
                    raise
                log.info(
                    "misa.retry",
                    operation=operation,
                    attempt=number,
                    error_code=exc.code,
                    delay_s=round(delay, 3),
                )
                await asyncio.sleep(delay)
                number += 1

    async def _call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """A token-carrying call, retried as the policy says."""
        path = f"{self._sync_prefix}/{operation}"

        async def attempt(n: int) -> dict[str, Any]:
            return await self._call_with_token(operation, path, body, n)

        return await self._retrying(operation, attempt)

    async def _call_with_token(
        self, operation: str, path: str, body: dict[str, Any], attempt: int
    ) -> dict[str, Any]:
        """One attempt; on a token error, reconnect and send it again exactly once."""
        token = await self._usable_token(attempt)
        try:
            return await self._post(operation, path, body, token=token, attempt=attempt)
        except _TokenRejected:
            pass
        token = await self._replace_rejected_token(token, attempt)
        try:
            return await self._post(operation, path, body, token=token, attempt=attempt)
        except _TokenRejected as exc:
            raise MisaTokenError(exc.code, exc.message) from None

    async def _post(
        self, operation: str, path: str, body: dict[str, Any], *, token: str | None, attempt: int
    ) -> dict[str, Any]:
        """One HTTP request through the breaker and the rate limit; answers its envelope."""
        try:
            self._breaker.before_call()
        except CircuitOpen as exc:
            log.warning(
                "misa.call",
                operation=operation,
                outcome="circuit_open",
                attempt=attempt,
                retry_in_s=round(exc.retry_in_s, 3),
            )
            metrics.MISA_CALLS.labels(operation, "circuit_open").inc()
            raise MisaCircuitOpenError(exc.retry_in_s, exc.retry_at) from None

        outcome = "abandoned"
        status: int | None = None
        error_code: str | None = None
        started = time.monotonic()
        waited_s = 0.0
        try:
            waited_s = await self._limiter.acquire()
            started = time.monotonic()
            try:
                envelope = await self._send(path, body, token)
            except _TokenRejected as exc:
                outcome, error_code = "token_rejected", exc.code
                raise
            except MisaTransientError as exc:
                outcome, status, error_code = "transient", exc.status_code, exc.code
                raise
            except MisaBusinessError as exc:
                outcome, status, error_code = "business_error", exc.status_code, exc.code
                raise
            outcome, status = "ok", 200
            return envelope
        finally:
            if outcome == "transient":
                self._breaker.record_failure()
            elif outcome == "abandoned":
                self._breaker.record_abandoned()
            else:
                # MISA answered, even if it said no: it is up.
                self._breaker.record_success()
            elapsed_s = time.monotonic() - started
            metrics.MISA_CALLS.labels(operation, outcome).inc()
            metrics.MISA_CALL_DURATION.labels(operation).observe(elapsed_s)
            metrics.MISA_CIRCUIT_OPEN.set(self._breaker.state is not CircuitState.CLOSED)
            emit = log.warning if outcome in _WARN_OUTCOMES else log.info
            emit(
                "misa.call",
                operation=operation,
                outcome=outcome,
                status=status,
                error_code=error_code,
                attempt=attempt,
                duration_ms=round(elapsed_s * 1000),
                rate_limit_wait_ms=round(waited_s * 1000),
            )

    async def _send(self, path: str, body: dict[str, Any], token: str | None) -> dict[str, Any]:
        """POST and classify: the envelope of a success, else the matching error."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token is not None:
            headers[TOKEN_HEADER] = token
        content = json.dumps(body, ensure_ascii=False).encode()
        try:
            response = await self._http.post(
                self._base_url + path, content=content, headers=headers, timeout=self._timeout_s
            )
        except httpx.TimeoutException as exc:
            raise MisaTransientError("Timeout", f"no answer within {self._timeout_s}s") from exc
        except httpx.TransportError as exc:
            raise MisaTransientError("ConnectionError", type(exc).__name__) from exc

        _raise_for_status(response, token_sent=token is not None)
        status = response.status_code
        envelope = _envelope(response)
        if envelope is None:
            raise MisaTransientError(
                "InvalidResponse", f"HTTP {status} without MISA's envelope", status_code=status
            )
        if envelope["Success"]:
            return envelope
        error_code = str(envelope.get("ErrorCode") or "Unknown")
        message = str(envelope.get("ErrorMessage") or "")
        if error_code in TOKEN_ERROR_CODES and token is not None:
            raise _TokenRejected(error_code, message)
        raise MisaBusinessError(error_code, message, status_code=status)

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
        envelope = await self._call("get_dictionary", body)
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

    async def iter_dictionary(
        self,
        last_sync_time: str | None = None,
        *,
        page_size: int = MAX_TAKE,
        data_type: int = ACCOUNT_OBJECT_DATA_TYPE,
        max_pages: int = 10_000,
    ) -> AsyncIterator[DictionaryPage]:
        """Every page (of what changed since ``last_sync_time``), until a short page.

        Several clients say MISA caps ``take`` at 100; asking for more could end the loop
        early on a capped page mistaken for the last one, so the page size is clamped.
        """
        take = max(1, min(page_size, MAX_TAKE))
        skip = 0
        for _ in range(max_pages):
            items, sync_time = await self.get_dictionary(
                skip, take, last_sync_time, data_type=data_type
            )
            yield DictionaryPage(items, skip, sync_time)
            if len(items) < take:
                return
            skip += len(items)
        raise MisaTransientError("InvalidResponse", f"more than {max_pages} pages of objects")

    async def read_dictionary(
        self,
        last_sync_time: str | None = None,
        *,
        page_size: int = MAX_TAKE,
        data_type: int = ACCOUNT_OBJECT_DATA_TYPE,
    ) -> DictionaryRead:
        """All objects (changed since ``last_sync_time``), each id once, and the time to pass
        back next time (see :class:`DictionaryRead`)."""
        seen: dict[str, dict[str, Any]] = {}
        anonymous: list[dict[str, Any]] = []
        first_sync_time: str | None = None
        first = True
        async for page in self.iter_dictionary(
            last_sync_time, page_size=page_size, data_type=data_type
        ):
            if first:
                first_sync_time, first = page.last_sync_time, False
            for item in page.items:
                object_id = item.get("account_object_id")
                if isinstance(object_id, str) and object_id:
                    # Skip paging over a list that moves can show an object twice.
                    seen[object_id] = item
                else:
                    anonymous.append(item)
        return DictionaryRead([*seen.values(), *anonymous], first_sync_time)

    async def find_customers(
        self,
        *,
        codes: Iterable[str] = (),
        tax_codes: Iterable[str] = (),
        page_size: int = MAX_TAKE,
    ) -> list[dict[str, Any]]:
        """Customer account objects whose code or tax code is one of those given.

        One pass over the whole dictionary (MISA has no lookup, MISA_API.md §6). Codes
        compare ignoring case and surrounding spaces, tax codes ignoring spaces; vendors
        and employees are skipped. Answers them in MISA's order.
        """
        wanted_codes = {_code_key(c) for c in codes if c.strip()}
        wanted_taxes = {_tax_key(t) for t in tax_codes if t.strip()}
        if not wanted_codes and not wanted_taxes:
            return []
        found: list[dict[str, Any]] = []
        async for page in self.iter_dictionary(page_size=page_size):
            for item in page.items:
                if not _is_customer(item):
                    continue
                code = _code_key(str(item.get("account_object_code") or ""))
                tax = _tax_key(str(item.get("company_tax_code") or ""))
                if code in wanted_codes or (tax and tax in wanted_taxes):
                    found.append(item)
        return found

    async def find_customer_by_code(
        self, code: str, *, page_size: int = 100, max_pages: int = 10_000
    ) -> dict[str, Any] | None:
        """The customer account object with this code, paging until it is found.

        MISA has no lookup by code (MISA_API.md §6). Codes compare ignoring case and
        surrounding spaces; vendors and employees are skipped.
        """
        wanted = _code_key(code)
        async for page in self.iter_dictionary(page_size=page_size, max_pages=max_pages):
            for item in page.items:
                if (
                    _is_customer(item)
                    and _code_key(str(item.get("account_object_code") or "")) == wanted
                ):
                    return item
        return None

    async def save_account_objects(self, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create or update account objects with save_dictionary (upsert by id).

        Answers MISA's ``Data`` decoded (the objects as stored). MISA does not document
        that ``Data``; when it is absent the objects sent are answered instead, and the
        caller should confirm with ``get_dictionary`` / ``find_customer_by_code``.
        A retried save after a timeout repeats the same ``account_object_id``s, which
        MISA upserts, so the retry cannot create a second object.
        """
        if not objects:
            return []
        dictionary = [{**obj, "dictionary_type": ACCOUNT_OBJECT_DICTIONARY_TYPE} for obj in objects]
        body = {
            "app_id": self._app_id,
            "org_company_code": self._org_company_code,
            "dictionary": dictionary,
        }
        envelope = await self._call("save_dictionary", body)
        data = _decode(envelope.get("Data"), "save_dictionary Data", strict=False)
        if isinstance(data, list):
            return [item for item in data if isinstance(item, dict)]
        return dictionary


# -- response handling -------------------------------------------------------------------

#: Call outcomes logged as warnings: MISA failed, or the call ended without an answer.
_WARN_OUTCOMES: Final = frozenset({"transient", "abandoned"})


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
    if status >= 500 or status == 408:
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
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if seconds == seconds else None  # NaN is no answer
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


def _is_customer(item: Mapping[str, Any]) -> bool:
    if item.get("dictionary_type", ACCOUNT_OBJECT_DICTIONARY_TYPE) != 1:
        return False
    return bool(item.get("is_customer"))


def _code_key(code: str) -> str:
    return code.strip().casefold()


def _tax_key(tax_code: str) -> str:
    return "".join(tax_code.split()).casefold()


# -- identity (the mapping itself is in misa_sync.mapping) ----------------------------


def account_object_id_for(customer_id: str) -> str:
    """The MISA ``account_object_id`` of an IMS customer: stable, so saves are idempotent."""
    return str(uuid.uuid5(ACCOUNT_OBJECT_NAMESPACE, str(customer_id)))
