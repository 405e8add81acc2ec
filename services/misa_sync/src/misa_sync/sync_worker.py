"""Brings MISA up to date, one due link at a time, with back-off between attempts.

The link row is claimed with FOR UPDATE SKIP LOCKED, so replicas share the work; the MISA
call happens while it is held, and the outcome (plus `CustomerLinked` or `SyncFailed`,
plus the attempt's log row) commits with it. A crash mid-call leaves the link pending:
the retry sends the same `account_object_id`, which MISA upserts, so MISA never gets a
second object. Handlers wait on the same row lock, so pushes of one customer are ordered.

Failures come in three kinds:

- permanent (MISA's refusal of this object, e.g. InvalidParam or a duplicate code, a
  MISA object linked to another customer, a customer that cannot be mapped): `failed`
  at once;
- transient for this request (5xx, timeout, garbled answer): counted; `failed` after
  `sync_max_attempts`;
- MISA unreachable, throttling or refusing the whole tenant (connection refused, 429,
  circuit open, a refused connect, a token refused right after connecting, the codes of
  ``misa_tenant_error_codes``): not the link's fault, so not counted — the link waits
  for MISA's `retry_after` (or the back-off, both capped at `sync_max_backoff_s`) and the
  worker pauses, so an outage of hours (or wrong credentials) delays syncs without
  failing any.

Linking to an object MISA already has (by code or tax code) claims that object first: a
transaction-scoped advisory lock on its id, then a second look at the links, so two
workers never write two customers into one MISA object. Before creating an object the
mirror is read again (incrementally); if MISA still upserts our save into an object it
had under the same code, the link adopts the id MISA answers.
"""

import asyncio
import math
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from misa_sync import mirror
from misa_sync.mapping import MappingOptions, code_to_send, customer_to_account_object
from misa_sync.mirror import Mirror, code_key
from misa_sync.misa_client import (
    MisaBusinessError,
    MisaCircuitOpenError,
    MisaClient,
    MisaConnectError,
    MisaError,
    MisaTokenError,
    MisaTransientError,
)
from misa_sync.models import MisaAttempt, MisaLink, messaging
from misa_sync.settings import MisaSyncSettings
from shared.events.contracts import MisaCustomerLinkedV1, MisaSyncFailedV1
from shared.logging import get_logger
from shared.messaging.outbox import record_event
from shared.tracing import continuing

log = get_logger(__name__)

#: Transient codes that say "MISA is not reachable" rather than "this request failed".
_UNREACHABLE_CODES = frozenset({"ConnectionError", "RateLimited", "CircuitOpen"})

#: No wait is longer than this, whatever a setting or MISA's Retry-After says (and a
#: timedelta of it cannot overflow).
_MAX_DELAY_S: Final = 7 * 86400.0


def _bounded(delay_s: float, cap_s: float = _MAX_DELAY_S) -> float:
    if not math.isfinite(delay_s):
        delay_s = cap_s if delay_s > 0 else 0.0
    return min(max(delay_s, 0.0), cap_s, _MAX_DELAY_S)


def now() -> datetime:
    return datetime.now(UTC)


def mapping_options(settings: MisaSyncSettings) -> MappingOptions:
    return MappingOptions(
        company_types=frozenset(settings.misa_company_customer_types),
        send_group_codes=settings.misa_send_group_codes,
        branch_id=settings.misa_branch_id,
    )


def is_unreachable(exc: MisaTransientError) -> bool:
    return isinstance(exc, MisaCircuitOpenError) or exc.code in _UNREACHABLE_CODES


class LinkConflictError(Exception):
    """The MISA object is already linked to another IMS customer."""


class AmbiguousMatchError(Exception):
    """Several MISA customers match (same code or tax code): a person must choose."""


class DuplicateCodeError(Exception):
    """MISA refused to create the object: another object (often a vendor or an employee,
    which the lookup ignores, or one created meanwhile) already has the code."""


