"""Where attachment bytes live: a small protocol, and a local-folder implementation.

Keys are made by the service from ids only (`<customer_id>/<attachment_id>`), never from
a filename, and the local store refuses any key that is not such a path of plain segments.

Plugging in an S3-compatible store (AWS S3, MinIO, Ceph, Cloudflare R2...): write a class
with the four methods of :class:`BlobStore` — `put` uploads the finished temporary file
(e.g. aioboto3 `upload_file`, multipart above a few MB), `open` does a `get_object` and
returns its body's chunk iterator (raising :class:`BlobNotFoundError` on `NoSuchKey`
*before* returning, so the API can still answer with an error status), `delete` is
`delete_object` (idempotent), `exists` is `head_object`. Give it its settings (bucket,
endpoint URL, region, credentials from the environment or an instance role, an optional
key prefix), then add a branch to :func:`make_blob_store` for `CUSTOMER_BLOB_STORE=s3`.
Only `local` exists today; any other value stops the service at start-up with a clear
message rather than silently writing to the wrong place.
"""

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import anyio
import anyio.to_thread

CHUNK_BYTES = 64 * 1024
#: Store names `CUSTOMER_BLOB_STORE` may take.
IMPLEMENTED_STORES = ("local",)

_KEY = re.compile(r"[A-Za-z0-9_-]{1,100}(/[A-Za-z0-9_-]{1,100}){0,3}")


class BlobNotFoundError(LookupError):
    """No blob under that key."""


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


def storage_key(customer_id: uuid.UUID, attachment_id: uuid.UUID) -> str:
    return f"{customer_id}/{attachment_id}"


class LocalBlobStore:
    """Blobs as files under `root` (`root/<customer_id>/<attachment_id>`)."""

    def __init__(self, root: Path) -> None:
        # Resolved once: a later chdir must not move the store.
        self.root = root.resolve()

    def path_of(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError(f"invalid blob key {key!r}")
        path = self.root.joinpath(*key.split("/"))
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


def make_blob_store(kind: str, *, local_root: Path) -> BlobStore:
    """The store `CUSTOMER_BLOB_STORE` names (see the module docstring for adding S3)."""
    if kind == "local":
        return LocalBlobStore(local_root)
    raise ValueError(
        f"CUSTOMER_BLOB_STORE={kind!r} is not implemented; "
        f"choose one of {', '.join(IMPLEMENTED_STORES)}"
    )
