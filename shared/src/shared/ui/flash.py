"""One-shot messages shown on the next page (after a redirect), in a signed cookie.

A flash holds a catalog key and its parameters, not text: it is translated when shown,
in the language of that page.
"""

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any, Literal

Level = Literal["info", "success", "warning", "error"]


@dataclass(frozen=True)
class Flash:
    level: Level
    key: str
    params: dict[str, Any] = field(default_factory=dict)


def _sign(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), b"flash:" + payload, hashlib.sha256).hexdigest()


def encode_flashes(secret: str, flashes: list[Flash]) -> str:
    payload = json.dumps([[f.level, f.key, f.params] for f in flashes]).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + _sign(secret, payload)


def decode_flashes(secret: str, value: str | None) -> list[Flash]:
    """The flashes of a cookie we signed; anything else is ignored."""
    if not value or "." not in value:
        return []
    body, signature = value.rsplit(".", 1)
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        if not hmac.compare_digest(_sign(secret, payload), signature):
            return []
        items = json.loads(payload)
        return [Flash(level, str(key), dict(params)) for level, key, params in items]
    except (ValueError, TypeError, binascii.Error):
        return []
