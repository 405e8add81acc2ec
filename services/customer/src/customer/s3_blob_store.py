"""Attachment bytes in an S3-compatible bucket (AWS S3, MinIO, Ceph, Cloudflare R2...).

One aiobotocore client per store, made on first use (so building the store at start-up
needs no network) and closed by :meth:`S3BlobStore.aclose` when the app shuts down.
Objects are written whole with one `PutObject` streaming the spooled file: uploads are
capped at a few tens of MB, far below the 5 GB a single PUT takes, so multipart would add
failure modes (abandoned parts) and buy nothing.

Only a missing *key* is :class:`BlobNotFoundError`; anything else the bucket answers or
the network does (a missing bucket, access denied, 5xx, refused connections, timeouts)
is :class:`BlobStoreUnavailableError`, which the API turns into a 503.
"""

import contextlib
import re
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
import anyio
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import BotoCoreError, ClientError

from customer.blob_store import (
    CHUNK_BYTES,
    BlobNotFoundError,
    BlobStoreUnavailableError,
    checked_key,
)
from shared.logging import get_logger

log = get_logger(__name__)

AddressingStyle = Literal["auto", "path", "virtual"]
#: What S3 and its look-alikes answer for a key that is not there (HEAD has no body: "404").
_MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
#: Failures of a call, as botocore and aiohttp raise them.
_FAILURES: tuple[type[Exception], ...] = (BotoCoreError, ClientError, aiohttp.ClientError)
_PREFIX_SEGMENT = re.compile(r"[A-Za-z0-9_.-]{1,100}")
#: Bound on the clean-up after a failed PUT, which may run while the request is cancelled.
_CLEANUP_SECONDS = 10.0


def normalised_prefix(prefix: str) -> str:
    """`prefix` without outer slashes; ValueError unless it is plain path segments."""
    stripped = prefix.strip().strip("/")
    if not stripped:
        return ""
    segments = stripped.split("/")
    if any(not _PREFIX_SEGMENT.fullmatch(s) or s in (".", "..") for s in segments):
        raise ValueError(
            f"invalid S3 key prefix {prefix!r}: use letters, digits, '.', '_', '-' "
            "in segments separated by '/'"
        )
    return stripped


@dataclass(frozen=True, slots=True)
class S3Options:
    bucket: str
    #: Folder-like start of every object key, e.g. `prod/customer` (no slashes needed).
    prefix: str = ""
    #: None for AWS itself; the server's URL for MinIO, Ceph, R2, moto...
    endpoint_url: str | None = None
    #: None: botocore's chain (AWS_REGION, the config file...).
    region: str | None = None
    #: Both None: botocore's chain (environment, config file, instance or task role).
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    addressing_style: AddressingStyle = "auto"
    #: Attempts per call, the first included (botocore's "standard" retry mode).
    max_attempts: int = 3
    #: Open connections; a download holds one while it streams to its client.
    max_pool_connections: int = 50
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0


