"""Attachments of a customer: the rules, and rows and blobs that never disagree.

A refused upload leaves nothing behind: the file is typed and named before anything is
stored, and a blob written for a transaction that then fails is deleted again. A blob is
deleted only after the row's deletion has committed, so a rollback never loses a file;
the store is asked first whether it answers at all, so an unreachable store refuses the
deletion (503) instead of leaving an orphan blob behind a deleted row.

Settings (environment, prefix ``CUSTOMER_``; fields of ``CustomerSettings``):

========================================  ====================  ===============================
variable                                  default               meaning
========================================  ====================  ===============================
``CUSTOMER_BLOB_STORE``                   ``local``             ``local`` or ``s3`` (see
                                                                `blob_store`)
``CUSTOMER_BLOB_DIR``                     ``.ims/blobs/customer``  folder of the local store,
                                                                relative to the working dir
``CUSTOMER_S3_BUCKET``                    (none)                the bucket; required for s3
``CUSTOMER_S3_ENDPOINT_URL``              AWS                   MinIO, Ceph, R2... server URL
``CUSTOMER_S3_REGION``                    botocore's chain      the bucket's region
``CUSTOMER_S3_PREFIX``                    (none)                start of every object key
``CUSTOMER_S3_ACCESS_KEY_ID``,            botocore's chain      both or neither; unset: AWS_*
``CUSTOMER_S3_SECRET_ACCESS_KEY``                               variables, instance role...
``CUSTOMER_S3_ADDRESSING_STYLE``          ``auto``              ``path`` for most MinIO/Ceph
``CUSTOMER_S3_MAX_ATTEMPTS``              ``3``                 tries per S3 call
``CUSTOMER_ATTACHMENT_MAX_BYTES``         ``20971520`` (20 MB)  largest file accepted
``CUSTOMER_ATTACHMENTS_PER_CUSTOMER``     ``30``                most files per customer
``CUSTOMER_UPLOAD_TMP_DIR``               the system's temp     where uploads are spooled
                                                                while they are checked
========================================  ====================  ===============================
"""

import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import anyio
import anyio.to_thread
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from customer.access import may_write, visible_customer
from customer.attachment_models import Attachment
from customer.blob_store import (
    BlobNotFoundError,
    BlobStore,
    make_blob_store,
    storage_key,
)
from customer.file_types import UnsafeFilenameError, safe_filename, sniff
from customer.models import Customer, CustomerHistory
from customer.schemas import Attachment as AttachmentOut
from customer.settings import MIB, CustomerSettings
from shared.auth.principal import Principal
from shared.errors import FieldError, ProblemError, conflict, forbidden, not_found
from shared.logging import get_logger

log = get_logger(__name__)

Kind = Literal["business_license", "contract", "announcement", "note", "image", "other"]
KINDS: tuple[str, ...] = get_args(Kind)
#: Uploads are closed only while CS reviews the customer (active customers take them at once).
UPLOAD_CLOSED_STATUSES = ("pending_approval",)
#: Deleting a file is only allowed while the customer is still being prepared.
DELETABLE_STATUSES = ("draft", "rejected")


@dataclass(frozen=True, slots=True)
class AttachmentConfig:
    settings: CustomerSettings
    store: BlobStore

    @classmethod
    def from_settings(cls, settings: CustomerSettings) -> "AttachmentConfig":
        store = make_blob_store(
            settings.blob_store, local_root=settings.blob_dir, s3=settings.s3_options()
        )
        return cls(settings, store)

    @classmethod
    def from_env(cls) -> "AttachmentConfig":
        """Read the settings and build the store; raises on a bad setting (start-up error)."""
        return cls.from_settings(CustomerSettings())

    async def aclose(self) -> None:
        await self.store.aclose()


@dataclass(frozen=True, slots=True)
class StagedUpload:
    """A received file spooled to local disk: measured and hashed, not yet checked or stored."""

    path: Path
    filename: str
    size: int
    sha256: str
    #: The first bytes, for sniffing the type.
    head: bytes


def human_size(n: int) -> str:
    if n >= MIB:
        return f"{n / MIB:g} MB"
    return f"{n} bytes"


def _say(vietnamese: bool, en: str, vi: str) -> str:
    return vi if vietnamese else en


def attachment_view(row: Attachment) -> dict[str, Any]:
    """The attachment as the contract shows it, JSON-ready."""
    return AttachmentOut.model_validate(row, from_attributes=True).model_dump(mode="json")


async def attachments_of(session: AsyncSession, customer_id: uuid.UUID) -> list[dict[str, Any]]:
    """A customer's attachments, oldest first, JSON-ready (for responses and event snapshots)."""
    return (await attachments_for(session, [customer_id])).get(customer_id, [])


