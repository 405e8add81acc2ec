"""Where attachment bytes live: a small protocol, a local-folder store and the factory.

Keys are made by the service from ids only (`<customer_id>/<attachment_id>`), never from
a filename, and every store refuses a key that is not such a path of plain segments
(:func:`checked_key`).

`CUSTOMER_BLOB_STORE` picks the store: `local` (:class:`LocalBlobStore`, a folder) or `s3`
(:class:`customer.s3_blob_store.S3BlobStore`: AWS S3 or anything speaking its protocol,
such as MinIO, Ceph or Cloudflare R2). Another store plugs in the same way: a class with
the methods of :class:`BlobStore`, its settings in `CustomerSettings`, a branch in
:func:`make_blob_store` and its name in :data:`IMPLEMENTED_STORES`. Any other value stops
the service at start-up with a clear message rather than silently writing elsewhere.

A store that cannot be reached raises :class:`BlobStoreUnavailableError`, an `OSError`,
which the API answers like any other unavailable dependency: 503 problem+json.
"""

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import anyio
import anyio.to_thread

if TYPE_CHECKING:
    from customer.s3_blob_store import S3Options

CHUNK_BYTES = 64 * 1024
#: Store names `CUSTOMER_BLOB_STORE` may take.
IMPLEMENTED_STORES = ("local", "s3")

_KEY = re.compile(r"[A-Za-z0-9_-]{1,100}(/[A-Za-z0-9_-]{1,100}){0,3}")


class BlobNotFoundError(LookupError):
    """No blob under that key."""


class BlobStoreUnavailableError(OSError):
    """The store could not be reached or refused the request (network, 5xx, access denied).

    An `OSError`, so the API answers it as an unavailable dependency (503), not a 500.
    """


def checked_key(key: str) -> str:
    """`key` itself if it is a path of plain segments (as ids make), else ValueError."""
    if not _KEY.fullmatch(key):
        raise ValueError(f"invalid blob key {key!r}")
    return key


class BlobStore(Protocol):
    async def put(self, key: str, source: Path) -> None:
        """Store the complete file at `source` under `key` (replacing any blob there).

        When it returns, the blob is durable; if it raises, nothing is visible under `key`.
        """

    async def open(self, key: str) -> AsyncIterator[bytes]:
        """The blob's bytes as chunks; raises BlobNotFoundError before returning if absent."""

    async def delete(self, key: str) -> None:
        """Remove the blob; a missing one is not an error."""

    async def exists(self, key: str) -> bool: ...

    async def aclose(self) -> None:
        """Release connections at shutdown (the app's lifespan calls it)."""


def storage_key(customer_id: uuid.UUID, attachment_id: uuid.UUID) -> str:
    return f"{customer_id}/{attachment_id}"


class LocalBlobStore:
    """Blobs as files under `root` (`root/<customer_id>/<attachment_id>`)."""

    def __init__(self, root: Path) -> None:
        # Resolved once: a later chdir must not move the store.
        self.root = root.resolve()

    def path_of(self, key: str) -> Path:
        path = self.root.joinpath(*checked_key(key).split("/"))
        if not path.is_relative_to(self.root):  # belt and braces; the pattern already ensures it
            raise ValueError(f"invalid blob key {key!r}")
        return path

    async def put(self, key: str, source: Path) -> None:
        await anyio.to_thread.run_sync(self._put, self.path_of(key), source)

    @staticmethod
    def _put(target: Path, source: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written beside the target under a name no key can have, then renamed: readers
        # never see half a file, and a crash leaves only a `.part` file to sweep.
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        try:
            with source.open("rb") as src, partial.open("wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK_BYTES * 16)
                dst.flush()
                os.fsync(dst.fileno())
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    async def open(self, key: str) -> AsyncIterator[bytes]:
        path = self.path_of(key)
        try:
            handle = await anyio.open_file(path, "rb")
        except FileNotFoundError as exc:
            raise BlobNotFoundError(key) from exc
        return self._chunks(handle)

    @staticmethod
    async def _chunks(handle: anyio.AsyncFile[bytes]) -> AsyncIterator[bytes]:
        async with handle:
            while chunk := await handle.read(CHUNK_BYTES):
                yield chunk

    async def delete(self, key: str) -> None:
        await anyio.to_thread.run_sync(self._delete, self.path_of(key))

    def _delete(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        if path.parent != self.root:
            # The customer's folder, once its last file is gone (else: not empty, or gone).
            with contextlib.suppress(OSError):
                path.parent.rmdir()

    async def exists(self, key: str) -> bool:
        path = self.path_of(key)
        return await anyio.to_thread.run_sync(path.is_file)

    async def aclose(self) -> None:
        """Nothing to release: files are opened per call."""


def make_blob_store(kind: str, *, local_root: Path, s3: "S3Options | None" = None) -> BlobStore:
    """The store `CUSTOMER_BLOB_STORE` names; `s3` is required for `s3`."""
    if kind == "local":
        return LocalBlobStore(local_root)
    if kind == "s3":
        if s3 is None:
            raise ValueError("CUSTOMER_BLOB_STORE='s3' needs its settings (CUSTOMER_S3_BUCKET...)")
        # Imported here: that module builds on this one.
        from customer.s3_blob_store import S3BlobStore

        return S3BlobStore(s3)
    raise ValueError(
        f"CUSTOMER_BLOB_STORE={kind!r} is not implemented; "
        f"choose one of {', '.join(IMPLEMENTED_STORES)}"
    )