class S3BlobStore:
    """Blobs as objects `<prefix>/<customer_id>/<attachment_id>` in one bucket."""

    def __init__(self, options: S3Options, *, session: AioSession | None = None) -> None:
        if not options.bucket:
            raise ValueError("an S3 blob store needs a bucket")
        self.options = options
        self.bucket = options.bucket
        self.prefix = normalised_prefix(options.prefix)
        self._session = session if session is not None else get_session()
        self._client: Any = None
        self._exit_stack: AsyncExitStack | None = None
        self._lock = anyio.Lock()

    def object_key(self, key: str) -> str:
        key = checked_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    # ---- the four operations ------------------------------------------------------------

    async def put(self, key: str, source: Path) -> None:
        name = self.object_key(key)
        client = await self._s3()
        with source.open("rb") as body:
            try:
                # The object appears whole or not at all; the API sets the real type.
                await client.put_object(
                    Bucket=self.bucket,
                    Key=name,
                    Body=body,
                    ContentType="application/octet-stream",
                )
            except BaseException as exc:
                # The server may have stored it before the answer was lost or cancelled.
                await self._remove_quietly(client, name)
                if isinstance(exc, _FAILURES):
                    raise self._unavailable("put_object", exc) from exc
                raise

    async def open(self, key: str) -> "ObjectChunks":
        name = self.object_key(key)
        client = await self._s3()
        try:
            response = await client.get_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if _is_missing_key(exc):
                raise BlobNotFoundError(key) from None
            raise self._unavailable("get_object", exc) from exc
        except _FAILURES as exc:
            raise self._unavailable("get_object", exc) from exc
        return ObjectChunks(response["Body"])

    async def delete(self, key: str) -> None:
        name = self.object_key(key)
        client = await self._s3()
        try:
            await client.delete_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if not _is_missing_key(exc):  # S3 answers 204 anyway; some look-alikes 404
                raise self._unavailable("delete_object", exc) from exc
        except _FAILURES as exc:
            raise self._unavailable("delete_object", exc) from exc

    async def exists(self, key: str) -> bool:
        """HEAD of the object. A missing bucket also answers a bare 404, so it reads False."""
        name = self.object_key(key)
        client = await self._s3()
        try:
            await client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if _is_missing_key(exc):
                return False
            raise self._unavailable("head_object", exc) from exc
        except _FAILURES as exc:
            raise self._unavailable("head_object", exc) from exc
        return True

    async def aclose(self) -> None:
        async with self._lock:
            stack, self._exit_stack, self._client = self._exit_stack, None, None
            if stack is not None:
                await stack.aclose()

    # ---- helpers ------------------------------------------------------------------------

    async def _s3(self) -> Any:
        """The client, made on first use; one per store, shared by all requests."""
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    stack = AsyncExitStack()
                    try:
                        self._client = await stack.enter_async_context(self._new_client())
                    except _FAILURES as exc:
                        raise self._unavailable("create_client", exc) from exc
                    self._exit_stack = stack
        return self._client

    def _new_client(self) -> Any:
        options = self.options
        credentials: dict[str, str] = {}
        if options.access_key_id and options.secret_access_key:
            credentials = {
                "aws_access_key_id": options.access_key_id,
                "aws_secret_access_key": options.secret_access_key,
            }
        config = AioConfig(
            s3={"addressing_style": options.addressing_style},
            retries={"mode": "standard", "total_max_attempts": options.max_attempts},
            max_pool_connections=options.max_pool_connections,
            connect_timeout=options.connect_timeout_s,
            read_timeout=options.read_timeout_s,
        )
        return self._session.create_client(
            "s3",
            region_name=options.region,
            endpoint_url=options.endpoint_url,
            config=config,
            **credentials,
        )

    async def _remove_quietly(self, client: Any, name: str) -> None:
        # Shielded and bounded: it runs on the way out of a failure or a cancellation.
        with anyio.move_on_after(_CLEANUP_SECONDS, shield=True), contextlib.suppress(*_FAILURES):
            await client.delete_object(Bucket=self.bucket, Key=name)

    def _unavailable(self, operation: str, exc: Exception) -> BlobStoreUnavailableError:
        reason = _error_code(exc)
        log.warning("blob_store_unavailable", store="s3", operation=operation, reason=reason)
        return BlobStoreUnavailableError(f"S3 {operation} failed: {reason}")


class ObjectChunks:
    """The bytes of a `GetObject` as chunks.

    The HTTP connection is given back when the body has been read to its end, and closed
    when reading fails or the iterator is closed (`aclose`) or dropped unfinished, so a
    client that goes away mid-download does not hold a pool slot.
    """

    def __init__(self, body: Any) -> None:
        self._body: Any = body

    def __aiter__(self) -> "ObjectChunks":
        return self

    async def __anext__(self) -> bytes:
        if self._body is None:
            raise StopAsyncIteration
        try:
            chunk: bytes = await self._body.read(CHUNK_BYTES)
        except BaseException as exc:
            self._release()
            if isinstance(exc, _FAILURES):
                log.warning(
                    "blob_store_unavailable", store="s3", operation="read", reason=_error_code(exc)
                )
                raise BlobStoreUnavailableError(f"S3 read failed: {_error_code(exc)}") from exc
            raise
        if not chunk:
            self._release()
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        self._release()

    @property
    def closed(self) -> bool:
        return self._body is None

    def _release(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            body.close()  # no-op once fully read: aiohttp already gave the connection back

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._release()


def _is_missing_key(exc: ClientError) -> bool:
    return _error_code(exc) in _MISSING_KEY_CODES


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "unknown")
    return type(exc).__name__
