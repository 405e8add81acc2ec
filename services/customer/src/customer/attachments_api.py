"""REST endpoints for the attachments of a customer (CONTRACT.md §4).

| method and path                                   | answers                                  |
|---------------------------------------------------|------------------------------------------|
| POST   /api/v1/customers/{id}/attachments         | 201 the attachment; 401 403 404 409 413  |
|                                                   | 415 422                                  |
| GET    /api/v1/customers/{id}/attachments         | 200 {"items": [...]} oldest first; 404   |
| GET    /api/v1/customers/{id}/attachments/{a_id}  | 200 the bytes (304 on If-None-Match); 404|
| DELETE /api/v1/customers/{id}/attachments/{a_id}  | 204; 403 404; 409 unless draft/rejected  |

The upload is parsed here as a stream instead of through FastAPI's `UploadFile`, which
would spool the whole body (of any size) before the endpoint runs: the file goes to a
temporary file while it is hashed and counted, and reading stops at the size limit.
"""

import hashlib
import os
import tempfile
import unicodedata
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from customer.attachments import (
    KINDS,
    AttachmentConfig,
    AttachmentService,
    StagedUpload,
    empty_file_problem,
    too_large_problem,
)
from customer.file_types import HEAD_BYTES
from customer.schemas import Attachment as AttachmentOut
from customer.settings import CustomerSettings
from shared.auth.dependencies import CurrentPrincipal
from shared.errors import (
    API_PROBLEMS,
    FieldError,
    ProblemError,
    problem_responses,
    wants_vietnamese,
)
from shared.web import DbSession

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

#: Room in a request body, beyond the file itself, for the multipart framing and `kind`.
MULTIPART_OVERHEAD = 64 * 1024
#: Parts a well-behaved client sends: `file`, `kind`, perhaps a stray field or two.
MAX_PARTS = 8
#: Longest `kind` value read (the longest valid one is 16 bytes).
MAX_KIND_BYTES = 64
_STATE_KEY = "customer_attachments"


def _settings_of(app: FastAPI) -> CustomerSettings:
    """The app's own settings (those `create_app` got), else the environment's."""
    runtime = getattr(app.state, "runtime", None)
    settings = getattr(runtime, "settings", None)
    return settings if isinstance(settings, CustomerSettings) else CustomerSettings()


@asynccontextmanager
async def _configure(app: FastAPI) -> AsyncIterator[None]:
    # At start-up, so that a bad setting (e.g. CUSTOMER_BLOB_STORE=s3 without a bucket)
    # stops the service; at shutdown the store's connections are closed.
    config = AttachmentConfig.from_settings(_settings_of(app))
    setattr(app.state, _STATE_KEY, config)
    try:
        yield
    finally:
        await config.aclose()


router = APIRouter(
    prefix="/api/v1/customers",
    tags=["attachments"],
    lifespan=_configure,
    responses=problem_responses(*API_PROBLEMS),
)


async def attachment_config(request: Request) -> AttachmentConfig:
    """The settings and blob store; built on first use when the lifespan did not run.

    Async, so it runs on the event loop: concurrent first requests share one store.
    """
    config = getattr(request.app.state, _STATE_KEY, None)
    if not isinstance(config, AttachmentConfig):
        config = AttachmentConfig.from_settings(_settings_of(request.app))
        setattr(request.app.state, _STATE_KEY, config)
    return config


Config = Annotated[AttachmentConfig, Depends(attachment_config)]


class AttachmentPage(BaseModel):
    items: list[AttachmentOut]


# ---- the streaming multipart upload ------------------------------------------------------


def _problem_400(detail: str) -> ProblemError:
    return ProblemError(400, "Bad Request", detail, "malformed-upload")


def _field_problem(errors: list[FieldError], *, vietnamese: bool) -> ProblemError:
    title = "Dữ liệu không hợp lệ" if vietnamese else "Invalid request"
    return ProblemError(422, title, None, "validation-error", errors)


