"""Attachments of a review, streamed from the customer service as the signed-in user.

The bytes stay in the customer service: the browser asks the approval UI (same origin,
session cookie), and this module fetches the file with the user's own bearer token, so
the customer service decides what the user may read. Only attachments listed in the
review's snapshot can be asked for: this is not a general-purpose proxy.
"""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

import anyio
import httpx
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from approval.ui.views import KNOWN_TYPES
from shared.logging import get_logger
from shared.ui.customer_form import INLINE_TYPES

log = get_logger(__name__)
#: Whatever the file holds, it runs nothing and loads nothing when opened. Opened as a
#: page of its own (a new tab), Chromium's and Firefox's PDF viewers still show PDFs.
SANDBOX_CSP = "default-src 'none'; img-src 'self' data:; sandbox"
FORWARDED_HEADERS = ("content-length", "etag", "last-modified")


class AttachmentUnavailable(Exception):
    def __init__(self, status: int, message_key: str) -> None:
        super().__init__(message_key)
        self.status = status
        self.message_key = message_key


@dataclass
class AttachmentProxy:
    base_url: str
    #: Tests plug an httpx.MockTransport in here.
    transport: httpx.AsyncBaseTransport | None = None
    timeout_s: float = 15.0
    #: A whole download may take this long...
    max_seconds: float = 300.0
    #: ...and be this large (the customer service's upload limit is 20 MiB by default).
    max_bytes: int = 64 * 1024 * 1024

    async def open(
        self,
        *,
        token: str,
        customer_id: uuid.UUID,
        attachment_id: uuid.UUID,
        content_type: str,
        filename: str,
    ) -> StreamingResponse:
        client = httpx.AsyncClient(
            base_url=self.base_url.rstrip("/"),
            transport=self.transport,
            timeout=httpx.Timeout(self.timeout_s, connect=5.0),
            trust_env=False,
        )
        request = client.build_request(
            "GET",
            f"/api/v1/customers/{customer_id}/attachments/{attachment_id}",
            headers={"Authorization": f"Bearer {token}"},
        )
        try:
            upstream = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            await client.aclose()
            log.warning("ui_attachment_unreachable", error_type=type(exc).__name__)
            raise AttachmentUnavailable(502, "attachment.unreachable") from exc
        if upstream.status_code != 200:
            await upstream.aclose()
            await client.aclose()
            log.warning("ui_attachment_refused", status=upstream.status_code)
            if upstream.status_code in (401, 403, 404):
                raise AttachmentUnavailable(404, "attachment.not_available")
            raise AttachmentUnavailable(502, "attachment.unreachable")

        async def chunks() -> AsyncIterator[bytes]:
            # Decoded bytes: a compressed upstream answer is passed on uncompressed. Bounded
            # in size (the upload limit) and in time, and the upstream connection is closed
            # however the copy ends (the background task does not run after a failure).
            sent = 0
            try:
                with anyio.fail_after(self.max_seconds):
                    async for chunk in upstream.aiter_bytes():
                        sent += len(chunk)
                        if sent > self.max_bytes:
                            log.warning("ui_attachment_too_large", limit=self.max_bytes)
                            return
                        yield chunk
            finally:
                await close()

        async def close() -> None:
            await upstream.aclose()
            await client.aclose()

        # The type the review lists (sniffed from the bytes at upload) wins; anything that
        # is not one of the upload types is served as opaque bytes, never as a page.
        media_type = content_type if content_type in KNOWN_TYPES else "application/octet-stream"
        inline = media_type in INLINE_TYPES
        headers = {k: upstream.headers[k] for k in FORWARDED_HEADERS if k in upstream.headers}
        if "content-encoding" in upstream.headers:
            headers.pop("content-length", None)
        headers |= {
            "Content-Disposition": _disposition(inline, upstream, filename),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": SANDBOX_CSP,
            "Cache-Control": "private, no-cache",
        }
        return StreamingResponse(
            chunks(),
            media_type=media_type,
            headers=headers,
            background=BackgroundTask(close),
        )


def _disposition(inline: bool, upstream: httpx.Response, filename: str) -> str:
    """The customer service's disposition (its safe ASCII and UTF-8 names), made inline for
    what a browser shows itself."""
    given = upstream.headers.get("content-disposition", "")
    if not given:
        given = f"attachment; filename*=UTF-8''{quote(filename, safe='')}"
    _, _, rest = given.partition(";")
    return ("inline" if inline else "attachment") + (f";{rest}" if rest else "")
