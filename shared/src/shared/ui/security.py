"""Browser-facing protections: security headers, CSRF tokens, the same-origin check and
the signed cookies (flashes, a sign-in in progress)."""

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Only our own files run, load or style anything; no inline script or style attribute.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()"),
)
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class SecurityHeadersMiddleware:
    """Adds the headers to every response under `prefix`; a header the route set (the
    attachment proxy's sandbox CSP) is kept. The JSON API and /docs are left alone."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix.rstrip("/")

    def _applies(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._applies(scope.get("path", "")):
            await self.app(scope, receive, send)
            return

        # Pages link static files with ?v=<content hash>: such a URL never changes content.
        versioned = scope["path"].startswith(self.prefix + "/static/") and scope.get(
            "query_string", b""
        ).startswith(b"v=")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                added = list(SECURITY_HEADERS)
                if versioned and message["status"] == 200:
                    added.append(("cache-control", "public, max-age=31536000, immutable"))
                for name, value in added:
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def csrf_token(secret: str, binding: str) -> str:
    """HMAC-SHA256(secret, binding): the binding is the session token (or, before sign-in,
    a random pre-session value), so a token is worthless to anyone without that cookie."""
    return hmac.new(secret.encode(), binding.encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret: str, binding: str | None, presented: str | None) -> bool:
    if not binding or not presented:
        return False
    return hmac.compare_digest(csrf_token(secret, binding), presented)


def same_origin(request: Request) -> bool:
    """The POST comes from a page of this host: Origin (or, failing that, Referer) names the
    host the browser sent the request to. A request naming neither is refused."""
    host = (request.headers.get("host") or "").lower()
    for header in ("origin", "referer"):
        value = request.headers.get(header)
        if value and value != "null":
            return bool(host) and urlsplit(value).netloc.lower() == host
    return False


def _signature(secret: str, purpose: str, payload: bytes) -> str:
    # The purpose is signed too: a value signed for one cookie is refused as another.
    return hmac.new(secret.encode(), purpose.encode() + b":" + payload, hashlib.sha256).hexdigest()


def encode_signed(secret: str, purpose: str, data: Any) -> str:
    """`data` as JSON in a cookie-safe value the browser can read but not change."""
    payload = json.dumps(data, separators=(",", ":")).encode()
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return body + "." + _signature(secret, purpose, payload)


def decode_signed(secret: str, purpose: str, value: str | None) -> Any | None:
    """The data of a value `encode_signed` made with this secret and purpose, else None
    (so never sign a bare null)."""
    if not value or "." not in value:
        return None
    body, signature = value.rsplit(".", 1)
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        if not hmac.compare_digest(_signature(secret, purpose, payload), signature):
            return None
        return json.loads(payload)
    except (ValueError, TypeError, binascii.Error):
        return None