@dataclass
class _Receiver:
    """Feeds the body to python-multipart and spools the `file` part to a temporary file."""

    boundary: bytes
    max_bytes: int
    tmp_dir: Path | None
    vietnamese: bool

    events: list[tuple[str, bytes]] = field(default_factory=list)
    #: Every byte of the body so far: the file, the framing, and what the parser skips
    #: silently (an epilogue after the closing boundary) all count towards the limit.
    received: int = 0
    ended: bool = False
    parts: int = 0
    header_name: bytes = b""
    header_value: bytes = b""
    headers: dict[bytes, bytes] = field(default_factory=dict)
    current: Literal["file", "kind", "skip"] = "skip"
    skipped_bytes: int = 0
    kind_bytes: bytearray = field(default_factory=bytearray)
    kind_seen: bool = False
    file_seen: bool = False
    #: A part named `file` that carried text, not a file.
    file_not_a_file: bool = False
    filename: str = ""
    size: int = 0
    digest: "hashlib._Hash" = field(default_factory=hashlib.sha256)
    head: bytearray = field(default_factory=bytearray)
    path: Path | None = None
    handle: anyio.AsyncFile[bytes] | None = None

    def __post_init__(self) -> None:
        def mark(name: str) -> Callable[[], None]:
            return lambda: self.events.append((name, b""))

        def data(name: str) -> Callable[[bytes, int, int], None]:
            return lambda buf, start, end: self.events.append((name, buf[start:end]))

        callbacks: MultipartCallbacks = {
            "on_part_begin": mark("part_begin"),
            "on_header_field": data("header_name"),
            "on_header_value": data("header_value"),
            "on_header_end": mark("header_end"),
            "on_headers_finished": mark("headers_finished"),
            "on_part_data": data("data"),
            "on_part_end": mark("part_end"),
            "on_end": mark("end"),
        }
        self.parser = MultipartParser(self.boundary, callbacks)

    async def feed(self, chunk: bytes) -> None:
        # A chunked body has no Content-Length to refuse up front: count it as it comes.
        self.received += len(chunk)
        if self.received > self.max_bytes + MULTIPART_OVERHEAD:
            raise too_large_problem(self.max_bytes, vietnamese=self.vietnamese)
        # The parser's callbacks are synchronous; they queue events that are applied here,
        # where writing to the temporary file can be awaited.
        self.parser.write(chunk)
        events, self.events = self.events, []
        for name, data in events:
            await self._apply(name, data)

    async def _apply(self, name: str, data: bytes) -> None:
        if name == "part_begin":
            self.parts += 1
            if self.parts > MAX_PARTS:
                raise _problem_400(f"At most {MAX_PARTS} form fields are accepted.")
            self.headers, self.header_name, self.header_value = {}, b"", b""
        elif name == "header_name":
            self.header_name += data
        elif name == "header_value":
            self.header_value += data
        elif name == "header_end":
            self.headers[self.header_name.lower()] = self.header_value
            self.header_name, self.header_value = b"", b""
        elif name == "headers_finished":
            await self._start_part()
        elif name == "data":
            await self._part_data(data)
        elif name == "part_end":
            await self._end_part()
        elif name == "end":
            self.ended = True

    async def _start_part(self) -> None:
        disposition = self.headers.get(b"content-disposition", b"").decode("latin-1")
        _, options = parse_options_header(disposition)
        field_name = options.get(b"name")
        if field_name == b"file" and b"filename" in options:
            if self.file_seen:
                message = (
                    "Gửi một tệp mỗi lần." if self.vietnamese else "Send one file per request."
                )
                raise _field_problem(
                    [FieldError("file", message, "too_many_files")], vietnamese=self.vietnamese
                )
            self.file_seen = True
            self.filename = _decode_filename(options[b"filename"])
            self.current = "file"
            await self._open_spool()
        elif field_name == b"file":
            self.file_not_a_file = True
            self.current = "skip"
        elif field_name == b"kind":
            self.kind_seen = True
            self.kind_bytes = bytearray()
            self.current = "kind"
        else:
            self.current = "skip"  # unknown fields are ignored, but their size still counts

    async def _open_spool(self) -> None:
        if self.tmp_dir is not None:
            await anyio.Path(self.tmp_dir).mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=self.tmp_dir)
        self.path = Path(name)
        self.handle = anyio.wrap_file(os.fdopen(fd, "wb"))

    async def _part_data(self, data: bytes) -> None:
        if self.current == "file":
            self.size += len(data)
            if self.size > self.max_bytes:
                raise too_large_problem(self.max_bytes, vietnamese=self.vietnamese)
            self.digest.update(data)
            if len(self.head) < HEAD_BYTES:
                self.head += data[: HEAD_BYTES - len(self.head)]
            assert self.handle is not None
            await self.handle.write(data)
        elif self.current == "kind":
            # Past the cap the value is invalid anyway; keep one byte more to know it.
            room = MAX_KIND_BYTES + 1 - len(self.kind_bytes)
            self.kind_bytes += data[: max(room, 0)]
        else:
            self.skipped_bytes += len(data)
            if self.skipped_bytes > MULTIPART_OVERHEAD:
                raise too_large_problem(self.max_bytes, vietnamese=self.vietnamese)

    async def _end_part(self) -> None:
        if self.current == "file" and self.handle is not None:
            await self.handle.aclose()
            self.handle = None
        self.current = "skip"

    def finish(self) -> None:
        self.parser.finalize()
        if not self.ended:
            raise _problem_400("The multipart body is truncated (no closing boundary).")

    def kind(self) -> str | None:
        try:
            return bytes(self.kind_bytes).decode("utf-8").strip()
        except UnicodeDecodeError:
            return None

    async def discard(self) -> None:
        if self.handle is not None:
            with anyio.CancelScope(shield=True):
                await self.handle.aclose()
            self.handle = None
        if self.path is not None:
            await discard_file(self.path)
            self.path = None


