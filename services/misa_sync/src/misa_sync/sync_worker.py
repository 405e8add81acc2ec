"""Brings MISA up to date, one due link at a time, with back-off between attempts.

The link row is claimed with FOR UPDATE SKIP LOCKED, so replicas share the work; the MISA
call happens while it is held, and the outcome (plus `CustomerLinked` or `SyncFailed`)
commits with it. A crash mid-call leaves the link pending: the retry sends the same
deterministic `account_object_id`, which MISA upserts, so MISA never gets a second object.
"""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from misa_sync.misa_client import (
    MisaBusinessError,
    MisaClient,
    MisaError,
    MisaTransientError,
    customer_to_account_object,
)
from misa_sync.models import MisaLink, messaging
from misa_sync.settings import MisaSyncSettings
from shared.events.contracts import MisaCustomerLinkedV1, MisaSyncFailedV1
from shared.logging import get_logger
from shared.messaging.outbox import record_event

log = get_logger(__name__)


def now() -> datetime:
    return datetime.now(UTC)


class LinkConflictError(Exception):
    """The MISA object is already linked to another IMS customer."""


class SyncWorker:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        client: MisaClient,
        settings: MisaSyncSettings,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._client = client
        self._settings = settings

    async def run(self) -> None:
        while True:
            try:
                while await self.sync_one():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("misa_sync_worker_error", error=str(exc), error_type=type(exc).__name__)
            await asyncio.sleep(self._settings.sync_poll_interval_s)

    async def sync_one(self) -> bool:
        """Sync the most overdue pending link; False when none is due."""
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
            link.attempts += 1
            link.updated_at = now()
            error = f"Unexpected: {type(exc).__name__}"
            if link.attempts >= self._settings.sync_max_attempts:
                await self._fail(session, link, error, code="Unexpected")
            else:
                link.last_error = error
                link.next_attempt_at = now() + timedelta(seconds=self._backoff(link.attempts))

    async def _attempt(self, session: AsyncSession, link: MisaLink) -> None:
        link.attempts += 1
        link.updated_at = now()
        try:
            misa_code, created = await self._push(session, link)
        except MisaTransientError as exc:
            if link.attempts >= self._settings.sync_max_attempts:
                await self._fail(session, link, f"{exc.code}: {exc}", code=exc.code)
                return
            delay = min(2.0**link.attempts, self._settings.sync_max_backoff_s)
            if exc.retry_after:
                delay = max(delay, exc.retry_after)
            link.next_attempt_at = now() + timedelta(seconds=delay)
            link.last_error = f"{exc.code}: {exc}"
            log.warning(
                "misa_sync_retry",
                customer_id=str(link.customer_id),
                attempts=link.attempts,
                code=exc.code,
            )
            return
        except (MisaBusinessError, LinkConflictError, ValueError) as exc:
            code = exc.code if isinstance(exc, MisaError) else type(exc).__name__
            await self._fail(session, link, f"{code}: {exc}", code=code)
            return
        link.state = "synced"
        link.misa_code = misa_code
        link.last_error = None
        link.synced_at = now()
        await record_event(
            session,
            messaging.outbox,
            MisaCustomerLinkedV1(
                customer_id=link.customer_id,
                customer_code=link.customer_code or "",
                misa_code=misa_code,
                misa_account_object_id=link.account_object_id,
                created_in_misa=created,
                linked_at=link.synced_at,
            ),
        )
        log.info("misa_synced", customer_id=str(link.customer_id), created_in_misa=created)

    def _backoff(self, attempts: int) -> float:
        return float(min(2.0**attempts, self._settings.sync_max_backoff_s))

    async def _push(self, session: AsyncSession, link: MisaLink) -> tuple[str, bool]:
        """Save the customer in MISA; returns (its MISA code, whether MISA had no object before)."""
        account_object_id = link.account_object_id
        created = True
        existing_code = link.customer.get("misa_code")
        if existing_code:
            # The customer is already in MISA under that code: update that object.
            found = await self._client.find_customer_by_code(existing_code)
            if found is not None and found.get("account_object_id"):
                account_object_id = str(found["account_object_id"])
                created = False
                owner = await session.scalar(
                    select(MisaLink.customer_id).where(
                        MisaLink.account_object_id == account_object_id,
                        MisaLink.customer_id != link.customer_id,
                    )
                )
                if owner is not None:
                    raise LinkConflictError(
                        f"MISA code {existing_code} is already linked to another IMS customer"
                    )
        obj = customer_to_account_object(link.customer, account_object_id=account_object_id)
        await self._client.save_account_objects([obj])
        if account_object_id != link.account_object_id:
            link.account_object_id = account_object_id
        return str(obj["account_object_code"]), created

    async def _fail(self, session: AsyncSession, link: MisaLink, error: str, *, code: str) -> None:
        link.state = "failed"
        link.last_error = error  # the full text, for accountants through the API
        # The public event carries only the code: MISA's messages may quote customer data.
        await record_event(
            session,
            messaging.outbox,
            MisaSyncFailedV1(
                customer_id=link.customer_id, attempts=link.attempts, error=code, failed_at=now()
            ),
        )
        log.error("misa_sync_failed", customer_id=str(link.customer_id), attempts=link.attempts)