async def attachments_for(
    session: AsyncSession, customer_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Attachments of many customers in one query (for list pages), oldest first."""
    ids = list(customer_ids)
    out: dict[uuid.UUID, list[dict[str, Any]]] = {}
    if not ids:
        return out
    rows = await session.scalars(
        select(Attachment)
        .where(Attachment.customer_id.in_(ids))
        .order_by(Attachment.uploaded_at, Attachment.id)
    )
    for row in rows:
        out.setdefault(row.customer_id, []).append(attachment_view(row))
    return out


def _validation_problem(errors: list[FieldError], *, vietnamese: bool) -> ProblemError:
    title = _say(vietnamese, "Invalid request", "Dữ liệu không hợp lệ")
    return ProblemError(422, title, None, "validation-error", errors)


def empty_file_problem(*, vietnamese: bool) -> ProblemError:
    message = _say(vietnamese, "The file is empty.", "Tệp rỗng.")
    return _validation_problem([FieldError("file", message, "empty_file")], vietnamese=vietnamese)


def too_large_problem(max_bytes: int, *, vietnamese: bool) -> ProblemError:
    limit = human_size(max_bytes)
    return ProblemError(
        413,
        "Content Too Large",
        _say(
            vietnamese,
            f"The file is larger than the limit of {limit}.",
            f"Tệp vượt quá giới hạn {limit}.",
        ),
        "attachment-too-large",
    )


class AttachmentService:
    def __init__(self, session: AsyncSession, config: AttachmentConfig) -> None:
        self.session = session
        self.store = config.store
        self.settings = config.settings

    # ---- checks -------------------------------------------------------------------------

    async def _visible(self, principal: Principal, customer_id: uuid.UUID) -> Customer:
        customer = await visible_customer(self.session, principal, customer_id)
        if customer is None:
            raise not_found("customer")  # invisible and missing answer alike (§2)
        return customer

    async def _writable(
        self, principal: Principal, customer_id: uuid.UUID, *, vietnamese: bool, lock: bool
    ) -> Customer:
        customer = await self._visible(principal, customer_id)
        if not may_write(principal):
            raise forbidden(
                _say(
                    vietnamese,
                    "Only sales, sales managers and admins change attachments.",
                    "Chỉ nhân viên kinh doanh, quản lý kinh doanh và quản trị viên "
                    "được thay đổi tài liệu đính kèm.",
                )
            )
        if lock:
            # Serialises uploads and deletions of one customer, so the count limit holds.
            await self.session.refresh(customer, with_for_update=True)
        return customer

    async def _ensure_upload_open(self, customer: Customer, *, vietnamese: bool) -> None:
        if customer.status in UPLOAD_CLOSED_STATUSES:
            raise conflict(
                _say(
                    vietnamese,
                    "Attachments cannot change while the customer is pending approval.",
                    "Không thể thay đổi tài liệu đính kèm khi khách hàng đang chờ CS duyệt.",
                )
            )
        count = await self.session.scalar(
            select(func.count())
            .select_from(Attachment)
            .where(Attachment.customer_id == customer.id)
        )
        limit = self.settings.attachments_per_customer
        if (count or 0) >= limit:
            raise conflict(
                _say(
                    vietnamese,
                    f"A customer has at most {limit} attachments.",
                    f"Mỗi khách hàng có tối đa {limit} tài liệu đính kèm.",
                )
            )

    async def check_upload(
        self, principal: Principal, customer_id: uuid.UUID, *, vietnamese: bool
    ) -> None:
        """Refuse early, before the body is read: 404, 403, 409 (state or count)."""
        async with self.session.begin():
            customer = await self._writable(
                principal, customer_id, vietnamese=vietnamese, lock=False
            )
            await self._ensure_upload_open(customer, vietnamese=vietnamese)

    # ---- commands -----------------------------------------------------------------------

    async def add(
        self,
        principal: Principal,
        customer_id: uuid.UUID,
        kind: str,
        upload: StagedUpload,
        *,
        vietnamese: bool,
    ) -> Attachment:
        """Check the staged file and store it: blob first, then the row, in one unit."""
        if kind not in KINDS:
            message = _say(
                vietnamese,
                f"Must be one of: {', '.join(KINDS)}.",
                f"Phải là một trong: {', '.join(KINDS)}.",
            )
            raise _validation_problem(
                [FieldError("kind", message, "literal_error")], vietnamese=vietnamese
            )
        if upload.size == 0:
            raise empty_file_problem(vietnamese=vietnamese)
        if upload.size > self.settings.attachment_max_bytes:
            raise too_large_problem(self.settings.attachment_max_bytes, vietnamese=vietnamese)
        file_type = await anyio.to_thread.run_sync(sniff, upload.head, upload.path)
        if file_type is None:
            raise ProblemError(
                415,
                "Unsupported Media Type",
                _say(
                    vietnamese,
                    "The file's content is not an allowed type (PDF, JPEG, PNG, WebP, DOCX, XLSX).",
                    "Nội dung tệp không thuộc loại được phép (PDF, JPEG, PNG, WebP, DOCX, XLSX).",
                ),
                "attachment-type-not-allowed",
            )
        try:
            filename = safe_filename(upload.filename, file_type)
        except UnsafeFilenameError:
            message = _say(
                vietnamese,
                "The filename must not contain a path (`..`).",
                "Tên tệp không được chứa đường dẫn (`..`).",
            )
            raise _validation_problem(
                [FieldError("file", message, "unsafe_filename")], vietnamese=vietnamese
            ) from None

        attachment_id = uuid.uuid4()
        key = storage_key(customer_id, attachment_id)
        stored = False
        try:
            async with self.session.begin():
                customer = await self._writable(
                    principal, customer_id, vietnamese=vietnamese, lock=True
                )
                await self._ensure_upload_open(customer, vietnamese=vietnamese)
                await self.store.put(key, upload.path)
                stored = True
                row = Attachment(
                    id=attachment_id,
                    customer_id=customer_id,
                    kind=kind,
                    filename=filename,
                    content_type=file_type.content_type,
                    size=upload.size,
                    sha256=upload.sha256,
                    storage_key=key,
                    uploaded_by=principal.employee_id,
                    uploaded_at=datetime.now(UTC),
                )
                self.session.add(row)
                self._record(customer, principal, "attachment_added", new=row)
                await self.session.flush()
        except BaseException:
            if stored:
                await self._delete_blob(key)
            raise
        return row

    async def remove(
        self,
        principal: Principal,
        customer_id: uuid.UUID,
        attachment_id: uuid.UUID,
        *,
        vietnamese: bool,
    ) -> None:
        async with self.session.begin():
            customer = await self._writable(
                principal, customer_id, vietnamese=vietnamese, lock=True
            )
            row = await self._find(customer_id, attachment_id)
            if customer.status not in DELETABLE_STATUSES:
                raise conflict(
                    _say(
                        vietnamese,
                        "Attachments can only be deleted while the customer is a draft "
                        "or rejected.",
                        "Chỉ xóa được tài liệu đính kèm khi khách hàng ở trạng thái nháp "
                        "hoặc bị từ chối.",
                    )
                )
            # A store that does not answer now would leave the blob behind a deleted row:
            # refuse (503, the row stays) rather than orphan the file.
            await self.store.exists(row.storage_key)
            self._record(customer, principal, "attachment_deleted", old=row)
            await self.session.delete(row)
        # After the commit: a failed transaction must not have lost the file.
        await self._delete_blob(row.storage_key)

    # ---- queries ------------------------------------------------------------------------

    async def list_visible(self, principal: Principal, customer_id: uuid.UUID) -> list[Attachment]:
        async with self.session.begin():
            await self._visible(principal, customer_id)
            rows = await self.session.scalars(
                select(Attachment)
                .where(Attachment.customer_id == customer_id)
                .order_by(Attachment.uploaded_at, Attachment.id)
            )
            return list(rows)

    async def find_visible(
        self, principal: Principal, customer_id: uuid.UUID, attachment_id: uuid.UUID
    ) -> Attachment:
        # The transaction ends before any streaming: no connection is held while bytes flow.
        async with self.session.begin():
            await self._visible(principal, customer_id)
            return await self._find(customer_id, attachment_id)

    async def open_blob(self, row: Attachment) -> AsyncIterator[bytes]:
        try:
            return await self.store.open(row.storage_key)
        except BlobNotFoundError:
            log.error("attachment_blob_missing", attachment_id=str(row.id), key=row.storage_key)
            raise ProblemError(
                500, "Internal Server Error", "The file's content is missing from the store."
            ) from None

    # ---- helpers ------------------------------------------------------------------------

    async def _find(self, customer_id: uuid.UUID, attachment_id: uuid.UUID) -> Attachment:
        row = await self.session.scalar(
            select(Attachment).where(
                Attachment.id == attachment_id, Attachment.customer_id == customer_id
            )
        )
        if row is None:
            raise not_found("attachment")
        return row

    def _record(
        self,
        customer: Customer,
        principal: Principal,
        action: str,
        *,
        old: Attachment | None = None,
        new: Attachment | None = None,
    ) -> None:
        """A history entry: attachments apply at once, so they do not bump `version`."""

        def brief(row: Attachment | None) -> dict[str, Any] | None:
            if row is None:
                return None
            return {"id": str(row.id), "kind": row.kind, "filename": row.filename}

        self.session.add(
            CustomerHistory(
                customer_id=customer.id,
                version=customer.version,
                action=action,
                actor=principal.employee_id,
                at=datetime.now(UTC),
                changes={"attachments": {"old": brief(old), "new": brief(new)}},
            )
        )

    async def _delete_blob(self, key: str) -> None:
        # Shielded: the cleanup must run even when the request is being cancelled.
        with anyio.CancelScope(shield=True):
            try:
                await self.store.delete(key)
            except Exception:
                log.exception("attachment_blob_delete_failed", key=key)