def _decode_filename(raw: bytes) -> str:
    # Browsers and httpx send UTF-8 (RFC 7578 §4.2); very old clients sent Latin-1.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


async def discard_file(path: Path) -> None:
    with anyio.CancelScope(shield=True), suppress(OSError):
        await anyio.Path(path).unlink(missing_ok=True)


async def receive_upload(
    request: Request, config: AttachmentConfig, *, vietnamese: bool
) -> tuple[str, StagedUpload]:
    """Read `file` and `kind` from a multipart body; raises a problem for anything wrong.

    On success the caller owns the temporary file (`StagedUpload.path`) and must discard it.
    """
    max_bytes = config.settings.attachment_max_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes + MULTIPART_OVERHEAD:
        raise too_large_problem(max_bytes, vietnamese=vietnamese)  # without reading a byte
    content_type = request.headers.get("content-type")
    receiver: _Receiver | None = None
    if content_type:
        mime, options = parse_options_header(content_type)
        if mime != b"multipart/form-data":
            raise ProblemError(
                415,
                "Unsupported Media Type",
                "Gửi tệp dạng multipart/form-data với các trường `file` và `kind`."
                if vietnamese
                else "Upload the file as multipart/form-data with the fields `file` and `kind`.",
                "unsupported-request-type",
            )
        boundary = options.get(b"boundary")
        if not boundary:
            raise _problem_400("The multipart/form-data Content-Type has no boundary.")
        try:
            receiver = _Receiver(
                boundary, max_bytes, config.settings.upload_tmp_dir, vietnamese=vietnamese
            )
        except FormParserError as exc:
            raise _problem_400(f"Invalid multipart boundary: {exc}") from None
        try:
            async for chunk in request.stream():
                await receiver.feed(chunk)
            receiver.finish()
        except FormParserError as exc:
            await receiver.discard()
            raise _problem_400(f"The multipart body is malformed: {exc}") from None
        except BaseException:
            await receiver.discard()
            raise

    errors = _field_errors(receiver, vietnamese=vietnamese)
    if errors:
        if receiver is not None:
            await receiver.discard()
        raise _field_problem(errors, vietnamese=vietnamese)
    assert receiver is not None and receiver.path is not None
    if receiver.size == 0:
        await receiver.discard()
        raise empty_file_problem(vietnamese=vietnamese)
    staged = StagedUpload(
        path=receiver.path,
        filename=receiver.filename,
        size=receiver.size,
        sha256=receiver.digest.hexdigest(),
        head=bytes(receiver.head),
    )
    return str(receiver.kind()), staged


def _field_errors(receiver: "_Receiver | None", *, vietnamese: bool) -> list[FieldError]:
    def say(en: str, vi: str) -> str:
        return vi if vietnamese else en

    errors: list[FieldError] = []
    if receiver is None or not receiver.file_seen:
        if receiver is not None and receiver.file_not_a_file:
            message = say("Must be a file, not a text value.", "Phải là một tệp.")
        else:
            message = say("A file is required.", "Cần chọn một tệp.")
        errors.append(FieldError("file", message, "missing"))
    if receiver is None or not receiver.kind_seen:
        errors.append(
            FieldError("kind", say("Field required", "Trường này là bắt buộc."), "missing")
        )
    elif receiver.kind() not in KINDS:
        errors.append(
            FieldError(
                "kind",
                say(
                    f"Must be one of: {', '.join(KINDS)}.",
                    f"Phải là một trong: {', '.join(KINDS)}.",
                ),
                "literal_error",
            )
        )
    return errors