class Pause:
    """Until when (monotonic) a worker claims nothing because MISA is away.

    Shared with the API in the service process, so a manual retry resumes the worker.
    """

    def __init__(self) -> None:
        self.until = 0.0

    @property
    def active(self) -> bool:
        return time.monotonic() < self.until

    def pause_for(self, seconds: float) -> None:
        self.until = time.monotonic() + seconds

    def clear(self) -> None:
        self.until = 0.0


@dataclass(frozen=True, slots=True)
class Target:
    """Which MISA object a link writes to, and under which code."""

    account_object_id: str
    misa_code: str | None
    created: bool


class SyncWorker:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        client: MisaClient,
        settings: MisaSyncSettings,
        mirror: Mirror | None = None,
        pause: Pause | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._client = client
        self._settings = settings
        self._options = mapping_options(settings)
        self.mirror = mirror or Mirror(sessionmaker, client)
        self._tenant_codes = frozenset(settings.misa_tenant_error_codes)
        #: MISA unreachable: the worker claims nothing until the pause ends.
        self.pause = pause or Pause()
        self._unreachable_streak = 0

    async def run(self) -> None:
        while True:
            try:
                await self._refresh_mirror_when_due()
                while await self.sync_one():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("misa_sync_worker_error", error_type=type(exc).__name__)
            await asyncio.sleep(self._settings.sync_poll_interval_s)

    async def _refresh_mirror_when_due(self) -> None:
        if self.paused:
            return
        try:
            await self.mirror.refresh(
                full=True, if_older_than_s=self._settings.misa_mirror_full_refresh_interval_s
            )
            await self.mirror.refresh(if_older_than_s=self._settings.misa_mirror_refresh_interval_s)
        except MisaError as exc:
            log.warning("misa_mirror_refresh_failed", code=exc.code)

    @property
    def paused(self) -> bool:
        return self.pause.active

    def resume(self) -> None:
        """Forget a pause (tests, or an operator who knows MISA is back)."""
        self.pause.clear()

    def waits_for_misa(self, exc: MisaError) -> bool:
        """Whether the error is MISA's or the tenant's state rather than this link's."""
        if isinstance(exc, MisaTransientError):
            return is_unreachable(exc) or isinstance(exc, MisaTokenError)
        return isinstance(exc, MisaConnectError) or exc.code in self._tenant_codes

    async def sync_one(self) -> bool:
        """Sync the most overdue pending link; False when none is due or MISA is away."""
        if self.paused:
            return False
        claimed: uuid.UUID | None = None
        try:
            async with self._sessionmaker() as session, session.begin():
                link = (
                    await session.scalars(
                        select(MisaLink)
                        .where(MisaLink.state == "pending", MisaLink.next_attempt_at <= now())
                        .order_by(MisaLink.next_attempt_at)
                        .limit(1)
                        .with_for_update(skip_locked=True)
                    )
                ).one_or_none()
                if link is None:
                    return False
                claimed = link.customer_id
                with continuing("misa_sync push", link.traceparent):
                    await self._attempt(session, link)
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if claimed is None:
                raise
            # Whatever broke, this link must not stay first in line and block the others.
            await self._back_off_after_crash(claimed, exc)
            return True

    async def _back_off_after_crash(self, customer_id: uuid.UUID, exc: Exception) -> None:
        log.error(
            "misa_sync_unexpected_error",
            customer_id=str(customer_id),
            error_type=type(exc).__name__,
        )
        async with self._sessionmaker() as session, session.begin():
            link = await session.get(MisaLink, customer_id, with_for_update=True)
            if link is None or link.state != "pending":
                return
            at = now()
            link.attempts += 1
            link.updated_at = at
            link.last_attempt_at = at
            code = "Unexpected"
            self._log_attempt(session, link, at, time.monotonic(), "error", code)
            error = f"{code}: {type(exc).__name__}"
            if link.attempts >= self._settings.sync_max_attempts:
                await self._fail(session, link, error, code=code)
            else:
                link.last_error = error
                link.last_error_code = code
                link.next_attempt_at = at + timedelta(seconds=self._backoff(link.attempts))

    def _log_attempt(
        self,
        session: AsyncSession,
        link: MisaLink,
        started_at: datetime,
        started: float,
        outcome: str,
        error_code: str | None,
    ) -> None:
        session.add(
            MisaAttempt(
                customer_id=link.customer_id,
                customer_version=link.customer_version,
                started_at=started_at,
                finished_at=now(),
                duration_ms=round((time.monotonic() - started) * 1000),
                outcome=outcome,
                error_code=error_code,
            )
        )

    async def _attempt(self, session: AsyncSession, link: MisaLink) -> None:
        started_at, started = now(), time.monotonic()
        link.updated_at = started_at
        link.last_attempt_at = started_at
        try:
            target = await self._push(session, link)
        except MisaError as exc:
            if self.waits_for_misa(exc):
                self._defer(session, link, exc, started_at, started)
                return
            if isinstance(exc, MisaTransientError):
                await self._count_transient(session, link, exc, started_at, started)
            else:
                await self._fail_permanently(session, link, exc, started_at, started)
            return
        except (LinkConflictError, AmbiguousMatchError, DuplicateCodeError, ValueError) as exc:
            await self._fail_permanently(session, link, exc, started_at, started)
            return
        self._unreachable_streak = 0
        link.attempts += 1
        self._log_attempt(session, link, started_at, started, "synced", None)
        first_link = link.misa_code is None
        link.state = "synced"
        link.account_object_id = target.account_object_id
        link.misa_code = target.misa_code
        link.last_error = None
        link.last_error_code = None
        link.synced_at = now()
        if first_link:
            # The customer learns its MISA code once; later pushes are plain updates.
            await record_event(
                session,
                messaging.outbox,
                MisaCustomerLinkedV1(
                    customer_id=link.customer_id,
                    customer_code=link.customer_code or "",
                    misa_code=target.misa_code or "",
                    misa_account_object_id=target.account_object_id,
                    created_in_misa=target.created,
                    linked_at=link.synced_at,
                ),
            )
        log.info("misa_synced", customer_id=str(link.customer_id), created_in_misa=target.created)

    async def _count_transient(
        self,
        session: AsyncSession,
        link: MisaLink,
        exc: MisaTransientError,
        started_at: datetime,
        started: float,
    ) -> None:
        """This request failed and may work next time: one attempt spent."""
        self._unreachable_streak = 0
        link.attempts += 1
        if link.attempts >= self._settings.sync_max_attempts:
            self._log_attempt(session, link, started_at, started, "failed", exc.code)
            await self._fail(session, link, f"{exc.code}: {exc}", code=exc.code)
            return
        self._log_attempt(session, link, started_at, started, "retry", exc.code)
        delay = max(self._backoff(link.attempts), self._capped(exc.retry_after))
        link.next_attempt_at = now() + timedelta(seconds=delay)
        link.last_error = f"{exc.code}: {exc}"
        link.last_error_code = exc.code
        log.warning(
            "misa_sync_retry",
            customer_id=str(link.customer_id),
            attempts=link.attempts,
            code=exc.code,
        )

    async def _fail_permanently(
        self,
        session: AsyncSession,
        link: MisaLink,
        exc: Exception,
        started_at: datetime,
        started: float,
    ) -> None:
        """Repeating the same push cannot help: failed now, for a person to look at."""
        self._unreachable_streak = 0
        link.attempts += 1
        code = exc.code if isinstance(exc, MisaError) else type(exc).__name__
        self._log_attempt(session, link, started_at, started, "failed", code)
        await self._fail(session, link, f"{code}: {exc}", code=code)

    def _capped(self, delay_s: float | None) -> float:
        """MISA's Retry-After (or 0), never longer than ``sync_max_backoff_s``."""
        return _bounded(delay_s or 0.0, self._settings.sync_max_backoff_s)

    def _defer(
        self,
        session: AsyncSession,
        link: MisaLink,
        exc: MisaError,
        started_at: datetime,
        started: float,
    ) -> None:
        """MISA (or the tenant) is away: wait for it without spending the link's attempts."""
        self._unreachable_streak += 1
        retry_after = exc.retry_after if isinstance(exc, MisaTransientError) else None
        if retry_after is None:
            delay = self._backoff(self._unreachable_streak)
        else:
            delay = self._capped(retry_after)
        self.pause.pause_for(delay)
        self._log_attempt(session, link, started_at, started, "deferred", exc.code)
        link.next_attempt_at = now() + timedelta(seconds=delay)
        link.last_error = f"{exc.code}: {exc}"
        link.last_error_code = exc.code
        # Codes only: MISA's messages may quote customer data.
        log.warning("misa_sync_deferred", code=exc.code, delay_s=round(delay, 1))

    def _backoff(self, attempts: int) -> float:
        """Exponential with jitter (±20 %) so replicas do not retry in step; capped."""
        base = _bounded(2.0 ** min(attempts, 64), self._settings.sync_max_backoff_s)
        return float(base * random.uniform(0.8, 1.0))

    async def _target(self, session: AsyncSession, link: MisaLink) -> Target:
        """The MISA object to write: the linked one, else an existing match, else ours."""
        if link.pushed_version is not None:
            return Target(link.account_object_id, link.misa_code, created=False)
        refreshed = await self.mirror.ensure_fresh(self._settings.misa_mirror_max_age_s)
        found = await self._existing(session, link)
        if found is None and not refreshed.ran:
            # About to create: an object with our code or tax code may have appeared in
            # MISA since the mirror was read. An incremental read is cheap; a second
            # object for the customer is not.
            await self.mirror.refresh()
            found = await self._existing(session, link)
        return found or Target(link.account_object_id, None, created=True)

    async def _existing(self, session: AsyncSession, link: MisaLink) -> Target | None:
        """The object in the mirror the link should write to, claimed; None: create one."""
        own = link.account_object_id
        if await mirror.by_id(session, own) is not None:
            # An earlier attempt saved it, then crashed before committing: still ours.
            return Target(own, None, created=True)
        code = code_to_send(link.customer, link.misa_code)
        if code:
            matches = await mirror.customers_by_code(session, code)
            if len(matches) > 1:
                raise AmbiguousMatchError(f"{len(matches)} MISA customers have the code")
            if matches:
                match = matches[0]
                await self._claim(session, match.account_object_id)
                await self._check_not_taken(session, link, match.account_object_id)
                return Target(match.account_object_id, match.code, created=False)
        tax_code = link.customer.get("tax_code")
        if isinstance(tax_code, str):
            candidates = [
                m
                for m in await mirror.customers_by_tax_code(session, tax_code)
                if not await self._taken_by_other(session, link, m.account_object_id)
            ]
            if len(candidates) > 1:
                raise AmbiguousMatchError(f"{len(candidates)} MISA customers have the tax code")
            if candidates:
                match = candidates[0]
                await self._claim(session, match.account_object_id)
                if await self._taken_by_other(session, link, match.account_object_id):
                    # Another worker linked it while this one waited for the claim: look
                    # again without it (a customer of its own, or the next candidate).
                    return await self._existing(session, link)
                return Target(match.account_object_id, match.code, created=False)
        return None

    async def _claim(self, session: AsyncSession, object_id: str) -> None:
        """Hold the MISA object until this transaction ends: a second worker about to link
        another customer to it waits here, then sees this link and looks elsewhere."""
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"misa-account-object:{object_id}"},
        )

    async def _taken_by_other(self, session: AsyncSession, link: MisaLink, object_id: str) -> bool:
        owner = await session.scalar(
            select(MisaLink.customer_id).where(
                MisaLink.account_object_id == object_id,
                MisaLink.customer_id != link.customer_id,
            )
        )
        return owner is not None

    async def _check_not_taken(self, session: AsyncSession, link: MisaLink, object_id: str) -> None:
        if await self._taken_by_other(session, link, object_id):
            raise LinkConflictError("the MISA object is already linked to another IMS customer")

    async def _push(self, session: AsyncSession, link: MisaLink) -> Target:
        """Save the customer in MISA; answers the object written and its code."""
        target = await self._target(session, link)
        obj = customer_to_account_object(
            link.customer,
            account_object_id=target.account_object_id,
            misa_code=target.misa_code,
            options=self._options,
        )
        try:
            saved = await self._client.save_account_objects([obj])
        except MisaBusinessError as exc:
            if (
                target.created
                and exc.code == "InvalidParam"
                and not isinstance(exc, MisaConnectError)
            ):
                await self._explain_refused_create(session, obj)
            raise
        stored = _stored(saved, obj)
        object_id = str(stored.get("account_object_id") or target.account_object_id)
        code = str(stored.get("account_object_code") or obj["account_object_code"])
        created = target.created
        if object_id != target.account_object_id:
            # MISA upserted by code into an object it already had (created after the
            # mirror was read): that object is the customer's now, under MISA's id.
            await self._claim(session, object_id)
            await self._check_not_taken(session, link, object_id)
            created = False
            log.warning("misa_sync_adopted_existing_object", customer_id=str(link.customer_id))
        # What MISA says it stored goes into the mirror at once, so a lookup before the
        # next refresh sees it.
        await mirror.upsert_records(session, [{k: v for k, v in stored.items() if k != "state"}])
        link.pushed = obj | {"account_object_id": object_id, "account_object_code": code}
        link.pushed_version = link.customer_version
        return Target(object_id, code, created)

    async def _explain_refused_create(self, session: AsyncSession, obj: dict[str, Any]) -> None:
        """Raise DuplicateCodeError when MISA refused a new object because of its code."""
        code = str(obj["account_object_code"])
        try:
            await self.mirror.refresh()
        except MisaError:
            return  # MISA's own answer is all there is to say
        holders = [
            o
            for o in await mirror.objects_by_code(session, code)
            if o.account_object_id != obj["account_object_id"]
        ]
        if holders:
            raise DuplicateCodeError(
                f"MISA already has an object with the code {code!r} "
                f"(customer: {holders[0].is_customer}); link or rename it in MISA, then retry"
            )

    async def _fail(self, session: AsyncSession, link: MisaLink, error: str, *, code: str) -> None:
        link.state = "failed"
        link.last_error = error  # the full text, for accountants through the API
        link.last_error_code = code
        # The public event carries only the code: MISA's messages may quote customer data.
        await record_event(
            session,
            messaging.outbox,
            MisaSyncFailedV1(
                customer_id=link.customer_id, attempts=link.attempts, error=code, failed_at=now()
            ),
        )
        log.error("misa_sync_failed", customer_id=str(link.customer_id), attempts=link.attempts)


def _stored(saved: list[dict[str, Any]], sent: dict[str, Any]) -> dict[str, Any]:
    """The object MISA answers for the one sent: by id, else its only answer with the same
    code (MISA kept its own id: an upsert by code), else what was sent."""
    for item in saved:
        if item.get("account_object_id") == sent["account_object_id"]:
            return item
    if len(saved) == 1 and saved[0].get("account_object_id"):
        answered_code = saved[0].get("account_object_code")
        if isinstance(answered_code, str) and code_key(answered_code) == code_key(
            str(sent["account_object_code"])
        ):
            return saved[0]
    return sent