# ---- download headers --------------------------------------------------------------------


_UNSAFE_IN_FALLBACK = frozenset('"\\%/<>:|?*')


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback and the exact UTF-8 name (RFC 6266 / RFC 5987)."""
    decomposed = unicodedata.normalize("NFKD", filename.replace("đ", "d").replace("Đ", "D"))
    ascii_name = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    # Compatibility decomposition can make separators (`／` is `/`): the ASCII name keeps
    # no path, quote, escape or Windows-reserved character, and starts with no dot.
    fallback = (
        "".join(
            ch if " " <= ch <= "~" and ch not in _UNSAFE_IN_FALLBACK else "_" for ch in ascii_name
        )
        .strip()
        .lstrip(".")
        or "attachment"
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _etag_matches(if_none_match: str, etag: str) -> bool:
    candidates = [c.strip().removeprefix("W/") for c in if_none_match.split(",")]
    return "*" in candidates or etag in candidates


# ---- endpoints ----------------------------------------------------------------------------

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "kind"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "kind": {"type": "string", "enum": list(KINDS)},
                    },
                }
            }
        },
    }
}


@router.post(
    "/{customer_id}/attachments",
    status_code=status.HTTP_201_CREATED,
    response_model=AttachmentOut,
    openapi_extra=_UPLOAD_BODY,
    responses=problem_responses(403, 404, 409, 413, 415),
)
async def upload_attachment(
    customer_id: uuid.UUID,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    session: DbSession,
    config: Config,
) -> AttachmentOut:
    vietnamese = wants_vietnamese(request)
    service = AttachmentService(session, config)
    # 404, 403 and 409 are answered before a byte of the file is read.
    await service.check_upload(principal, customer_id, vietnamese=vietnamese)
    kind, upload = await receive_upload(request, config, vietnamese=vietnamese)
    try:
        row = await service.add(principal, customer_id, kind, upload, vietnamese=vietnamese)
    finally:
        await discard_file(upload.path)
    response.headers["Location"] = f"/api/v1/customers/{customer_id}/attachments/{row.id}"
    return AttachmentOut.model_validate(row, from_attributes=True)


@router.get(
    "/{customer_id}/attachments", response_model=AttachmentPage, responses=problem_responses(404)
)
async def list_attachments(
    customer_id: uuid.UUID, principal: CurrentPrincipal, session: DbSession, config: Config
) -> AttachmentPage:
    rows = await AttachmentService(session, config).list_visible(principal, customer_id)
    return AttachmentPage(
        items=[AttachmentOut.model_validate(r, from_attributes=True) for r in rows]
    )


@router.get(
    "/{customer_id}/attachments/{attachment_id}",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The file."},
        304: {"description": "The If-None-Match version is the current one."},
        **problem_responses(404),
    },
)
async def download_attachment(
    customer_id: uuid.UUID,
    attachment_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: DbSession,
    config: Config,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    service = AttachmentService(session, config)
    row = await service.find_visible(principal, customer_id, attachment_id)
    etag = f'"{row.sha256}"'
    headers = {
        "ETag": etag,
        # Per-user content: caches may keep it only privately, and must revalidate.
        "Cache-Control": "private, no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    if if_none_match and _etag_matches(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    chunks = await service.open_blob(row)
    headers |= {
        "Content-Disposition": content_disposition(row.filename),
        "Content-Length": str(row.size),
        # Should a browser render it anyway, it runs no script and loads nothing.
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    return StreamingResponse(chunks, media_type=row.content_type, headers=headers)


@router.delete(
    "/{customer_id}/attachments/{attachment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404, 409),
)
async def delete_attachment(
    customer_id: uuid.UUID,
    attachment_id: uuid.UUID,
    request: Request,
    principal: CurrentPrincipal,
    session: DbSession,
    config: Config,
) -> Response:
    await AttachmentService(session, config).remove(
        principal, customer_id, attachment_id, vietnamese=wants_vietnamese(request)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
